/*
 * test_http_server.c — the HTTP layer over real loopback sockets: routing
 * (404/405), the body limit (413, declared or not), Bearer auth (401, open
 * /health), CORS only when configured, Retry-After, a streamed body whose
 * producer learns when the client disconnects, and the one map from error
 * kinds to statuses (http_status_of).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/http_server.h"

static atomic_int stream_done_aborted = -1;

static void h_echo(void *app, const http_request *req, http_reply *reply) {
    (void)app;
    strbuf b = STRBUF_INIT;
    strbuf_printf(&b, "{\"bytes\":%zu}", req->body_bytes);
    http_reply_json(reply, 200, &b);
}
static void h_busy(void *app, const http_request *req, http_reply *reply) {
    (void)app; (void)req;
    http_reply_error(reply, 503, "queue full");
    reply->retry_after_s = 2;
}
typedef struct { int left; } counter;
static int s_next(void *ctx, strbuf *out) {
    counter *c = ctx;
    if (c->left <= 0) return 0;
    strbuf_printf(out, "data: %d\n\n", c->left--);
    usleep(2000);
    return 1;
}
static void s_done(void *ctx, bool aborted) {
    free(ctx);
    atomic_store(&stream_done_aborted, aborted);
}
static void h_stream(void *app, const http_request *req, http_reply *reply) {
    (void)app;
    counter *c = malloc(sizeof *c);
    c->left = atoi(req->body);
    reply->stream = (http_stream){s_next, s_done, c};
}

static const http_route routes[] = {
    {"POST", "/echo", h_echo, false},
    {"GET", "/health", h_echo, true},
    {"GET", "/busy", h_busy, false},
    {"POST", "/stream", h_stream, false},
};

static http_server *start(const char *key, const char *cors) {
    http_server_config cfg = {.host = "127.0.0.1", .port = 0, .api_key = key, .cors_origin = cors,
                              .max_body_bytes = 1000, .routes = routes, .n_routes = 4};
    larder_error err = {0};
    http_server *s = http_server_start(&cfg, &err);
    if (!s) fail_msg("%s", err.message);
    return s;
}

/* Sends raw and reads the whole response (connection: close) into out. */
static size_t roundtrip(uint16_t port, const char *raw, size_t raw_len, char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t off = 0;
    while (off < raw_len) {
        ssize_t w = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = recv(fd, out + n, cap - 1 - n, 0)) > 0) n += (size_t)r;
    out[n] = 0;
    close(fd);
    return n;
}

static void request(uint16_t port, const char *method, const char *path, const char *headers, const char *body, char *out, size_t cap) {
    char raw[8192];
    int n = snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, strcmp(method, "POST") || strstr(headers, "Content-Type") ? "" : "Content-Type: application/json\r\n",
                     headers, strlen(body), body);
    roundtrip(port, raw, (size_t)n, out, cap);
}

static void test_routing_and_errors(void **state) {
    (void)state;
    http_server *s = start(NULL, NULL);
    uint16_t port = http_server_port(s);
    char out[65536];
    request(port, "POST", "/echo", "", "hello", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "{\"bytes\":5}"));
    request(port, "GET", "/nope", "", "", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    assert_non_null(strstr(out, "\"error\""));
    request(port, "GET", "/echo", "", "", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 405"));
    request(port, "GET", "/busy", "", "", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    assert_non_null(strstr(out, "Retry-After: 2"));
    assert_null(strstr(out, "Access-Control-Allow-Origin"));
    http_server_stop(s);
}

static void test_body_limit(void **state) {
    (void)state;
    http_server *s = start(NULL, NULL);
    uint16_t port = http_server_port(s);
    char out[65536];
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = 0;
    request(port, "POST", "/echo", "", big, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    /* Chunked upload without a declared length, over the limit. */
    char raw[8192];
    int n = snprintf(raw, sizeof raw, "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", 4999, big);
    free(big);
    roundtrip(port, raw, (size_t)n, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    request(port, "POST", "/echo", "", "ok", out, sizeof out); /* still serving */
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    http_server_stop(s);
}

static void test_auth_and_cors(void **state) {
    (void)state;
    http_server *s = start("sekret", "http://app.example");
    uint16_t port = http_server_port(s);
    char out[65536];
    request(port, "POST", "/echo", "", "a", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 401"));
    request(port, "POST", "/echo", "Authorization: Bearer wrong\r\n", "a", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 401"));
    request(port, "POST", "/echo", "Authorization: Bearer sekret\r\n", "a", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "Access-Control-Allow-Origin: http://app.example"));
    request(port, "GET", "/health", "", "", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    request(port, "OPTIONS", "/echo",
            "Origin: http://app.example\r\nAccess-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Headers: authorization,content-type\r\n", "", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 204"));
    assert_non_null(strstr(out, "Access-Control-Allow-Headers: authorization, content-type"));
    http_server_stop(s);
}

static void test_stream_complete_and_aborted(void **state) {
    (void)state;
    http_server *s = start(NULL, NULL);
    uint16_t port = http_server_port(s);
    char out[65536];
    atomic_store(&stream_done_aborted, -1);
    request(port, "POST", "/stream", "", "3", out, sizeof out);
    assert_non_null(strstr(out, "text/event-stream"));
    assert_non_null(strstr(out, "data: 3"));
    assert_non_null(strstr(out, "data: 1"));
    for (int i = 0; i < 200 && atomic_load(&stream_done_aborted) < 0; i++) usleep(5000);
    assert_int_equal(atomic_load(&stream_done_aborted), 0);

    /* A client that leaves mid-stream: the producer hears of it. */
    atomic_store(&stream_done_aborted, -1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *raw = "POST /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 6\r\n\r\n100000";
    send(fd, raw, strlen(raw), MSG_NOSIGNAL);
    char buf[512];
    assert_true(recv(fd, buf, sizeof buf, 0) > 0);
    close(fd);
    for (int i = 0; i < 400 && atomic_load(&stream_done_aborted) < 0; i++) usleep(5000);
    assert_int_equal(atomic_load(&stream_done_aborted), 1);
    http_server_stop(s);
}

/* Every ERR_* kind gets its documented status; a 503 carries Retry-After. */
static void test_status_of_error_kinds(void **state) {
    (void)state;
    static const struct { int code, status; } cases[] = {
        {ERR_INVALID, 400}, {ERR_FORMAT, 400}, {ERR_UNSUPPORTED, 400}, {ERR_LIMIT, 503},
        {ERR_NOMEM, 500},   {ERR_IO, 500},     {ERR_NONE, 500},        {ERR_LIMIT + 100, 500},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        larder_error err = {0};
        error_set(&err, cases[i].code, "kind %d", cases[i].code);
        http_reply reply = {0};
        http_reply_error_of(&reply, &err);
        if (http_status_of(cases[i].code) != cases[i].status || reply.status != cases[i].status)
            fail_msg("ERR kind %d: status %d / reply %d, want %d", cases[i].code, http_status_of(cases[i].code),
                     reply.status, cases[i].status);
        assert_non_null(strstr(reply.body, err.message));
        assert_int_equal(reply.retry_after_s, cases[i].status == 503 ? 1 : 0);
        free(reply.body);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_errors),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_auth_and_cors),
        cmocka_unit_test(test_stream_complete_and_aborted),
        cmocka_unit_test(test_status_of_error_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
