/*
 * http_conn_guard.c — the connection table and its watchdog (see
 * http_conn_guard.h).
 *
 * Every open connection is one entry in a doubly linked list under one
 * mutex. Phases move forward under that mutex; the watchdog thread wakes
 * every CONN_GUARD_TICK_MS, and kills (canned answer + shutdown) the
 * entries whose phase deadline passed. A killed entry stays in the list,
 * flagged, until libmicrohttpd reports the close: only then may its
 * descriptor be reused, so nothing here ever touches a recycled socket.
 */
#include "server/http_conn_guard.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/timing.h"

/* How often the watchdog looks at the table. */
#define CONN_GUARD_TICK_MS 100

typedef enum { PHASE_HEAD, PHASE_BODY, PHASE_HANDLING, PHASE_IDLE } conn_phase;

struct conn_entry {
    conn_entry *prev, *next;
    int fd;
    conn_phase phase;
    int64_t phase_start_us;  /* when the current phase began */
    int64_t opened_us;
    uint64_t body_bytes;     /* received in this request's body */
    bool killed;             /* answered by the guard and shut down */
};

struct conn_guard {
    conn_guard_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t watchdog;
    bool watchdog_running, stopping;
    conn_entry *head;        /* every open connection, newest first */
    unsigned live;           /* entries not killed */
};

/* A canned answer written straight to a socket (the connection's own
 * thread is not writing: it is still reading the request). */
typedef struct canned_answer {
    char text[512];
    size_t bytes;
} canned_answer;

static canned_answer answer_408, answer_503;
static pthread_once_t answers_once = PTHREAD_ONCE_INIT;

static void canned_make(canned_answer *a, const char *status_line, const char *extra_headers, const char *type,
                        const char *message, int code) {
    char body[256];
    int bl = snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":%d}}",
                      message, type, code);
    int n = snprintf(a->text, sizeof a->text,
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                     status_line, extra_headers, bl, body);
    a->bytes = n > 0 && (size_t)n < sizeof a->text ? (size_t)n : 0;
}

static void answers_init(void) {
    canned_make(&answer_408, "408 Request Timeout", "", "invalid_request_error",
                "the request did not arrive in time", 408);
    canned_make(&answer_503, "503 Service Unavailable", "Retry-After: 1\r\n", "server_overloaded",
                "too many connections (--max-connections); retry later", 503);
}

/* Writes what fits of a canned answer without blocking, then shuts the
 * socket so libmicrohttpd's thread sees the end. Called with g->mu held. */
