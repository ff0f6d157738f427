/*
 * http_server.c — libmicrohttpd glue (see http_server.h).
 *
 * Each connection gets its own thread (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler may block while the engine computes, and a streamed response's
 * reader blocks until the next token. The connection guard
 * (http_conn_guard.c) hears of every connection opened and closed
 * (MHD_OPTION_NOTIFY_CONNECTION) and of each request's phases from here.
 * Per request, `request_state` collects the body; the first call of the
 * access callback (the head is in, no body yet) runs every check that needs
 * no body; the handler runs on the final call, once the whole body is in.
 */
#include "server/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>

#include "base/timing.h"
#include "server/http_auth.h"
#include "server/http_checks.h"
#include "server/http_conn_guard.h"
#include "server/metrics.h"

/* Most bytes past --max-body read and dropped so that the 413 reaches the client. */
#define HTTP_DRAIN_MAX_BYTES ((unsigned long long)64 << 20)

/* Connections libmicrohttpd itself accepts beyond the guard's limit: room
 * for killed connections whose threads are still closing, so the accept
 * loop never stalls (a stalled accept loop is a hang, not a 503). */
#define HTTP_ACCEPT_SLACK(max) ((max) + 256u)

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_config cfg;
    uint16_t port;
    bool loopback_bind;
    conn_guard *guard;
    http_auth_throttle *throttle;
};

/* Per connection (libmicrohttpd's socket context). */
typedef struct conn_state {
    conn_entry *guard_entry;
    bool nul_in_path;  /* the URL decoded a %00: answered 400 */
} conn_state;

typedef struct request_state {
    strbuf body;
    conn_state *conn;
    const http_route *route; /* chosen from the head */
    bool answered;     /* a response was queued from the head's checks */
    bool too_large;    /* over max_body_bytes: the body is dropped */
    bool late_413;     /* the 413 is still to be sent, after the upload */
    uint64_t dropped_bytes; /* body bytes read and dropped past the limit */
    bool head_ok;      /* every check on the head passed: the body is read */
    int client_probe;  /* http_client_gone's probe state */
    bool linger;       /* answered from the head while a body may still come: drain before the close */
} request_state;

/* A streamed response in flight: what the route's stream produced but MHD
 * has not taken yet. */
typedef struct stream_state {
    http_stream stream;
    strbuf pending;
    bool finished;     /* next() returned 0 */
} stream_state;

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
static void http_stream_free(void *cls);

void http_reply_json(http_reply *reply, int status, strbuf *b) {
    reply->status = status;
    reply->content_type = "application/json";
    reply->body_bytes = b->len;
    reply->body = strbuf_take(b);
    if (!reply->body) http_reply_error(reply, 500, "out of memory");
}

void http_reply_error(http_reply *reply, int status, const char *message) {
    const char *type = status == 401 ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "request_too_large"
                     : status == 503 ? "server_overloaded"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "{\"error\":{\"message\":");
    strbuf_json_string(&b, message, strlen(message));
    strbuf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}", type, status);
    free(reply->body);
    reply->status = status;
    reply->content_type = "application/json";
    reply->body_bytes = b.len;
    reply->body = strbuf_take(&b);
    if (!reply->body) reply->body_bytes = 0;
    if (status == 503) reply->retry_after_s = 1;
}

int http_status_of(int err_code) {
    switch (err_code) {
    case ERR_INVALID:
    case ERR_FORMAT:
    case ERR_UNSUPPORTED: return 400;
    case ERR_LIMIT: return 503;
    case ERR_NOMEM:
    case ERR_IO:
    default: return 500;
    }
}

void http_reply_error_of(http_reply *reply, const larder_error *err) {
    http_reply_error(reply, http_status_of(err->code), err->message);
}

