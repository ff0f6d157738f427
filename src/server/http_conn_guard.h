/*
 * http_conn_guard.h — bounds on the server's connections: how many may be
 * open, and how long each phase of a request may take.
 *
 * libmicrohttpd gives every connection a thread and only an idle timeout
 * (reset by every byte), so a client that trickles one header byte a second
 * holds its thread for ever, and enough of them lock everyone out. The guard
 * tracks every open connection in one table (one mutex) and enforces:
 *
 *   --max-connections   at most that many live connections. A new one over
 *                       the limit takes the place of the oldest connection
 *                       that is idle between requests or still sending its
 *                       request head (slow or idle clients give way to a
 *                       client that has a request); when every connection is
 *                       busy with a request, the new one gets an immediate
 *                       503 with Retry-After instead of waiting in the
 *                       accept queue.
 *   header deadline     the request line and headers must arrive within
 *                       header_timeout_ms of the connection (or of the
 *                       previous response) — a deadline, not an idle reset.
 *   body minimum rate   the body must keep up body_min_bytes_per_s after a
 *                       grace of body_grace_ms (received bytes are checked
 *                       against elapsed time, so trickling does not help).
 *   keep-alive idle     a connection idle between requests longer than
 *                       idle_timeout_ms is closed quietly.
 * A request whose deadline passes gets 408 and the connection is closed.
 * While a handler runs or a response is sent, the guard does not interfere.
 *
 * Killing a connection writes the canned answer to its socket and shuts the
 * socket down; libmicrohttpd's thread then sees the end and closes it. The
 * table entry lives until libmicrohttpd reports the close, so a socket is
 * never touched after its descriptor could have been reused.
 */
#ifndef LARDER_SERVER_HTTP_CONN_GUARD_H
#define LARDER_SERVER_HTTP_CONN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "server/metrics.h"

/* Defaults (0 in a config field means the default). */
#define CONN_GUARD_DEFAULT_MAX_CONNECTIONS 128u
#define CONN_GUARD_DEFAULT_HEADER_TIMEOUT_MS 15000u  /* whole request head */
#define CONN_GUARD_DEFAULT_IDLE_TIMEOUT_MS 30000u    /* keep-alive between requests */
#define CONN_GUARD_DEFAULT_BODY_GRACE_MS 15000u      /* before the body's rate is checked */
#define CONN_GUARD_DEFAULT_BODY_MIN_BYTES_PER_S (64u * 1024u)
/* A connection younger than this is never evicted for a newcomer: its
 * request head may be in flight. */
#define CONN_GUARD_EVICT_MIN_AGE_MS 200

typedef struct conn_guard_config {
    unsigned max_connections;
    unsigned header_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned body_grace_ms;
    unsigned body_min_bytes_per_s;
    metrics *metrics;             /* 408 and 503 are counted here; may be NULL */
} conn_guard_config;

typedef struct conn_guard conn_guard;
typedef struct conn_entry conn_entry;

/* Starts the guard (and its watchdog thread). NULL with err on failure. */
conn_guard *conn_guard_create(const conn_guard_config *cfg, larder_error *err);

/* Stops the watchdog and frees the table. Every connection must be closed
 * (libmicrohttpd's daemon stopped) before. */
void conn_guard_free(conn_guard *g);

/* The effective limit (the default applied). */
unsigned conn_guard_max_connections(const conn_guard *g);

/* A connection was accepted on fd. Returns its entry (NULL when out of
 * memory: the caller should close it). Over the limit this either evicts an
 * idle or slow connection or refuses this one (503 written, socket shut). */
conn_entry *conn_guard_open(conn_guard *g, int fd);

/* The connection is closed (libmicrohttpd's close notice): frees e. */
void conn_guard_close(conn_guard *g, conn_entry *e);

/* The request head is in: the body phase starts. False when the
 * connection was already killed (answer nothing; drop it). */
bool conn_guard_headers_done(conn_guard *g, conn_entry *e);

/* n more body bytes arrived. */
void conn_guard_body_bytes(conn_guard *g, conn_entry *e, size_t n);

/* The body is in: the handler runs; no deadline applies until the
 * response is done. False when the connection was already killed. */
bool conn_guard_handling(conn_guard *g, conn_entry *e);

/* The response went out: the connection is idle (keep-alive); the next
 * request's head must be complete within idle_timeout_ms, else the
 * connection is closed quietly. */
void conn_guard_request_done(conn_guard *g, conn_entry *e);

/* Live (not killed) connections now; for tests and /metrics. */
unsigned conn_guard_live(conn_guard *g);

#endif
