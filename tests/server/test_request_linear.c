/*
 * test_request_linear.c — the work a request costs before the engine sees
 * it (parse and validate, render the chat template, mark content, tokenize
 * up to the context) grows linearly with the body: for each adversarial
 * shape the body is doubled twice and the CPU time of this thread (not
 * wall time: the machine may be busy) may grow at most ~2.2x per doubling
 * (4 runs at n against 1 run at 4n; see expect_linear).
 * Shapes: many chat_template_kwargs (was quadratic: 40k keys took 2.6 s),
 * many messages, many content parts, one message with many keys, many
 * tools, content full of control-token text, a long completion prompt
 * (refused by the token bound without tokenizing it all), deep nesting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/strbuf.h"
#include "chat/chat_prompt.h"
#include "server/openai_request.h"
#include "tokenizer/tokenizer.h"
#include "test_files.h"

/* The context the token bound uses (as --ctx-size). */
#define CTX_TOKENS 32768

static tokenizer *tok;
static chat_prompt *cp;


static int setup(void **state) {
    (void)state;
    /* Keep freed memory in the heap: page faults of fresh memory would be
     * counted as this thread's CPU time at every run. */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
    const char *shared = test_shared_dir();
    char path[1024];
    larder_error err = {0};
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-qwen2.gguf", shared);
    tok = tokenizer_load_file(path, &err);
    if (!tok) fail_msg("%s: %s", path, err.message);
    snprintf(path, sizeof path, "%s/templates/Qwen-Qwen2.5-7B-Instruct.jinja", shared);
    char *tmpl = test_read_file(path);
    cp = chat_prompt_create(tmpl, "", "<|im_end|>", &err);
    free(tmpl);
    if (!cp) fail_msg("%s", err.message);
    const char *texts[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"};
    assert_int_equal(chat_prompt_set_control_texts(cp, texts, 3, &err), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    chat_prompt_free(cp);
    tokenizer_free(tok);
    return 0;
}

/* What the server does with a body before the engine: the outcome does
 * not matter (a 400 is fine), only the work. */
static void request_path(const char *body, size_t len, openai_kind kind) {
    openai_request req;
    larder_error err = {0};
    if (openai_request_parse(body, len, kind, &req, &err)) return;
    token_list ids = {0};
    if (kind == OPENAI_CHAT) {
        chat_prompt_input in = {req.messages, req.tools, req.reasoning_effort, req.chat_template_kwargs};
        size_t tl = 0, n_spans = 0;
        chat_prompt_span *spans = NULL;
        char *text = chat_prompt_render_spans(cp, &in, &tl, &spans, &n_spans, &err);
        if (text) {
            tokenize_options o = {.flags = TOKENIZE_PARSE_SPECIAL, .text_spans = (const size_t (*)[2])spans,
                                  .n_text_spans = n_spans, .max_tokens = CTX_TOKENS};
            tokenizer_encode_opts(tok, text, tl, &o, &ids, &err);
        }
        free(spans);
        free(text);
    } else if (req.prompt) {
        tokenize_options o = {.flags = TOKENIZE_PARSE_SPECIAL | TOKENIZE_ADD_SPECIAL, .max_tokens = CTX_TOKENS};
        tokenizer_encode_opts(tok, req.prompt, strlen(req.prompt), &o, &ids, &err);
    }
    token_list_free(&ids);
    openai_request_free(&req);
}

/* The anchor: a pass that is linear by construction over the same bytes
 * (parse the JSON and free it), to measure how this machine's memory
 * hierarchy alone bends the growth of a bigger working set. */
static void parse_only(const char *body, size_t len, openai_kind kind) {
    (void)kind;
    cJSON *j = cJSON_ParseWithLength(body, len);
    cJSON *copy = cJSON_Duplicate(j, true);
    cJSON_Delete(copy);
    cJSON_Delete(j);
}

typedef void (*path_fn)(const char *body, size_t len, openai_kind kind);

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef void (*body_maker)(strbuf *b, int n);

/* CPU seconds of fn run reps times over the body made for n (the best of
 * 3 tries). */
static double cost_of(path_fn fn, body_maker make, int n, int reps, openai_kind kind) {
    strbuf b = STRBUF_INIT;
    make(&b, n);
    assert_false(b.failed);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = thread_cpu_s();
        for (int k = 0; k < reps; k++) fn(b.data, b.len, kind);
        best = fmin(best, thread_cpu_s() - t0);
    }
    strbuf_free(&b);
    return best;
}

/* Growth per doubling, from the cost of 4 runs at n and 1 run at 4n (the
 * same work when linear, so both measurements take about as long and
 * suffer the same noise). */
static double growth_of(double four_at_n, double one_at_4n) { return 2.0 * sqrt(one_at_4n / fmax(four_at_n, 1e-6)); }

/* The request path may grow at most 2.2x per doubling — more only as far
 * as the anchor (a linear pass over the same body) grows beyond 2x here,
 * the memory hierarchy's share. Rounds interleave the sizes (min of 3),
 * so a burst of load from other processes hits both alike; a shape that
 * fails is measured again, up to 3 times (a quadratic walk grows 4x per
 * doubling and fails every time). */
static void expect_linear(const char *name, body_maker make, int n, openai_kind kind) {
    cost_of(request_path, make, 4 * n, 1, kind); /* warm up: the heap grows to the largest size once */
    double growth = 0, allowed = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        double t1 = 1e9, t4 = 1e9, a1 = 1e9, a4 = 1e9;
        for (int r = 0; r < 3; r++) {
            t1 = fmin(t1, cost_of(request_path, make, n, 4, kind));
            t4 = fmin(t4, cost_of(request_path, make, 4 * n, 1, kind));
            a1 = fmin(a1, cost_of(parse_only, make, n, 4, kind));
            a4 = fmin(a4, cost_of(parse_only, make, 4 * n, 1, kind));
        }
        growth = growth_of(t1, t4);
        double anchor = growth_of(a1, a4);
        allowed = 2.2 * fmax(1.0, anchor / 2.0);
        print_message("%-28s n=%-6d 4 x n %.4f s, 4n %.4f s: %.2fx per doubling (anchor %.2fx, allowed %.2fx)\n", name,
                      n, t1, t4, growth, anchor, allowed);
        if (growth <= allowed) return;
    }
    fail_msg("%s: CPU time grows %.2fx per doubling (> %.2f) in 3 measurements", name, growth, allowed);
}