static void kill_entry(conn_guard *g, conn_entry *e, const canned_answer *answer, int status) {
    if (e->killed) return;
    e->killed = true;
    g->live--;
    if (answer && answer->bytes) {
        ssize_t w = send(e->fd, answer->text, answer->bytes, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w; /* a full buffer: the client was not reading; it gets the close */
    }
    shutdown(e->fd, SHUT_RDWR);
    if (status && g->cfg.metrics) metrics_count_status(g->cfg.metrics, status);
}

static void *watchdog_main(void *arg) {
    conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CONN_GUARD_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->mu, &ts);
        if (g->stopping) break;
        int64_t now = timing_now_us();
        for (conn_entry *e = g->head; e; e = e->next) {
            if (e->killed) continue;
            int64_t age_ms = (now - e->phase_start_us) / 1000;
            switch (e->phase) {
            case PHASE_HEAD:
                if (age_ms > g->cfg.header_timeout_ms) kill_entry(g, e, &answer_408, 408);
                break;
            case PHASE_BODY: {
                /* allowed: the grace plus the time the received bytes buy at the minimum rate */
                int64_t allowed_ms = (int64_t)g->cfg.body_grace_ms +
                                     (int64_t)(e->body_bytes * 1000 / g->cfg.body_min_bytes_per_s);
                if (age_ms > allowed_ms) kill_entry(g, e, &answer_408, 408);
                break;
            }
            case PHASE_IDLE:
                if (age_ms > g->cfg.idle_timeout_ms) kill_entry(g, e, NULL, 0);
                break;
            case PHASE_HANDLING: break;
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

conn_guard *conn_guard_create(const conn_guard_config *cfg, larder_error *err) {
    conn_guard *g = calloc(1, sizeof *g);
    if (!g) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_once(&answers_once, answers_init);
    g->cfg = *cfg;
    if (!g->cfg.max_connections) g->cfg.max_connections = CONN_GUARD_DEFAULT_MAX_CONNECTIONS;
    if (!g->cfg.header_timeout_ms) g->cfg.header_timeout_ms = CONN_GUARD_DEFAULT_HEADER_TIMEOUT_MS;
    if (!g->cfg.idle_timeout_ms) g->cfg.idle_timeout_ms = CONN_GUARD_DEFAULT_IDLE_TIMEOUT_MS;
    if (!g->cfg.body_grace_ms) g->cfg.body_grace_ms = CONN_GUARD_DEFAULT_BODY_GRACE_MS;
    if (!g->cfg.body_min_bytes_per_s) g->cfg.body_min_bytes_per_s = CONN_GUARD_DEFAULT_BODY_MIN_BYTES_PER_S;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->watchdog, NULL, watchdog_main, g) != 0) {
        conn_guard_free(g);
        error_set(err, ERR_IO, "cannot start the connection watchdog thread");
        return NULL;
    }
    g->watchdog_running = true;
    return g;
}

void conn_guard_free(conn_guard *g) {
    if (!g) return;
    if (g->watchdog_running) {
        pthread_mutex_lock(&g->mu);
        g->stopping = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->watchdog, NULL);
    }
    while (g->head) {
        conn_entry *e = g->head;
        g->head = e->next;
        free(e);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

unsigned conn_guard_max_connections(const conn_guard *g) { return g->cfg.max_connections; }

/* The connection to give way to a newcomer: the oldest idle one, else the
 * oldest one still sending its head (older than the minimum age). */
static conn_entry *eviction_victim(conn_guard *g, int64_t now) {
    conn_entry *idle = NULL, *head = NULL;
    for (conn_entry *e = g->head; e; e = e->next) {
        if (e->killed || now - e->phase_start_us < CONN_GUARD_EVICT_MIN_AGE_MS * 1000) continue;
        if (e->phase == PHASE_IDLE && (!idle || e->phase_start_us <= idle->phase_start_us)) idle = e;
        if (e->phase == PHASE_HEAD && (!head || e->phase_start_us <= head->phase_start_us)) head = e;
    }
    return idle ? idle : head;
}

conn_entry *conn_guard_open(conn_guard *g, int fd) {
    conn_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    int64_t now = timing_now_us();
    e->fd = fd;
    e->phase = PHASE_HEAD;
    e->phase_start_us = e->opened_us = now;
    pthread_mutex_lock(&g->mu);
    e->next = g->head;
    if (g->head) g->head->prev = e;
    g->head = e;
    g->live++;
    if (g->live > g->cfg.max_connections) {
        conn_entry *victim = eviction_victim(g, now);
        if (victim && victim->phase == PHASE_HEAD) kill_entry(g, victim, &answer_408, 408);
        else if (victim) kill_entry(g, victim, NULL, 0);
        else kill_entry(g, e, &answer_503, 503);
    }
    pthread_mutex_unlock(&g->mu);
    return e;
}

void conn_guard_close(conn_guard *g, conn_entry *e) {
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    if (!e->killed) g->live--;
    if (e->prev) e->prev->next = e->next;
    else g->head = e->next;
    if (e->next) e->next->prev = e->prev;
    pthread_mutex_unlock(&g->mu);
    free(e);
}

/* Moves e to phase p unless it was killed. */
static bool enter_phase(conn_guard *g, conn_entry *e, conn_phase p) {
    pthread_mutex_lock(&g->mu);
    bool alive = !e->killed;
    if (alive) {
        e->phase = p;
        e->phase_start_us = timing_now_us();
        if (p == PHASE_BODY) e->body_bytes = 0;
    }
    pthread_mutex_unlock(&g->mu);
    return alive;
}

bool conn_guard_headers_done(conn_guard *g, conn_entry *e) { return !e || enter_phase(g, e, PHASE_BODY); }

void conn_guard_body_bytes(conn_guard *g, conn_entry *e, size_t n) {
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    e->body_bytes += n;
    pthread_mutex_unlock(&g->mu);
}

bool conn_guard_handling(conn_guard *g, conn_entry *e) { return !e || enter_phase(g, e, PHASE_HANDLING); }

void conn_guard_request_done(conn_guard *g, conn_entry *e) {
    if (e) enter_phase(g, e, PHASE_IDLE);
}

unsigned conn_guard_live(conn_guard *g) {
    pthread_mutex_lock(&g->mu);
    unsigned n = g->live;
    pthread_mutex_unlock(&g->mu);
    return n;
}
