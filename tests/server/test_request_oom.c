/*
 * test_request_oom.c — SQLite's discipline for the request path: a
 * countdown allocator makes the k-th allocation fail, for k = 1, 2, 3, ...
 * until a request runs without reaching it. Each request goes through the
 * chat route's handler (parse, strict JSON checks, render with content
 * marking, tokenize, engine admission with a real KV pool and radix cache
 * under a fake forward pass, tool-call parsing, whole JSON and SSE writing).
 * Every failure must be a clean answer (500 or 503; never a crash, a 400 or
 * a half-written body), nothing may leak (allocations live before the
 * request equal those after it, the engine idle again), and the next
 * request without a failure must still get the reference answer.
 *
 * The allocator: this program is linked with -Wl,--wrap=malloc,calloc,
 * realloc,free (Makefile), so every allocation made by larder's code (and,
 * through cJSON_InitHooks, cJSON's) goes through __wrap_*; allocations of
 * every thread count, so the engine thread's paths are hit too. Live
 * allocations are tracked in a hash set to tell leaks from frees of memory
 * allocated elsewhere (libc).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat/chat_prompt.h"
#include "server/routes.h"
#include "tokenizer/tokenizer.h"
#include "engine/fake_model.c"
#include "test_files.h"

/* ---- the countdown allocator */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

#define LIVE_BUCKETS (1u << 16)
typedef struct live_node {
    void *p;
    struct live_node *next;
} live_node;
static live_node *live[LIVE_BUCKETS];
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long live_count;
static atomic_bool tracking;
static atomic_long countdown = -1;   /* > 0: allocations left before the failing one */
static atomic_bool fired;

static size_t bucket(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> 48 & (LIVE_BUCKETS - 1); }

static void live_add(void *p) {
    if (!p || !atomic_load(&tracking)) return;
    live_node *n = __real_malloc(sizeof *n);
    if (!n) abort();
    n->p = p;
    pthread_mutex_lock(&live_lock);
    size_t b = bucket(p);
    n->next = live[b];
    live[b] = n;
    atomic_fetch_add(&live_count, 1);
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(void *p) {
    if (!p) return;
    pthread_mutex_lock(&live_lock);
    for (live_node **pp = &live[bucket(p)]; *pp; pp = &(*pp)->next) {
        if ((*pp)->p != p) continue;
        live_node *n = *pp;
        *pp = n->next;
        __real_free(n);
        atomic_fetch_sub(&live_count, 1);
        break;
    }
    pthread_mutex_unlock(&live_lock);
}

/* True when this allocation is the one to fail. */
static bool should_fail(void) {
    long c = atomic_load(&countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1)) {
            if (c == 1) {
                atomic_store(&fired, true);
                return true;
            }
            return false;
        }
    }
    return false;
}

void *__wrap_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = __real_malloc(n);
    live_add(p);
    return p;
}
void *__wrap_calloc(size_t n, size_t m) {
    if (should_fail()) return NULL;
    void *p = __real_calloc(n, m);
    live_add(p);
    return p;
}
void *__wrap_realloc(void *old, size_t n) {
    if (should_fail()) return NULL;
    void *p = __real_realloc(old, n);
    if (p) {
        live_remove(old);
        live_add(p);
    }
    return p;
}
void __wrap_free(void *p) {
    live_remove(p);
    __real_free(p);
}

/* ---- the server pieces */

static tokenizer *tok;
static chat_prompt *chat;
static fake_model *fm;
static engine *eng;
static server_app app;
static http_handler chat_handler;


/* The fake's logits are FAKE_MODEL_VOCAB wide; the engine here samples over
 * the real tokenizer's vocabulary (its prompt ids come from it), so each
 * row is widened (zeros beyond the fake's ids). */
static int (*fake_forward)(void *, const forward_token *, int32_t, float *, larder_error *);
static void *fake_ctx;
static float *narrow_logits; /* (parallel, FAKE_MODEL_VOCAB) */
static int32_t wide_vocab;

static int wide_forward(void *ctx, const forward_token *items, int32_t n_items, float *logits, larder_error *err) {
    (void)ctx;
    if (fake_forward(fake_ctx, items, n_items, narrow_logits, err)) return -1;
    int32_t rows = 0;
    for (int32_t i = 0; i < n_items; i++) rows += items[i].want_logits;
    for (int32_t r = 0; r < rows; r++) {
        float *out = logits + (size_t)r * (size_t)wide_vocab;
        memset(out, 0, (size_t)wide_vocab * sizeof *out);
        memcpy(out, narrow_logits + (size_t)r * FAKE_MODEL_VOCAB, FAKE_MODEL_VOCAB * sizeof *out);
    }
    return 0;
}

