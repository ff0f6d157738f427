/*
 * test_engine.c — the engine thread over a fake model (fake_model.c) whose
 * next token is a function of the tokens it reads back from the KV pages:
 * outputs equal a direct computation whatever the cache, batching,
 * preemption and concurrency did; follow-up turns hit the cache; 40
 * conversations complete inside a pool far smaller than their total; a full
 * queue refuses; cancellation ends a generation; n > 1 shares the prompt; the
 * cache limits hold; pre-warming (prefill_only) fills the cache while idle,
 * yields to a real request at once and never shares a forward pass with it;
 * the disk tier restores a conversation into a new engine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "kv/kv_disk.h"
/* The fake forward pass, compiled into this program: the engine gets it
 * through engine_config (forward, forward_ctx), nothing is substituted at
 * link time. */
#include "engine/fake_model.c"

/* The greedy continuation the fake model must give for a prompt. */
static void reference(const int32_t *prompt, int32_t n_prompt, int32_t n_gen, int32_t *out) {
    int32_t *all = malloc((size_t)(n_prompt + n_gen) * sizeof *all);
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    int32_t n = n_prompt;
    for (int32_t g = 0; g < n_gen; g++) {
        uint64_t h = 0x12345;
        for (int32_t p = 0; p < n; p++) h = fake_model_hash_step(h, all[p], p);
        all[n] = fake_model_next_token(h, FAKE_MODEL_VOCAB);
        out[g] = all[n++];
    }
    free(all);
}

/* The fake's pool for the next start(): budget and page size. */
static size_t g_kv_bytes;
static int32_t g_page_tokens;
static fake_model *g_fake; /* the running engine's fake (one at a time) */

static engine_config base_config(size_t kv_bytes) {
    engine_config c = {0};
    g_kv_bytes = kv_bytes;
    g_page_tokens = 16;
    c.ctx_tokens = 4096;
    c.parallel = 4;
    c.batch_tokens = 64;
    c.max_queue = 64;
    c.cache_max_entries = 10;
    return c;
}

/* engine_start over a new fake model (pool of g_kv_bytes, pages of
 * g_page_tokens); stop() ends both. */
static engine *start(engine_config *c, larder_error *err) {
    g_fake = fake_model_create(g_kv_bytes, g_page_tokens, err);
    if (!g_fake) return NULL;
    fake_model_engine_config(g_fake, c);
    engine *e = engine_start(c, err);
    if (!e) {
        fake_model_free(g_fake);
        g_fake = NULL;
    }
    return e;
}

static void stop(engine *e) {
    engine_stop(e);
    fake_model_free(g_fake);
    g_fake = NULL;
}

typedef struct result {
    int32_t tokens[CHANNEL_MAX_CHOICES][512];
    int32_t n[CHANNEL_MAX_CHOICES];
    channel_finish finish[CHANNEL_MAX_CHOICES];
    int32_t cached, prompt_tokens;
    int errors;
    char error[300];
} result;

/* Reads a job's channel to the end (all choices done or an error). */
static void collect(channel *ch, int32_t n_choices, result *r) {
    memset(r, 0, sizeof *r);
    int32_t done = 0;
    channel_event ev;
    while (done < n_choices) {
        if (!channel_pop(ch, &ev, 30000)) fail_msg("engine timed out");
        if (ev.kind == CHANNEL_EVENT_TOKEN) {
            assert_true(r->n[ev.choice] < 512);
            r->tokens[ev.choice][r->n[ev.choice]++] = ev.token;
        } else if (ev.kind == CHANNEL_EVENT_DONE) {
            r->finish[ev.choice] = ev.finish;
            r->cached = ev.cached_tokens;
            r->prompt_tokens = ev.prompt_tokens;
            done++;
        } else {
            r->errors++;
            snprintf(r->error, sizeof r->error, "%d %s", ev.http_status, ev.message);
            break;
        }
    }
    channel_release(ch);
}