static void add_common_headers(const http_server *s, struct MHD_Response *r) {
    if (s->cfg.cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->cfg.cors_origin);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "Retry-After");
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_reply(http_server *s, struct MHD_Connection *conn, http_reply *reply) {
    if (s->cfg.metrics) metrics_count_status(s->cfg.metrics, reply->status);
    struct MHD_Response *r;
    if (reply->stream.next) {
        stream_state *st = calloc(1, sizeof *st);
        if (!st) {
            reply->stream.done(reply->stream.ctx, true);
            reply->stream.next = NULL;
            http_reply_error(reply, 500, "out of memory");
            return send_reply(s, conn, reply);
        }
        st->stream = reply->stream;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, http_stream_read, st, http_stream_free);
        if (!r) {
            http_stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
    } else {
        r = MHD_create_response_from_buffer_with_free_callback(reply->body_bytes, reply->body, free);
        if (!r) {
            free(reply->body);
            return MHD_NO;
        }
        reply->body = NULL;
        MHD_add_response_header(r, "Content-Type", reply->content_type ? reply->content_type : "application/json");
    }
    if (reply->retry_after_s > 0) {
        char v[32];
        snprintf(v, sizeof v, "%d", reply->retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    add_common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)reply->status, r);
    MHD_destroy_response(r);
    return ret;
}

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *st = cls;
    while (st->pending.len == 0) {
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->pending.failed) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (!st->stream.next(st->stream.ctx, &st->pending)) st->finished = true;
    }
    size_t n = st->pending.len < max ? st->pending.len : max;
    memcpy(buf, st->pending.data, n);
    strbuf_consume(&st->pending, n);
    return (ssize_t)n;
}

static void http_stream_free(void *cls) {
    stream_state *st = cls;
    bool aborted = !st->finished || st->pending.len > 0;
    st->stream.done(st->stream.ctx, aborted);
    strbuf_free(&st->pending);
    free(st);
}

/* The server's own error for a request to url, in its protocol's shape. */
static void reply_error_for(const http_server *s, const char *url, http_reply *reply, int status, const char *msg) {
    if (!(s->cfg.error_for_path && url && s->cfg.error_for_path(url, status, msg, reply)))
        http_reply_error(reply, status, msg);
}

static enum MHD_Result reply_status(http_server *s, struct MHD_Connection *conn, const char *url, int status,
                                    const char *msg) {
    http_reply reply = {0};
    reply_error_for(s, url, &reply, status, msg);
    return send_reply(s, conn, &reply);
}

/* Every value of one header (libmicrohttpd keeps repeated headers apart). */
typedef struct header_values {
    const char *name;
    const char *v[8];
    int n;
    bool overflow;
} header_values;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    header_values *hv = cls;
    if (!key || strcasecmp(key, hv->name) != 0) return MHD_YES;
    if (hv->n == (int)(sizeof hv->v / sizeof hv->v[0])) hv->overflow = true;
    else hv->v[hv->n++] = value ? value : "";
    return MHD_YES;
}

static void header_all(struct MHD_Connection *conn, const char *name, header_values *hv) {
    memset(hv, 0, sizeof *hv);
    hv->name = name;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, hv);
}

/* The client's address bytes (for the wrong-key lockout). */
static size_t client_address(struct MHD_Connection *conn, const void **addr) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return 0;
    if (ci->client_addr->sa_family == AF_INET) {
        *addr = &((const struct sockaddr_in *)ci->client_addr)->sin_addr;
        return 4;
    }
    if (ci->client_addr->sa_family == AF_INET6) {
        *addr = &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr;
        return 16;
    }
    return 0;
}

/* 0 when the key is right (or none is needed); else 401 or 429 with the
 * wait in *retry_after_s. */
static int check_key(http_server *s, struct MHD_Connection *conn, int *retry_after_s) {
    if (!s->cfg.api_key) return 0;
    const void *addr = NULL;
    size_t addr_bytes = client_address(conn, &addr);
    int64_t now = timing_now_us() / 1000; /* ms */
    if (addr_bytes) {
        int64_t wait_ms = http_auth_throttle_wait_ms(s->throttle, addr, addr_bytes, now);
        if (wait_ms > 0) {
            *retry_after_s = (int)((wait_ms + 999) / 1000); /* whole seconds, rounded up */
            return 429;
        }
    }
    header_values auth, xkey;
    header_all(conn, "Authorization", &auth);
    header_all(conn, "x-api-key", &xkey);
    bool ok = auth.n <= 1 && xkey.n <= 1 && !auth.overflow && !xkey.overflow &&
              (auth.n || xkey.n) &&
              http_auth_key_matches(s->cfg.api_key, auth.n ? auth.v[0] : NULL, xkey.n ? xkey.v[0] : NULL);
    /* only a key presented counts toward the lockout: no key is no guess */
    if (addr_bytes && (ok || auth.n || xkey.n)) http_auth_throttle_record(s->throttle, addr, addr_bytes, ok, now);
    return ok ? 0 : 401;
}

