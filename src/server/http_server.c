/*
 * http_server.c — libmicrohttpd glue (see http_server.h).
 *
 * Each connection gets its own thread (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler may block while the engine computes, and a streamed response's
 * reader blocks until the next token. Per request, `request_state` collects
 * the body; the handler runs on the final call of the access callback, once
 * the whole body is in.
 */
#include "server/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>

/* Most bytes past --max-body read and dropped so that the 413 reaches the client. */
#define HTTP_DRAIN_MAX_BYTES ((unsigned long long)64 << 20)

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_config cfg;
    uint16_t port;
};

typedef struct request_state {
    strbuf body;
    bool too_large;    /* over max_body_bytes: the body is dropped */
    bool late_413;     /* the 413 is still to be sent, after the upload */
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
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_reply(http_server *s, struct MHD_Connection *conn, http_reply *reply) {
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

/* Constant-time comparison of the Authorization header with "Bearer <key>",
 * or of the x-api-key header (Anthropic's clients) with the key. */
static bool authorized(const http_server *s, struct MHD_Connection *conn) {
    if (!s->cfg.api_key) return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *x = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
    if ((!h || strncmp(h, "Bearer ", 7) != 0) && !x) return false;
    const char *given = h && !strncmp(h, "Bearer ", 7) ? h + 7 : x, *key = s->cfg.api_key;
    size_t gl = strlen(given), kl = strlen(key);
    unsigned char diff = gl != kl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static enum MHD_Result reply_status(http_server *s, struct MHD_Connection *conn, int status, const char *msg) {
    http_reply reply = {0};
    http_reply_error(&reply, status, msg);
    return send_reply(s, conn, &reply);
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
        /* A declared length over the limit: up to HTTP_DRAIN_MAX_BYTES more
         * is read and dropped so the client, still sending, gets to read the
         * 413 (answering mid-upload makes most clients report a broken
         * connection instead); beyond that the 413 goes at once and the
         * connection closes. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (cl && declared > s->cfg.max_body_bytes) {
            rs->too_large = true;
            if (declared - s->cfg.max_body_bytes <= HTTP_DRAIN_MAX_BYTES) {
                rs->late_413 = true;
                return MHD_YES;
            }
            char msg[128];
            snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes (--max-body)", s->cfg.max_body_bytes);
            return reply_status(s, conn, 413, msg);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
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
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rs->late_413) {
        rs->late_413 = false;
        char msg[128];
        snprintf(msg, sizeof msg, "request body is larger than the limit of %zu bytes (--max-body)", s->cfg.max_body_bytes);
        return reply_status(s, conn, 413, msg);
    }
    if (rs->too_large) return MHD_YES; /* the 413 is already queued */
    if (rs->body.failed) return reply_status(s, conn, 500, "out of memory reading the request body");

    if (s->cfg.cors_origin && !strcmp(method, "OPTIONS")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        add_common_headers(s, r);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
        enum MHD_Result ret = MHD_queue_response(conn, 204, r);
        MHD_destroy_response(r);
        return ret;
    }

    const http_route *route = NULL;
    bool path_known = false;
    for (int i = 0; i < s->cfg.n_routes; i++) {
        if (strcmp(url, s->cfg.routes[i].path) != 0) continue;
        path_known = true;
        if (!strcmp(method, s->cfg.routes[i].method)) route = &s->cfg.routes[i];
    }
    if (!route) {
        char msg[256];
        snprintf(msg, sizeof msg, path_known ? "method %.16s is not allowed on %.128s" : "no route %.16s %.128s", method, url);
        return reply_status(s, conn, path_known ? 405 : 404, msg);
    }
    if (!route->public_route && !authorized(s, conn))
        return reply_status(s, conn, 401, "missing or invalid API key (Authorization: Bearer ... or x-api-key)");

    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    http_request req = {method, url, rs->body.data ? rs->body.data : "", rs->body.len, ci ? ci->connect_fd : -1};
    http_reply reply = {0};
    reply.status = 200;
    route->handler(s->cfg.app, &req, &reply);
    return send_reply(s, conn, &reply);
}

bool http_client_gone(const http_request *req) {
    if (req->client_fd < 0) return false;
    struct pollfd p = {.fd = req->client_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    /* readable: EOF (peeked, nothing consumed) means the client closed;
     * bytes mean it sent more (a pipelined request), so it is still there */
    char c;
    return (p.revents & POLLIN) && recv(req->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    request_state *rs = *con_cls;
    if (!rs) return;
    strbuf_free(&rs->body);
    free(rs);
    *con_cls = NULL;
}

http_server *http_server_start(const http_server_config *cfg, larder_error *err) {
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
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
        free(s);
        error_set(err, ERR_INVALID, "--host '%s' is not an IPv4 or IPv6 address", host);
        return NULL;
    }
    s->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 256u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 600u,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        free(s);
        error_set(err, ERR_IO, "cannot listen on %s:%u (address in use or not available)", host, cfg->port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return s;
}

uint16_t http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