static void run_job(engine *e, const int32_t *prompt, int32_t n_prompt, int32_t max_tokens, int32_t n_choices, result *r) {
    engine_job jb = {.prompt = prompt, .n_prompt = n_prompt, .n_choices = n_choices, .max_tokens = max_tokens,
                     .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    jb.sampling.temperature = 0;
    channel *ch = channel_create();
    larder_error err = {0};
    if (engine_submit(e, &jb, ch, &err)) fail_msg("submit: %s", err.message);
    collect(ch, n_choices, r);
}

static void check_output(const int32_t *prompt, int32_t n_prompt, const result *r, int32_t choice) {
    int32_t ref[512];
    reference(prompt, n_prompt, r->n[choice], ref);
    for (int32_t i = 0; i < r->n[choice]; i++)
        if (ref[i] != r->tokens[choice][i]) fail_msg("choice %d token %d: %d != reference %d", choice, i, r->tokens[choice][i], ref[i]);
}

static void fill_prompt(int32_t *p, int32_t n, uint32_t seed) {
    for (int32_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (int32_t)((seed >> 8) % FAKE_MODEL_VOCAB);
    }
}

static void test_output_matches_reference_and_follow_up_hits_cache(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    if (!e) fail_msg("%s", err.message);
    int32_t prompt[400];
    fill_prompt(prompt, 200, 1);
    result r;
    run_job(e, prompt, 200, 20, 1, &r);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.n[0], 20);
    assert_int_equal(r.finish[0], FINISH_LENGTH);
    assert_int_equal(r.cached, 0);
    check_output(prompt, 200, &r, 0);
    /* Next turn: prompt + the answer + a new user message. */
    memcpy(prompt + 200, r.tokens[0], 20 * sizeof(int32_t));
    fill_prompt(prompt + 220, 50, 2);
    run_job(e, prompt, 270, 10, 1, &r);
    check_output(prompt, 270, &r, 0);
    /* All 219 computed tokens of turn one (13 whole pages, and 11 tokens of
     * the last page from the cache's tail, copied before it is written). */
    assert_int_equal(r.cached, 219);
    engine_stats st = engine_get_stats(e);
    for (int i = 0; i < 100 && st.cache_entries < 1; i++) { /* stats are published after the step */
        usleep(10000);
        st = engine_get_stats(e);
    }
    assert_true(st.cache_entries >= 1);
    stop(e);
}

/* Rotating window (--max-kv-size 40 --keep 6, pages of 4 tokens): a 150-token
 * prompt plus 50 generated tokens in a pool of 24 pages (96 tokens). The
 * output equals the fake model's answer over the positions each token sees
 * (j < 6 or j > pos - 34), which the fake computes from the pages — so no
 * seen page was dropped, and the pool could never have held the whole
 * sequence. The second run of the same prompt is served from the cache up to
 * at most N tokens, and gives the same answer. */
static void window_reference(const int32_t *prompt, int32_t n_prompt, int32_t n_gen, int32_t keep, int32_t window,
                             int32_t *out) {
    int32_t all[512];
    memcpy(all, prompt, (size_t)n_prompt * sizeof *all);
    int32_t n = n_prompt;
    for (int32_t g = 0; g < n_gen; g++) {
        uint64_t h = 0x12345;
        for (int32_t p = 0; p < n; p++)
            if (p < keep || p > n - 1 - window) h = fake_model_hash_step(h, all[p], p);
        all[n] = fake_model_next_token(h, FAKE_MODEL_VOCAB);
        out[g] = all[n++];
    }
}

static void run_window_case(int32_t KEEP, int32_t pool_pages) {
    enum { P = 4, N = 40, PROMPT = 150, GEN = 50 };
    engine_config c = base_config((size_t)pool_pages * P * FAKE_MODEL_BYTES_PER_TOKEN);
    g_page_tokens = P, c.batch_tokens = 16, c.parallel = 1, c.max_kv_tokens = N, c.keep_tokens = KEEP;
    larder_error err = {0};
    engine *e = start(&c, &err);
    if (!e) fail_msg("%s", err.message);
    int32_t prompt[PROMPT], want[GEN];
    fill_prompt(prompt, PROMPT, 7);
    window_reference(prompt, PROMPT, GEN, KEEP, N - KEEP, want);
    for (int run = 0; run < 2; run++) {
        result r;
        run_job(e, prompt, PROMPT, GEN, 1, &r);
        if (r.errors) fail_msg("run %d: %s", run, r.error);
        assert_int_equal(r.n[0], GEN);
        for (int32_t i = 0; i < GEN; i++)
            if (r.tokens[0][i] != want[i]) fail_msg("run %d token %d: %d != %d", run, i, r.tokens[0][i], want[i]);
        if (run == 0) assert_int_equal(r.cached, 0);
        else assert_true(r.cached >= (KEEP / P) * P && r.cached <= N);
    }
    stop(e);
    /* --keep must be below --max-kv-size */
    c.keep_tokens = N;
    assert_null(start(&c, &err));
}