/* OPTIONS from a browser: answered for the configured origin and a real
 * route only; everything else gets no CORS headers. */
static enum MHD_Result answer_preflight(http_server *s, struct MHD_Connection *conn, const char *url) {
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *want = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method");
    const char *want_headers = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    bool path_known = false, method_ok = false;
    for (int i = 0; i < s->cfg.n_routes; i++) {
        if (strcmp(url, s->cfg.routes[i].path) != 0) continue;
        path_known = true;
        if (want && !strcmp(want, s->cfg.routes[i].method)) method_ok = true;
    }
    if (!path_known) return reply_status(s, conn, url, 404, "no such route");
    bool origin_ok = origin && (!strcmp(s->cfg.cors_origin, "*") || !strcmp(origin, s->cfg.cors_origin));
    char allow_headers[1024];
    if (!origin_ok || !method_ok || !http_cors_allowed_headers(want_headers, allow_headers, sizeof allow_headers))
        return reply_status(s, conn, url, 403, "CORS preflight refused (origin, method or headers not allowed)");
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    add_common_headers(s, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", want);
    if (allow_headers[0]) MHD_add_response_header(r, "Access-Control-Allow-Headers", allow_headers);
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    if (s->cfg.metrics) metrics_count_status(s->cfg.metrics, 204);
    enum MHD_Result ret = MHD_queue_response(conn, 204, r);
    MHD_destroy_response(r);
    return ret;
}

/* The checks on the request head, before any body is read. Returns MHD_YES
 * with rs->answered false to go on reading the body. */
static enum MHD_Result check_head(http_server *s, struct MHD_Connection *conn, const char *url, const char *method,
                                  request_state *rs) {
    char msg[256];
    if (rs->conn && rs->conn->nul_in_path) return reply_status(s, conn, url, 400, "the request path holds a NUL byte (%00)");
    header_values cl, te;
    header_all(conn, "Content-Length", &cl);
    header_all(conn, "Transfer-Encoding", &te);
    if (cl.overflow || te.overflow) return reply_status(s, conn, url, 400, "too many Content-Length or Transfer-Encoding headers");
    int st = http_check_framing(cl.v, cl.n, te.v, te.n, msg, sizeof msg);
    if (st) return reply_status(s, conn, url, st, msg);
    header_values host;
    header_all(conn, "Host", &host);
    if (host.n > 1 || !http_check_host(host.n ? host.v[0] : NULL, s->loopback_bind, s->cfg.allowed_hosts))
        return reply_status(s, conn, url, 403, "this Host is not allowed (a loopback server answers loopback names only; see --allowed-hosts)");
    if (s->cfg.cors_origin && !strcmp(method, "OPTIONS")) return answer_preflight(s, conn, url);

    bool path_known = false;
    for (int i = 0; i < s->cfg.n_routes; i++) {
        if (strcmp(url, s->cfg.routes[i].path) != 0) continue;
        path_known = true;
        if (!strcmp(method, s->cfg.routes[i].method)) rs->route = &s->cfg.routes[i];
    }
    if (!rs->route) {
        snprintf(msg, sizeof msg, path_known ? "method %.16s is not allowed on %.128s" : "no route %.16s %.128s", method, url);
        return reply_status(s, conn, url, path_known ? 405 : 404, msg);
    }
    if (!rs->route->public_route) {
        int retry_after = 0;
        st = check_key(s, conn, &retry_after);
        if (st == 429) {
            http_reply reply = {0};
            reply_error_for(s, url, &reply, 429, "too many wrong API keys from this address; wait before trying again");
            reply.retry_after_s = retry_after;
            return send_reply(s, conn, &reply);
        }
        if (st) return reply_status(s, conn, url, 401, "missing or invalid API key (Authorization: Bearer ... or x-api-key)");
    }
    if (!strcmp(method, "POST") &&
        !http_content_type_is_json(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type")))
        return reply_status(s, conn, url, 415, "the request body must be JSON (Content-Type: application/json)");

    /* A declared length over the limit: up to HTTP_DRAIN_MAX_BYTES more
     * is read and dropped so the client, still sending, gets to read the
     * 413 (answering mid-upload makes most clients report a broken
     * connection instead); beyond that the 413 goes at once and the
     * connection closes. */
    unsigned long long declared = cl.n ? strtoull(cl.v[0], NULL, 10) : 0;
    if (cl.n && declared > s->cfg.max_body_bytes) {
        rs->too_large = true;
        if (declared - s->cfg.max_body_bytes <= HTTP_DRAIN_MAX_BYTES) {
            rs->late_413 = true;
            rs->head_ok = true;
            return MHD_YES;
        }
        snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes (--max-body)", s->cfg.max_body_bytes);
        return reply_status(s, conn, url, 413, msg);
    }
    rs->head_ok = true;
    return MHD_YES;
}

/* True when the request announced a body (a length > 0, or chunked). */
static bool request_has_body(struct MHD_Connection *conn) {
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") || (cl && strtoull(cl, NULL, 10) > 0);
}

/* A lingering close (as nginx's): after an answer sent before the body was
 * read, the write side is shut and what the client still sends is read and
 * dropped for a while, so its kernel does not get a reset that would
 * throw our answer away before the client reads it. Bounded in time and
 * bytes; no memory is kept. */
#define HTTP_LINGER_MS 2000
#define HTTP_LINGER_MAX_BYTES ((size_t)64 << 20)

static void linger_drain(int fd) {
    shutdown(fd, SHUT_WR);
    char buf[16384];
    size_t drained = 0;
    const int64_t t0_us = timing_now_us();
    for (;;) {
        int64_t left_ms = HTTP_LINGER_MS - (timing_now_us() - t0_us) / 1000;
        if (left_ms <= 0 || drained > HTTP_LINGER_MAX_BYTES) return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left_ms) <= 0) return;
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0) return;
        drained += (size_t)r;
    }
}

