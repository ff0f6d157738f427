/*
 * fuzz_http_server.c — libFuzzer target for the HTTP layer as a client
 * meets it: one server (libmicrohttpd + the guard, the head checks, auth
 * and body limits; an echo route and a stream route) runs in the process,
 * and each input is sent as raw bytes on a fresh connection whose sending
 * side is then shut; the answer is read for up to 200 ms. Any crash or
 * sanitizer report in the server is a bug. (Leak checks are off: the
 * server's threads own memory across inputs.)
 *
 * FUZZ_SOURCES: src/server/http_server.c src/server/http_conn_guard.c src/server/http_auth.c src/server/http_checks.c src/server/metrics.c src/base/error.c src/base/strbuf.c src/base/timing.c src/base/utf8.c
 * FUZZ_OPTIONS: -detect_leaks=0
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/http_server.h"
#include "server/metrics.h"

static void h_echo(void *app, const http_request *req, http_reply *reply) {
    (void)app;
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "{\"bytes\":%zu}", req->body_bytes);
    http_reply_json(reply, 200, &b);
}

typedef struct { int left; } counter;
static int s_next(void *ctx, strbuf *out) {
    counter *c = ctx;
    if (c->left <= 0) return 0;
    strbuf_printf(out, "data: %d\n\n", c->left--);
    return 1;
}
static void s_done(void *ctx, bool aborted) {
    (void)aborted;
    free(ctx);
}
static void h_stream(void *app, const http_request *req, http_reply *reply) {
    (void)app;
    counter *c = malloc(sizeof *c);
    if (!c) {
        http_reply_error(reply, 500, "out of memory");
        return;
    }
    c->left = req->body_bytes % 8;
    reply->stream = (http_stream){s_next, s_done, c};
}

static const http_route routes[] = {
    {"POST", "/v1/echo", h_echo, false},
    {"GET", "/health", h_echo, true},
    {"POST", "/v1/stream", h_stream, false},
};

static metrics m;
static uint16_t port;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!port) {
        http_server_config cfg = {.host = "127.0.0.1", .api_key = "k", .cors_origin = "http://a.example",
                                  .max_body_bytes = 4096, .max_connections = 16, .routes = routes, .n_routes = 3,
                                  .metrics = &m, .header_timeout_ms = 500, .idle_timeout_ms = 500,
                                  .body_grace_ms = 500};
        larder_error err = {0};
        http_server *s = http_server_start(&cfg, &err);
        if (!s) abort();
        port = http_server_port(s); /* runs for the whole fuzzing session */
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        size_t off = 0;
        while (off < size) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += (size_t)w;
        }
        shutdown(fd, SHUT_WR);
        char buf[4096];
        for (int i = 0; i < 4; i++) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 50) <= 0) continue;
            if (recv(fd, buf, sizeof buf, 0) <= 0) break;
        }
    }
    close(fd);
    return 0;
}