static int setup(void **state) {
    (void)state;
    cJSON_Hooks hooks = {__wrap_malloc, __wrap_free};
    cJSON_InitHooks(&hooks);
    const char *shared = test_shared_dir();
    char path[1024];
    larder_error err = {0};
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-qwen2.gguf", shared);
    tok = tokenizer_load_file(path, &err);
    if (!tok) fail_msg("%s: %s", path, err.message);
    snprintf(path, sizeof path, "%s/templates/Qwen-Qwen2.5-7B-Instruct.jinja", shared);
    char *tmpl = test_read_file(path);
    chat = chat_prompt_create(tmpl, "", "<|im_end|>", &err);
    app.tool_format = toolcall_format_from_template(tmpl);
    free(tmpl);
    if (!chat) fail_msg("%s", err.message);
    const char *texts[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"};
    assert_int_equal(chat_prompt_set_control_texts(chat, texts, 3, &err), 0);
    fm = fake_model_create(4u << 20, 16, &err);
    if (!fm) fail_msg("%s", err.message);
    engine_config c = {.ctx_tokens = 4096, .parallel = 2, .batch_tokens = 64, .max_queue = 8, .cache_max_entries = 0};
    fake_model_engine_config(fm, &c);
    fake_forward = c.forward;
    fake_ctx = c.forward_ctx;
    wide_vocab = (int32_t)tokenizer_n_tokens(tok);
    narrow_logits = malloc((size_t)c.parallel * FAKE_MODEL_VOCAB * sizeof *narrow_logits);
    c.forward = wide_forward;
    c.n_vocab = wide_vocab;
    eng = engine_start(&c, &err);
    if (!eng) fail_msg("%s", err.message);
    app.eng = eng;
    app.tok = tok;
    app.chat = chat;
    app.model_name = "oom";
    app.ctx_tokens = 4096;
    app.n_vocab = wide_vocab;
    metrics_init(&app.metrics);
    int n_routes;
    const http_route *routes = routes_table(&n_routes);
    for (int i = 0; i < n_routes; i++)
        if (!strcmp(routes[i].path, "/v1/chat/completions")) chat_handler = routes[i].handler;
    assert_non_null(chat_handler);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    engine_stop(eng);
    fake_model_free(fm);
    free(narrow_logits);
    chat_prompt_free(chat);
    tokenizer_free(tok);
    return 0;
}

/* Runs the chat handler on body; a stream is read to its end. Returns the
 * status; the whole body (or the SSE text) in *out (caller frees). */
static int run_request(const char *body, char **out) {
    http_request req = {"POST", "/v1/chat/completions", body, strlen(body), -1, NULL};
    http_reply reply = {0};
    reply.status = 200;
    chat_handler(&app, &req, &reply);
    if (reply.stream.next) {
        strbuf sse = STRBUF_INIT;
        while (reply.stream.next(reply.stream.ctx, &sse)) {}
        reply.stream.done(reply.stream.ctx, false);
        *out = sse.failed ? NULL : strbuf_take(&sse);
        strbuf_free(&sse);
        return reply.status;
    }
    *out = reply.body;
    return reply.status;
}

/* Waits until the engine has nothing running or waiting. */
static void wait_engine_idle(void) {
    for (int i = 0; i < 2000; i++) {
        engine_stats st = engine_get_stats(eng);
        if (st.running == 0 && st.waiting == 0 && st.cache_entries == 0) {
            usleep(2000); /* its loop publishes after the step that freed the last sequence */
            return;
        }
        usleep(1000);
    }
    fail_msg("the engine did not become idle");
}

/* The part of an answer that must not change: from "choices" to "usage"
 * (the id and the creation time do); NULL when absent. */
static char *choices_of(const char *answer) {
    const char *a = answer ? strstr(answer, "\"choices\"") : NULL;
    const char *z = a ? strstr(a, "\"usage\"") : NULL;
    if (!a || !z) return NULL;
    char *c = malloc((size_t)(z - a) + 1);
    memcpy(c, a, (size_t)(z - a));
    c[z - a] = 0;
    return c;
}

static bool same_choices(const char *x, const char *y) {
    char *a = choices_of(x), *b = choices_of(y);
    bool same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

static const char *const BODIES[] = {
    "{\"messages\":[{\"role\":\"system\",\"content\":\"be <|im_end|> brief\"},{\"role\":\"user\",\"content\":\"hello\"}],"
    "\"max_tokens\":6,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2,\"stop\":[\"zz\"],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"ok\"}],\"max_tokens\":5,\"temperature\":0,\"n\":2,"
    "\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
};

static void test_every_allocation_failure_is_clean(void **state) {
    (void)state;
    for (size_t b = 0; b < sizeof BODIES / sizeof BODIES[0]; b++) {
        const char *body = BODIES[b];
        char *reference = NULL;
        int st = run_request(body, &reference); /* warm-up and the reference answer */
        if (st != 200) fail_msg("body %zu: %d %s", b, st, reference ? reference : "");
        wait_engine_idle();
        int failures = 0, k;
        for (k = 1;; k++) {
            wait_engine_idle();
            atomic_store(&tracking, true);
            long before = atomic_load(&live_count);
            atomic_store(&fired, false);
            atomic_store(&countdown, k);
            char *out = NULL;
            int status = run_request(body, &out);
            wait_engine_idle();
            atomic_store(&countdown, -1);
            bool hit = atomic_load(&fired);
            if (hit) failures++;
            if (status != 200 && status != 500 && status != 503)
                fail_msg("body %zu, allocation %d failed: status %d (%s)", b, k, status, out ? out : "");
            if (status != 200 && !hit) fail_msg("body %zu: status %d without a failure", b, status);
            /* a 200 carries the whole answer (a stream may end with its own error event) */
            if (status == 200 && !hit && !strstr(body, "\"stream\":true") && !same_choices(out, reference))
                fail_msg("body %zu: the answer changed without a failure", b);
            free(out);
            long after = atomic_load(&live_count);
            atomic_store(&tracking, false);
            if (after != before) fail_msg("body %zu, allocation %d failed: %ld allocations leaked", b, k, after - before);
            if (!hit) break; /* the request needed fewer than k allocations: every point was hit */
            /* still serving: the next request without a failure gets the reference answer */
            if (k % 50 == 0 || status != 200) {
                char *again = NULL;
                assert_int_equal(run_request(body, &again), 200);
                if (!strstr(body, "\"stream\":true") && !same_choices(again, reference))
                    fail_msg("body %zu: after a failure at allocation %d the answer changed", b, k);
                free(again);
            }
        }
        print_message("body %zu: %d allocation points failed one by one, each cleanly\n", b, failures);
        assert_true(failures > 50);
        free(reference);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_allocation_failure_is_clean)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