static conn_state *connection_state(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    http_server *s = cls;
    request_state *rs = *con_cls;
    if (!rs) {
        rs = calloc(1, sizeof *rs);
        if (!rs) return MHD_NO;
        *con_cls = rs;
        rs->conn = connection_state(conn);
        if (!conn_guard_headers_done(s->guard, rs->conn ? rs->conn->guard_entry : NULL)) return MHD_NO;
        enum MHD_Result r = check_head(s, conn, url, method, rs);
        rs->answered = !rs->head_ok; /* a check failed: its answer is queued */
        rs->linger = rs->answered && request_has_body(conn);
        return r;
    }
    if (rs->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        conn_guard_body_bytes(s->guard, rs->conn ? rs->conn->guard_entry : NULL, *upload_data_size);
        if (!rs->too_large) {
            if (rs->body.len + *upload_data_size > s->cfg.max_body_bytes) {
                /* Undeclared length (chunked) over the limit: the rest is read
                 * and dropped (libmicrohttpd cannot answer mid-upload), then 413. */
                rs->too_large = true;
                rs->late_413 = true;
                strbuf_free(&rs->body);
            } else {
                strbuf_append(&rs->body, upload_data, *upload_data_size);
            }
        } else {
            rs->dropped_bytes += *upload_data_size;
            if (rs->dropped_bytes > HTTP_DRAIN_MAX_BYTES) return MHD_NO; /* absurd: close */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!conn_guard_handling(s->guard, rs->conn ? rs->conn->guard_entry : NULL)) return MHD_NO;
    if (rs->late_413) {
        rs->late_413 = false;
        char msg[128];
        snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes (--max-body)", s->cfg.max_body_bytes);
        return reply_status(s, conn, url, 413, msg);
    }
    if (rs->too_large) return MHD_YES; /* the 413 is already queued */
    if (rs->body.failed) return reply_status(s, conn, url, 500, "out of memory reading the request body");

    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    http_request req = {method, url, rs->body.data ? rs->body.data : "", rs->body.len, ci ? ci->connect_fd : -1,
                        &rs->client_probe};
    http_reply reply = {0};
    reply.status = 200;
    rs->route->handler(s->cfg.app, &req, &reply);
    return send_reply(s, conn, &reply);
}

bool http_client_gone(const http_request *req) {
    if (req->client_fd < 0) return false;
    struct pollfd p = {.fd = req->client_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true; /* reset, or both directions closed */
    /* readable: EOF (peeked, nothing consumed) means the client stopped
     * sending; bytes mean it sent more (a pipelined request), so it is still there */
    char c;
    bool eof = (p.revents & POLLRDHUP) ||
               ((p.revents & POLLIN) && recv(req->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0);
    if (!eof) return false;
    if (!req->client_probe) return true;
    if (*req->client_probe == 0) {
        static const char probe[] = "HTTP/1.1 102 Processing\r\n\r\n";
        *req->client_probe = 1;
        ssize_t w = send(req->client_fd, probe, sizeof probe - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        return w < 0; /* EPIPE/ECONNRESET: gone already */
    }
    return false; /* probed and no reset came: half-closed, still reading */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    http_server *s = cls;
    request_state *rs = *con_cls;
    conn_state *cs = connection_state(conn);
    if (rs && rs->linger && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) linger_drain(ci->connect_fd);
    }
    if (cs) conn_guard_request_done(s->guard, cs->guard_entry);
    if (!rs) return;
    strbuf_free(&rs->body);
    free(rs);
    *con_cls = NULL;
}

/* Connection opened / closed: the guard's table follows. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_state *cs = calloc(1, sizeof *cs);
        if (cs && ci) cs->guard_entry = conn_guard_open(s->guard, ci->connect_fd);
        if (cs && !cs->guard_entry) {
            free(cs);
            cs = NULL;
        }
        if (!cs && ci) shutdown(ci->connect_fd, SHUT_RDWR); /* out of memory: drop it */
        *socket_context = cs;
    } else {
        conn_state *cs = *socket_context;
        if (cs) conn_guard_close(s->guard, cs->guard_entry);
        free(cs);
        *socket_context = NULL;
    }
}

/* URL decoding: %00 would cut the path short ("/v1/models%00x" read as
 * "/v1/models"); it is flagged and the request answered 400. */
static size_t unescape_url(void *cls, struct MHD_Connection *conn, char *text) {
    (void)cls;
    for (const char *p = text; (p = strchr(p, '%')) != NULL; p++) {
        if (p[1] == '0' && p[2] == '0') {
            conn_state *cs = connection_state(conn);
            if (cs) cs->nul_in_path = true;
            break;
        }
    }
    return MHD_http_unescape(text);
}

http_server *http_server_start(const http_server_config *cfg, larder_error *err) {
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    conn_guard_config gc = {cfg->max_connections, cfg->header_timeout_ms, cfg->idle_timeout_ms, cfg->body_grace_ms,
                            cfg->body_min_bytes_per_s, cfg->metrics};
    s->guard = conn_guard_create(&gc, err);
    s->throttle = http_auth_throttle_create();
    if (!s->guard || !s->throttle) {
        if (s->guard) error_set(err, ERR_NOMEM, "out of memory");
        conn_guard_free(s->guard);
        http_auth_throttle_free(s->throttle);
        free(s);
        return NULL;
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *addr;
    /* poll(), not select(): descriptors past FD_SETSIZE must work */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    s->loopback_bind = http_bind_is_loopback(host);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons(cfg->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(cfg->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        error_set(err, ERR_INVALID, "--host '%s' is not an IPv4 or IPv6 address", host);
        http_server_stop(s);
        return NULL;
    }
    /* libmicrohttpd's own timeout (reset by every byte) is only the bound
     * on a response nobody reads; the guard sets the real deadlines. */
    s->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                 MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, s,
                                 MHD_OPTION_CONNECTION_LIMIT, HTTP_ACCEPT_SLACK(conn_guard_max_connections(s->guard)),
                                 MHD_OPTION_CONNECTION_TIMEOUT, 600u,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        error_set(err, ERR_IO, "cannot listen on %s:%u (address in use or not available)", host, cfg->port);
        http_server_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return s;
}

uint16_t http_server_port(const http_server *s) { return s->port; }

unsigned http_server_live_connections(http_server *s) { return conn_guard_live(s->guard); }

void http_server_stop(http_server *s) {
    if (!s) return;
    if (s->daemon) MHD_stop_daemon(s->daemon);
    conn_guard_free(s->guard);
    http_auth_throttle_free(s->throttle);
    free(s);
}