#define MSG_HEAD "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void make_kwargs(strbuf *b, int n) {
    strbuf_puts(b, MSG_HEAD ",\"chat_template_kwargs\":{");
    for (int i = 0; i < n; i++) strbuf_printf(b, "%s\"k%d\":%d", i ? "," : "", i, i);
    strbuf_puts(b, "}}");
}
static void make_messages(strbuf *b, int n) {
    strbuf_puts(b, "{\"messages\":[");
    for (int i = 0; i < n; i++) strbuf_printf(b, "%s{\"role\":\"%s\",\"content\":\"m%d\"}", i ? "," : "", i % 2 ? "assistant" : "user", i);
    strbuf_puts(b, "]}");
}
static void make_parts(strbuf *b, int n) {
    strbuf_puts(b, "{\"messages\":[{\"role\":\"user\",\"content\":[");
    for (int i = 0; i < n; i++) strbuf_printf(b, "%s{\"type\":\"text\",\"text\":\"p%d \"}", i ? "," : "", i);
    strbuf_puts(b, "]}]}");
}
static void make_message_keys(strbuf *b, int n) {
    strbuf_puts(b, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"");
    for (int i = 0; i < n; i++) strbuf_printf(b, ",\"x%d\":%d", i, i);
    strbuf_puts(b, "}]}");
}
static void make_tools(strbuf *b, int n) {
    strbuf_puts(b, MSG_HEAD ",\"tools\":[");
    for (int i = 0; i < n; i++)
        strbuf_printf(b, "%s{\"type\":\"function\",\"function\":{\"name\":\"f%d\",\"description\":\"d\",\"parameters\":{}}}",
                      i ? "," : "", i);
    strbuf_puts(b, "]}");
}
static void make_control_text(strbuf *b, int n) {
    strbuf_puts(b, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < n; i++) strbuf_puts(b, "a<|im_start|>b<|im_end|>");
    strbuf_puts(b, "\"}]}");
}
static void make_long_prompt(strbuf *b, int n) {
    strbuf_puts(b, "{\"prompt\":\"");
    for (int i = 0; i < n; i++) strbuf_puts(b, "lorem ipsum dolor ");
    strbuf_puts(b, "\"}");
}
static void make_stop_objects(strbuf *b, int n) { /* one object with many keys, where no key is read */
    strbuf_puts(b, MSG_HEAD ",\"metadata\":{");
    for (int i = 0; i < n; i++) strbuf_printf(b, "%s\"m%d\":[%d]", i ? "," : "", i, i);
    strbuf_puts(b, "}}");
}

static void test_request_work_is_linear(void **state) {
    (void)state;
    expect_linear("chat_template_kwargs keys", make_kwargs, 20000, OPENAI_CHAT);
    expect_linear("messages", make_messages, 2000, OPENAI_CHAT);
    expect_linear("content parts", make_parts, 10000, OPENAI_CHAT);
    expect_linear("keys in one message", make_message_keys, 20000, OPENAI_CHAT);
    expect_linear("tools", make_tools, 1000, OPENAI_CHAT);
    expect_linear("control text in content", make_control_text, 4000, OPENAI_CHAT);
    expect_linear("unknown field with many keys", make_stop_objects, 20000, OPENAI_CHAT);
    expect_linear("long completion prompt", make_long_prompt, 50000, OPENAI_COMPLETION);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_request_work_is_linear)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