/* With --keep 0 nothing of a windowed sequence stays shareable once it drops
 * a page: it must stop pinning its early checkpoint, or those 10 pages stay
 * held beside its window and a pool of 18 pages cannot run it. */
static void test_rotating_window_bounds_a_sequence(void **state) {
    (void)state;
    run_window_case(6, 24);
    run_window_case(0, 18);
}

typedef struct worker_arg {
    engine *e;
    int id;
    int ok;
} worker_arg;

/* A two-turn conversation sharing a system prompt with every other worker. */
static void *conversation(void *p) {
    worker_arg *a = p;
    int32_t prompt[600];
    fill_prompt(prompt, 160, 99); /* shared system prompt */
    fill_prompt(prompt + 160, 100 + a->id, 1000 + (uint32_t)a->id);
    int32_t n = 260 + a->id;
    result *r = malloc(sizeof *r);
    engine_job jb = {.prompt = prompt, .n_prompt = n, .n_choices = 1, .max_tokens = 24, .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    jb.sampling.temperature = 0;
    for (int turn = 0; turn < 2; turn++) {
        channel *ch = channel_create();
        larder_error err = {0};
        int tries = 0;
        while (engine_submit(a->e, &jb, ch, &err)) {
            if (err.code != ERR_LIMIT || ++tries > 2000) {
                a->ok = 0;
                free(r);
                return NULL;
            }
            usleep(5000);
        }
        collect(ch, 1, r);
        if (r->errors || r->n[0] != 24) { a->ok = 0; free(r); return NULL; }
        int32_t ref[24];
        reference(prompt, n, 24, ref);
        if (memcmp(ref, r->tokens[0], sizeof ref)) { a->ok = 0; free(r); return NULL; }
        memcpy(prompt + n, r->tokens[0], sizeof ref);
        n += 24;
        fill_prompt(prompt + n, 40, 7u + (uint32_t)a->id);
        n += 40;
        jb.n_prompt = n;
    }
    free(r);
    a->ok = 1;
    return NULL;
}

static void test_budget_storm_all_complete(void **state) {
    (void)state;
    /* 40 conversations of ~330 tokens; the pool holds ~1000 tokens (64 pages). */
    engine_config c = base_config((size_t)64 * 16 * FAKE_MODEL_BYTES_PER_TOKEN);
    c.max_queue = 8;
    larder_error err = {0};
    engine *e = start(&c, &err);
    if (!e) fail_msg("%s", err.message);
    pthread_t t[40];
    worker_arg a[40];
    for (int i = 0; i < 40; i++) {
        a[i] = (worker_arg){e, i, 0};
        pthread_create(&t[i], NULL, conversation, &a[i]);
    }
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    engine_stats st = engine_get_stats(e);
    assert_int_equal(ok, 40);
    assert_true(st.pages_total == 64);
    assert_true(st.cache_hit_tokens > 0);
    stop(e);
}

static void test_queue_full_is_refused(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    c.parallel = 1;
    c.max_queue = 2;
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[64];
    fill_prompt(prompt, 64, 5);
    engine_job jb = {.prompt = prompt, .n_prompt = 64, .n_choices = 1, .max_tokens = 400, .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    channel *chs[8];
    int accepted = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        chs[i] = channel_create();
        if (engine_submit(e, &jb, chs[i], &err) == 0) {
            accepted++;
        } else {
            assert_int_equal(err.code, ERR_LIMIT);
            refused++;
            channel_release(chs[i]);
            channel_release(chs[i]);
            chs[i] = NULL;
        }
    }
    assert_true(refused >= 4);
    assert_true(accepted >= 2);
    for (int i = 0; i < 8; i++) {
        if (!chs[i]) continue;
        channel_cancel(chs[i], -1, FINISH_CANCELLED);
        result *r = malloc(sizeof *r);
        collect(chs[i], 1, r);
        /* A job admitted while earlier ones were collected may have run to its end. */
        assert_true(r->finish[0] == FINISH_CANCELLED || r->finish[0] == FINISH_LENGTH);
        assert_int_equal(r->errors, 0);
        free(r);
    }
    stop(e);
}

static void test_prompt_too_long_is_invalid(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    c.ctx_tokens = 100;
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[100];
    fill_prompt(prompt, 100, 3);
    engine_job jb = {.prompt = prompt, .n_prompt = 100, .n_choices = 1, .max_tokens = 4, .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    channel *ch = channel_create();
    assert_int_equal(engine_submit(e, &jb, ch, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.message, "100"));
    /* max_tokens past the context's end is capped: finish_reason length. */
    jb.n_prompt = 90;
    jb.max_tokens = 1000;
    assert_int_equal(engine_submit(e, &jb, ch, &err), 0);
    result *r = malloc(sizeof *r);
    collect(ch, 1, r);
    assert_int_equal(r->n[0], 10);
    assert_int_equal(r->finish[0], FINISH_LENGTH);
    free(r);
    stop(e);
}

static void test_n_choices_share_prompt(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[300];
    fill_prompt(prompt, 300, 11);
    result *r = malloc(sizeof *r);
    run_job(e, prompt, 300, 12, 3, r);
    for (int c2 = 0; c2 < 3; c2++) {
        assert_int_equal(r->n[c2], 12);
        check_output(prompt, 300, r, c2);
    }
    free(r);
    stop(e);
}

/* Steps the engine has run (published after each loop). */
static int64_t engine_steps(engine *e) { return engine_get_stats(e).steps; }

/* Fairness: a request with n = 16 holds every slot; a small request that
 * arrives then finishes within a few steps of its time alone (the big one
 * gives back a slot), and every choice of the big one, parked and resumed,
 * still matches the reference. */
static void test_small_request_is_not_starved_by_n16(void **state) {
    (void)state;
    engine_config c = base_config(16u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t big_prompt[200], small_prompt[20];
    fill_prompt(big_prompt, 200, 21);
    fill_prompt(small_prompt, 20, 22);
    result *small = malloc(sizeof *small), *big = malloc(sizeof *big);
    /* alone */
    int64_t s0 = engine_steps(e);
    run_job(e, small_prompt, 20, 4, 1, small);
    int64_t solo_steps = engine_steps(e) - s0;
    /* behind n = 16 */
    engine_job jb = {.prompt = big_prompt, .n_prompt = 200, .n_choices = 16, .max_tokens = 120, .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    jb.sampling.temperature = 0;
    channel *big_ch = channel_create();
    if (engine_submit(e, &jb, big_ch, &err)) fail_msg("submit: %s", err.message);
    for (int i = 0; i < 5000 && engine_get_stats(e).running < 4; i++) usleep(1000);
    assert_int_equal(engine_get_stats(e).running, 4);
    /* nobody reads the big request: once its backlog is full its choices
     * pause (still holding every slot) and the engine stops counting steps,
     * so the count below is the small request's own, however busy the
     * machine is between here and its submission */
    for (int i = 0; i < 5000 && channel_backlog(big_ch) < 256; i++) usleep(1000);
    usleep(20 * 1000);
    assert_int_equal(engine_get_stats(e).running, 4);
    int64_t t0 = engine_steps(e);
    fill_prompt(small_prompt, 20, 23); /* not cached */
    run_job(e, small_prompt, 20, 4, 1, small);
    int64_t took = engine_steps(e) - t0;
    print_message("small request: %lld steps alone, %lld steps behind n=16\n", (long long)solo_steps, (long long)took);
    if (took > solo_steps + 6) fail_msg("the small request took %lld steps behind n=16 (alone %lld)", (long long)took, (long long)solo_steps);
    check_output(small_prompt, 20, small, 0);
    collect(big_ch, 16, big);
    assert_int_equal(big->errors, 0);
    for (int32_t k = 0; k < 16; k++) {
        assert_int_equal(big->n[k], 120);
        check_output(big_prompt, 200, big, k);
    }
    free(small);
    free(big);
    stop(e);
}

/* A reader that stalls: the engine pauses its sequence with a bounded
 * backlog (and does not spin), and resumes it when the reader reads; the
 * output is the reference's. */
static void test_stalled_reader_has_a_bounded_backlog(void **state) {
    (void)state;
    engine_config c = base_config(16u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[30];
    fill_prompt(prompt, 30, 31);
    engine_job jb = {.prompt = prompt, .n_prompt = 30, .n_choices = 1, .max_tokens = 500, .top_logprobs = -1};
    sampler_params_default(&jb.sampling);
    jb.sampling.temperature = 0;
    channel *ch = channel_create();
    if (engine_submit(e, &jb, ch, &err)) fail_msg("submit: %s", err.message);
    int32_t backlog = 0;
    for (int i = 0; i < 2000 && (backlog = channel_backlog(ch)) < 256; i++) usleep(1000);
    usleep(100 * 1000);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    usleep(300 * 1000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    backlog = channel_backlog(ch);
    if (backlog > 257) fail_msg("%d events buffered for a stalled reader", backlog);
    /* spinning would burn the whole 0.3 s */
    if (cpu_s > 0.15) fail_msg("the engine burned %.3f s of CPU in 0.3 s while its only reader stalled", cpu_s);
    result *r = malloc(sizeof *r);
    collect(ch, 1, r); /* reads it all: the sequence resumes */
    assert_int_equal(r->n[0], 500);
    check_output(prompt, 30, r, 0);
    free(r);
    stop(e);
}

static void test_cache_size_zero_keeps_nothing_idle(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    c.cache_max_entries = 0;
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[100];
    fill_prompt(prompt, 100, 17);
    result *r = malloc(sizeof *r);
    run_job(e, prompt, 100, 5, 1, r);
    run_job(e, prompt, 100, 5, 1, r);
    assert_int_equal(r->cached, 0);
    usleep(20000);
    engine_stats st = engine_get_stats(e);
    assert_int_equal(st.cache_entries, 0);
    assert_int_equal(st.pages_free, st.pages_total);
    free(r);
    stop(e);
}

static void test_clear_cache_frees_idle_pages(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t prompt[100];
    fill_prompt(prompt, 100, 23);
    result *r = malloc(sizeof *r);
    run_job(e, prompt, 100, 5, 1, r);
    usleep(20000);
    assert_true(engine_get_stats(e).pages_free < engine_get_stats(e).pages_total);
    engine_clear_cache(e);
    usleep(20000);
    engine_stats st = engine_get_stats(e);
    assert_int_equal(st.pages_free, st.pages_total);
    assert_int_equal(st.cache_entries, 0);
    free(r);
    stop(e);
}

/* Two jobs submitted together with a long shared prefix: the second waits for
 * the first's prefill checkpoints instead of computing the prefix again. */
static void test_concurrent_shared_prefix_is_computed_once(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    int32_t a[320], b[320];
    fill_prompt(a, 320, 31);
    memcpy(b, a, 300 * sizeof(int32_t));
    fill_prompt(b + 300, 20, 32);
    engine_job ja = {.prompt = a, .n_prompt = 320, .n_choices = 1, .max_tokens = 4, .top_logprobs = -1};
    engine_job jb = ja;
    jb.prompt = b;
    sampler_params_default(&ja.sampling);
    ja.sampling.temperature = 0;
    jb.sampling = ja.sampling;
    channel *cha = channel_create(), *chb = channel_create();
    assert_int_equal(engine_submit(e, &ja, cha, &err), 0);
    assert_int_equal(engine_submit(e, &jb, chb, &err), 0);
    result *ra = malloc(sizeof *ra), *rb = malloc(sizeof *rb);
    collect(cha, 1, ra);
    collect(chb, 1, rb);
    check_output(a, 320, ra, 0);
    check_output(b, 320, rb, 0);
    assert_int_equal(ra->cached + rb->cached, 300); /* one of them reused the 300 shared tokens */
    free(ra);
    free(rb);
    stop(e);
}

/* ---- pre-warming */

/* Counts forward passes that mixed tokens of two sequences (a pre-warming job
 * must never share one with a real request). */
static forward_fn g_inner_forward;
static void *g_inner_ctx;
static int g_mixed_passes, g_passes;
static int counting_forward(void *ctx, const forward_token *items, int32_t n, float *logits, larder_error *err) {
    (void)ctx;
    g_passes++;
    usleep(500); /* a pass takes time, so a test sees the pre-warming job run */
    for (int32_t i = 1; i < n; i++)
        if (items[i].kv.seq != items[0].kv.seq) {
            g_mixed_passes++;
            break;
        }
    return g_inner_forward(g_inner_ctx, items, n, logits, err);
}

static engine *start_counting(engine_config *c, larder_error *err) {
    g_fake = fake_model_create(g_kv_bytes, g_page_tokens, err);
    if (!g_fake) return NULL;
    fake_model_engine_config(g_fake, c);
    g_inner_forward = c->forward;
    g_inner_ctx = c->forward_ctx;
    c->forward = counting_forward;
    g_mixed_passes = g_passes = 0;
    return engine_start(c, err);
}

static channel *submit_prewarm(engine *e, const int32_t *prompt, int32_t n) {
    engine_job jb = {.prompt = prompt, .n_prompt = n, .n_choices = 1, .top_logprobs = -1, .prefill_only = true};
    sampler_params_default(&jb.sampling);
    channel *ch = channel_create();
    larder_error err = {0};
    if (engine_submit(e, &jb, ch, &err)) fail_msg("submit prewarm: %s", err.message);
    return ch;
}

/* Waits for a pre-warming job's one DONE event; returns its finish. */
static channel_finish wait_prewarm(channel *ch, int32_t *cached) {
    channel_event ev;
    if (!channel_pop(ch, &ev, 30000)) fail_msg("pre-warming timed out");
    assert_int_equal(ev.kind, CHANNEL_EVENT_DONE);
    if (cached) *cached = ev.cached_tokens;
    assert_false(channel_pop(ch, &ev, 20)); /* nothing else comes */
    channel_release(ch);
    return ev.finish;
}

static engine_stats stats_settled(engine *e) {
    usleep(20000); /* stats are published after each loop */
    return engine_get_stats(e);
}

/* A pre-warmed prefix serves the next request: all of it is cached, the
 * answer equals the reference, the hit is counted as a pre-warming hit. A
 * second pre-warming of what the cache holds computes nothing. */
static void test_prewarm_fills_cache_for_next_request(void **state) {
    (void)state;
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    if (!e) fail_msg("%s", err.message);
    int32_t prompt[400];
    fill_prompt(prompt, 330, 41);
    int32_t cached = -1;
    assert_int_equal(wait_prewarm(submit_prewarm(e, prompt, 300), &cached), FINISH_STOP);
    assert_int_equal(cached, 0);
    engine_stats st = stats_settled(e);
    assert_int_equal(st.prewarm_jobs, 1);
    assert_int_equal(st.prewarm_tokens, 300);
    assert_int_equal(st.running, 0);
    assert_true(st.cache_entries >= 1);
    int64_t fwd = fake_model_forward_tokens(g_fake);
    assert_int_equal(wait_prewarm(submit_prewarm(e, prompt, 300), &cached), FINISH_STOP);
    assert_int_equal(cached, 300);
    assert_int_equal(fake_model_forward_tokens(g_fake), fwd); /* nothing computed again */
    result *r = malloc(sizeof *r);
    run_job(e, prompt, 330, 8, 1, r);
    assert_int_equal(r->errors, 0);
    check_output(prompt, 330, r, 0);
    assert_int_equal(r->cached, 300);
    st = stats_settled(e);
    assert_int_equal(st.prewarm_hit_tokens, 300);
    assert_int_equal(st.prewarm_dropped, 1);
    /* Again: its 18 whole pre-warmed pages count, the page after them does
     * not (the first request copied the pre-warmed partial page and filled
     * the copy; the cache now holds that one). */
    run_job(e, prompt, 330, 8, 1, r);
    check_output(prompt, 330, r, 0);
    assert_true(r->cached >= 320);
    assert_int_equal(stats_settled(e).prewarm_hit_tokens, 300 + 18 * 16);
    free(r);
    stop(e);
}

/* A long pre-warming job is running when a real request arrives: the request
 * runs alone (no forward pass mixes them), its answer is right, the job is
 * stopped and then resumes from the cache and completes once idle; the
 * prefix is then fully cached. */
static void test_prewarm_yields_to_real_request(void **state) {
    (void)state;
    engine_config c = base_config(8u << 20);
    larder_error err = {0};
    engine *e = start_counting(&c, &err);
    if (!e) fail_msg("%s", err.message);
    enum { LONG = 3000 };
    int32_t *warm = malloc((LONG + 10) * sizeof *warm), other[120];
    fill_prompt(warm, LONG + 10, 43);
    fill_prompt(other, 120, 44);
    channel *ch = submit_prewarm(e, warm, LONG);
    engine_stats st = engine_get_stats(e);
    for (int i = 0; i < 10000 && st.running == 0; i++) { /* wait until it runs (47 passes of >= 0.5 ms) */
        usleep(100);
        st = engine_get_stats(e);
    }
    assert_int_equal(st.running, 1);
    result *r = malloc(sizeof *r);
    run_job(e, other, 120, 30, 1, r);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->n[0], 30);
    check_output(other, 120, r, 0);
    assert_int_equal(wait_prewarm(ch, NULL), FINISH_STOP);
    st = stats_settled(e);
    assert_true(st.prewarm_stopped >= 1);
    assert_int_equal(st.prewarm_jobs, 1);
    assert_true(st.prewarm_tokens >= LONG); /* a partial page computed before the stop may be redone */
    assert_true(st.prewarm_tokens <= LONG + 16);
    assert_int_equal(g_mixed_passes, 0);
    run_job(e, warm, LONG + 10, 4, 1, r);
    check_output(warm, LONG + 10, r, 0);
    assert_int_equal(r->cached, LONG);
    free(r);
    free(warm);
    stop(e);
}

/* While a real request runs, pre-warming jobs wait; past
 * ENGINE_MAX_PREWARM_JOBS the oldest are dropped (DONE, cancelled), and the
 * rest run once the engine is idle. */
static void test_prewarm_list_is_bounded(void **state) {
    (void)state;
    engine_config c = base_config(8u << 20);
    larder_error err = {0};
    engine *e = start(&c, &err);
    if (!e) fail_msg("%s", err.message);
    enum { EXTRA = 4, N = ENGINE_MAX_PREWARM_JOBS + EXTRA };
    int32_t busy[64], prompts[N][40];
    fill_prompt(busy, 64, 45);
    engine_job jb = {.prompt = busy, .n_prompt = 64, .n_choices = 1, .max_tokens = 400, .top_logprobs = -1, .ignore_eos = true};
    sampler_params_default(&jb.sampling);
    jb.sampling.temperature = 0;
    channel *busy_ch = channel_create();
    assert_int_equal(engine_submit(e, &jb, busy_ch, &err), 0);
    channel *chs[N];
    for (int i = 0; i < N; i++) {
        fill_prompt(prompts[i], 40, 100 + (uint32_t)i);
        chs[i] = submit_prewarm(e, prompts[i], 40);
    }
    result *r = malloc(sizeof *r);
    collect(busy_ch, 1, r);
    assert_int_equal(r->n[0], 400);
    int cancelled = 0, stopped = 0;
    for (int i = 0; i < N; i++) {
        channel_finish f = wait_prewarm(chs[i], NULL);
        if (f == FINISH_CANCELLED) cancelled++;
        else stopped++;
        if (i < EXTRA) assert_int_equal(f, FINISH_CANCELLED); /* the oldest went */
    }
    assert_int_equal(cancelled, EXTRA);
    assert_int_equal(stopped, ENGINE_MAX_PREWARM_JOBS);
    engine_stats st = stats_settled(e);
    assert_int_equal(st.prewarm_dropped, EXTRA);
    assert_int_equal(st.prewarm_jobs, ENGINE_MAX_PREWARM_JOBS);
    /* n must be 1 */
    engine_job bad = {.prompt = busy, .n_prompt = 10, .n_choices = 2, .top_logprobs = -1, .prefill_only = true};
    channel *bad_ch = channel_create();
    assert_int_equal(engine_submit(e, &bad, bad_ch, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    channel_release(bad_ch);
    channel_release(bad_ch);
    free(r);
    stop(e);
}

/* ---- the disk tier under the engine */

static kv_disk *g_disk;

static engine *start_with_disk(engine_config *c, const char *dir, larder_error *err) {
    g_fake = fake_model_create(g_kv_bytes, g_page_tokens, err);
    if (!g_fake) return NULL;
    fake_model_engine_config(g_fake, c);
    kv_disk_config dc = {dir, 64u << 20, 0xFACE};
    g_disk = kv_disk_open(&dc, g_fake->pool, err);
    if (!g_disk) return NULL;
    c->disk = g_disk;
    return engine_start(c, err);
}

static void stop_with_disk(engine *e) {
    engine_stop(e);
    kv_disk_close(g_disk); /* writes what is queued */
    g_disk = NULL;
    fake_model_free(g_fake);
    g_fake = NULL;
}

/* A conversation served by one engine is restored from disk by the next (a
 * new pool, a new cache): the follow-up is cached from the disk's pages and
 * its answer equals the reference — the fake model reads every token back
 * from the pages, so a wrong or stale page would change it. */
static void test_disk_tier_restores_after_restart(void **state) {
    (void)state;
    char dir[] = "/tmp/larder-engine-disk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    engine_config c = base_config(4u << 20);
    larder_error err = {0};
    engine *e = start_with_disk(&c, dir, &err);
    if (!e) fail_msg("%s", err.message);
    int32_t prompt[400];
    fill_prompt(prompt, 300, 51);
    result *r = malloc(sizeof *r);
    run_job(e, prompt, 300, 20, 1, r);
    check_output(prompt, 300, r, 0);
    stop_with_disk(e);
    /* the next process: of the 319 tokens with K/V (the last generated one
     * never went through the model), the 19 whole pages are on disk */
    memcpy(prompt + 300, r->tokens[0], 20 * sizeof(int32_t));
    fill_prompt(prompt + 320, 30, 52);
    c = base_config(4u << 20);
    e = start_with_disk(&c, dir, &err);
    if (!e) fail_msg("%s", err.message);
    run_job(e, prompt, 350, 10, 1, r);
    assert_int_equal(r->errors, 0);
    check_output(prompt, 350, r, 0);
    assert_int_equal(r->cached, 19 * 16);
    kv_disk_stats ds = kv_disk_get_stats(g_disk);
    assert_int_equal(ds.restored_pages, 19);
    assert_int_equal(ds.removed_bad_files, 0);
    stop_with_disk(e);
    free(r);
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_matches_reference_and_follow_up_hits_cache),
        cmocka_unit_test(test_budget_storm_all_complete),
        cmocka_unit_test(test_queue_full_is_refused),
        cmocka_unit_test(test_prompt_too_long_is_invalid),
        cmocka_unit_test(test_n_choices_share_prompt),
        cmocka_unit_test(test_small_request_is_not_starved_by_n16),
        cmocka_unit_test(test_stalled_reader_has_a_bounded_backlog),
        cmocka_unit_test(test_cache_size_zero_keeps_nothing_idle),
        cmocka_unit_test(test_clear_cache_frees_idle_pages),
        cmocka_unit_test(test_concurrent_shared_prefix_is_computed_once),
        cmocka_unit_test(test_rotating_window_bounds_a_sequence),
        cmocka_unit_test(test_prewarm_fills_cache_for_next_request),
        cmocka_unit_test(test_prewarm_yields_to_real_request),
        cmocka_unit_test(test_prewarm_list_is_bounded),
        cmocka_unit_test(test_disk_tier_restores_after_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
