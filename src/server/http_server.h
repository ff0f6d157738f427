/*
 * http_server.h — the HTTP layer: libmicrohttpd, one thread per connection.
 *
 * It owns what every route shares, in the order a request meets it:
 *   - connection limits and deadlines (http_conn_guard.h: --max-connections,
 *     408 for a request head or body that does not arrive in time, 503 when
 *     every connection is busy);
 *   - checks on the request head, answered before any body byte is read:
 *     NUL in the path (400), conflicting framing headers (400/501), the Host
 *     allow-list (403), CORS preflights (only for the configured origin and
 *     real routes), routing (404 unknown path, 405 other method), the API
 *     key (401; 429 while the address is locked out after wrong keys; see
 *     http_auth.h), application/json on POST routes (415), the declared
 *     length (413);
 *   - reading the body up to a byte limit (413 past it);
 *   - counting every answer's status in the metrics (when given);
 *   - streaming responses (server-sent events) fed by a callback.
 *
 * Routes are handed in by the caller (src/server/routes.c), so this file
 * knows nothing of OpenAI or of the engine. A handler runs on the
 * connection's thread and may block; the response it describes is sent when
 * it returns.
 */
#ifndef LARDER_SERVER_HTTP_SERVER_H
#define LARDER_SERVER_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"

typedef struct http_server http_server;

typedef struct http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* without the query string */
    const char *body;        /* NUL-terminated copy of the body (may hold NULs) */
    size_t body_bytes;
    int client_fd;           /* the connection's socket (for http_client_gone); -1 if unknown */
    int *client_probe;       /* http_client_gone's state for this request (NULL: no probing) */
} http_request;

/* True once the client has gone (closed its socket, or the connection
 * broke), seen without reading anything: a handler that computes for a
 * long time before answering polls this to stop early. Never blocks.
 * A client that only shut down its sending side (a half-close) still
 * waits for the answer, and the end of its input alone does not tell the
 * two apart; so on that end, before any response byte, one interim
 * "HTTP/1.1 102 Processing" is written (clients must skip 1xx answers):
 * a closed socket answers it with a reset, seen at the next call; a
 * half-closed client stays and gets its answer. Call it only before the
 * response starts (not from a stream's producer). */
bool http_client_gone(const http_request *req);

/*
 * A streamed body: `next` appends the next piece to out and returns 1 while
 * more follows, 0 at the end. It may block (waiting for tokens); when it has
 * nothing for a while it should append an SSE comment (": keep-alive\n\n"),
 * which also tells the server if the client went away. `done` is called
 * exactly once when the response ends, with aborted = true when the client
 * disconnected first.
 */
typedef struct http_stream {
    int (*next)(void *ctx, strbuf *out);
    void (*done)(void *ctx, bool aborted);
    void *ctx;
} http_stream;

typedef struct http_reply {
    int status;               /* HTTP status */
    const char *content_type; /* static string; default application/json */
    char *body;               /* malloc'd, freed by the server; or NULL */
    size_t body_bytes;
    int retry_after_s;        /* > 0: send Retry-After */
    http_stream stream;       /* next != NULL: streamed text/event-stream body */
} http_reply;

typedef void (*http_handler)(void *app, const http_request *req, http_reply *reply);

typedef struct http_route {
    const char *method;
    const char *path;
    http_handler handler;
    bool public_route;        /* no API key needed (e.g. /health) */
} http_route;

struct metrics;

typedef struct http_server_config {
    const char *host;          /* address to bind, e.g. "127.0.0.1" */
    uint16_t port;             /* 0: any free port (see http_server_port) */
    const char *api_key;       /* NULL: no authentication */
    const char *cors_origin;   /* NULL: no CORS headers */
    size_t max_body_bytes;     /* larger bodies get 413 */
    unsigned max_connections;  /* live connections (0: CONN_GUARD_DEFAULT_MAX_CONNECTIONS) */
    const http_route *routes;  /* n_routes entries, not copied: must outlive the server */
    int n_routes;
    void *app;                 /* passed to every handler */
    const char *allowed_hosts; /* comma-separated Host names accepted beyond the defaults (NULL: none) */
    struct metrics *metrics;   /* every answer's status is counted here (NULL: not counted) */
    /* Errors the server answers itself, before a route runs (404, 405, 401,
     * 429, 413, 415, 400 framing, 403 Host, 500): when set and it returns
     * true for the request's path, it wrote the error in that path's
     * protocol (Anthropic's shape for the Messages routes); else (and when
     * NULL) the OpenAI shape of http_reply_error. Answers sent before the
     * path is read (the connection guard's 408 and 503) keep the OpenAI shape. */
    bool (*error_for_path)(const char *path, int status, const char *message, http_reply *reply);
    /* Deadlines (0: the defaults of http_conn_guard.h); tests shorten them. */
    unsigned header_timeout_ms, idle_timeout_ms, body_grace_ms, body_min_bytes_per_s;
} http_server_config;

/* Binds and starts serving (threads of its own). NULL with err set when the
 * address cannot be bound. */
http_server *http_server_start(const http_server_config *cfg, larder_error *err);

/* The port actually bound. */
uint16_t http_server_port(const http_server *s);

/* Live connections now (for tests). */
unsigned http_server_live_connections(http_server *s);

/* Stops accepting, waits for connection threads, frees. */
void http_server_stop(http_server *s);

/* Fills reply with an OpenAI-shaped error object:
 * {"error":{"message":...,"type":...,"param":null,"code":...}}.
 * A 503 also gets Retry-After: 1 (the server is busy now; a retry may pass). */
void http_reply_error(http_reply *reply, int status, const char *message);

/*
 * The HTTP status that answers a library error of kind err_code
 * (base/error.h), the one place where the server maps the one to the other:
 *   ERR_INVALID, ERR_FORMAT, ERR_UNSUPPORTED  400  the request is wrong, or
 *                                                  asks for what is not supported
 *   ERR_LIMIT                                 503  the server is at a capacity
 *                                                  limit (engine_submit: the
 *                                                  queue is full); retry later
 *   ERR_NOMEM, ERR_IO                         500  the server failed
 *   ERR_NONE or an unknown kind               500  a failure nobody classified
 * A limit hit by the request's own content (a prompt too long to tokenize) is
 * the request's fault, not the server's load: callers report it as
 * ERR_INVALID, so it gets 400 and no Retry-After.
 */
int http_status_of(int err_code);

/* http_reply_error with err's message and http_status_of(err->code). */
void http_reply_error_of(http_reply *reply, const larder_error *err);

/* Fills reply with status and a body taken from b (b is reset). */
void http_reply_json(http_reply *reply, int status, strbuf *b);

#endif
