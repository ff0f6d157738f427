/*
 * test_forward.c — the forward pass (its ops are tested in
 * tests/backend/test_backend_ops.c), on the backend LARDER_BACKEND names:
 *   a batch of two sequences gives each one's logits as when run alone;
 *   prefill then one-token decode steps give the full prefill's logits;
 *   models load for every architecture, and bad inputs fail clearly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/runner.h"
#include "model/tiny_model.h"
#include "tensor/dtype.h"
#include "test_backend.h"

static backend *g_be; /* LARDER_BACKEND */

static char model_path[3][256];
static const char *ARCHS[3] = {"llama", "qwen2", "qwen3"};

/* Loads model a and uploads it to g_be. */
static model *load(int a) {
    larder_error err;
    model *m = model_load(model_path[a], &err);
    assert_non_null(m);
    assert_int_equal(model_upload(m, g_be, &err), 0);
    return m;
}

static int setup_models(void **state) {
    (void)state;
    g_be = test_backend_create(2);
    const char *tmp = getenv("TEST_TMP");
    for (int i = 0; i < 3; i++) {
        snprintf(model_path[i], sizeof model_path[i], "%s/tiny-%s-%d.gguf", tmp ? tmp : "/tmp", ARCHS[i], (int)getpid());
        if (tiny_model_write(model_path[i], ARCHS[i], 100 + i)) return -1;
    }
    return 0;
}

static int teardown_models(void **state) {
    (void)state;
    for (int i = 0; i < 3; i++) unlink(model_path[i]);
    backend_free(g_be);
    return 0;
}

static void test_models_load(void **state) {
    (void)state;
    larder_error err;
    for (int i = 0; i < 3; i++) {
        model *m = model_load(model_path[i], &err);
        assert_non_null(m);
        assert_int_equal(m->hp.n_vocab, TINY_VOCAB);
        assert_int_equal(m->hp.n_kv_heads, 2);
        assert_int_equal(m->hp.head_dim, i == 2 ? 24 : 16);
        assert_int_equal(m->hp.rope_neox, i != 0);
        assert_int_equal(m->output_tied, i == 2);
        assert_true((m->layers[0].bq.data != NULL) == (i == 1));
        assert_true((m->layers[0].q_norm.data != NULL) == (i == 2));
        model_free(m);
    }
    assert_null(model_load("/nonexistent/x.gguf", &err));
    assert_non_null(strstr(err.message, "/nonexistent/x.gguf"));
}

#define NTOK 13
static const int32_t SEQ_A[NTOK] = {1, 5, 17, 33, 2, 90, 44, 44, 7, 61, 12, 3, 80};
static const int32_t SEQ_B[NTOK] = {9, 9, 70, 31, 15, 88, 0, 52, 6, 27, 95, 40, 11};

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Prefill of all tokens in one batch vs one token per step vs chunks. */
static void test_prefill_then_decode_equals_full_prefill(void **state) {
    (void)state;
    larder_error err;
    for (int a = 0; a < 3; a++) {
        model *m = load(a);
        runner *r = runner_create(m, g_be, &(runner_config){.kv_type = TYPE_F32, .max_seq_tokens = 64}, &err);
        assert_non_null(r);
        kv_seq s;
        kv_seq_init(&s);
        float full[NTOK * TINY_VOCAB], step[TINY_VOCAB];
        assert_int_equal(runner_eval(r, &s, SEQ_A, NTOK, true, full, &err), 0);
        kv_seq_release(&s, r->pool);
        assert_int_equal(runner_eval(r, &s, SEQ_A, 5, false, step, &err), 0); /* prefill 5 */
        assert_true(max_diff(step, full + 4 * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        for (int t = 5; t < NTOK; t++) {
            assert_int_equal(runner_eval(r, &s, SEQ_A + t, 1, false, step, &err), 0);
            assert_true(max_diff(step, full + t * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        }
        assert_int_equal(s.n_tokens, NTOK);
        kv_seq_release(&s, r->pool);
        runner_free(r);
        model_free(m);
    }
}

/* Two sequences in one forward call (interleaved tokens, different
 * lengths, one in prefill while the other decodes) vs each alone. */
static void test_batch_of_two_sequences_equals_each_alone(void **state) {
    (void)state;
    larder_error err;
    for (int a = 0; a < 3; a++) {
        model *m = load(a);
        float ref_a[NTOK * TINY_VOCAB], ref_b[NTOK * TINY_VOCAB];
        runner *r = runner_create(m, g_be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = 64}, &err);
        kv_seq s;
        kv_seq_init(&s);
        assert_int_equal(runner_eval(r, &s, SEQ_A, NTOK, true, ref_a, &err), 0);
        kv_seq_release(&s, r->pool);
        assert_int_equal(runner_eval(r, &s, SEQ_B, NTOK, true, ref_b, &err), 0);
        kv_seq_release(&s, r->pool);
        runner_free(r);

        kv_pool_config c = {.n_layers = m->hp.n_layers, .n_kv_heads = m->hp.n_kv_heads, .head_dim = m->hp.head_dim,
                            .page_tokens = 4, .kv_type = TYPE_F16, .budget_bytes = 1 << 20, .low_water_pages = -1};
        kv_pool *pool = kv_pool_create(&c, g_be, &err);
        forward_ctx *fw = forward_ctx_create(m, pool, g_be, &err);
        assert_non_null(fw);
        kv_seq sa, sb;
        kv_seq_init(&sa), kv_seq_init(&sb);
        /* step 1: A's first 3 tokens alone */
        assert_int_equal(kv_seq_prepare(&sa, pool, 3, &err), 0);
        forward_token batch[NTOK * 2];
        float out[NTOK * 2 * TINY_VOCAB];
        for (int t = 0; t < 3; t++) batch[t] = (forward_token){.token = SEQ_A[t], .kv = {&sa, t}, .want_logits = true};
        assert_int_equal(forward_batch(fw, batch, 3, out, &err), 0);
        kv_seq_advance(&sa, 3);
        assert_true(max_diff(out, ref_a, 3 * TINY_VOCAB) < 1e-4);
        /* step 2: A's remaining tokens interleaved with all of B's */
        assert_int_equal(kv_seq_prepare(&sa, pool, NTOK - 3, &err), 0);
        assert_int_equal(kv_seq_prepare(&sb, pool, NTOK, &err), 0);
        int n = 0;
        for (int t = 0; t < NTOK; t++) {
            batch[n++] = (forward_token){.token = SEQ_B[t], .kv = {&sb, t}, .want_logits = true};
            if (t + 3 < NTOK) batch[n++] = (forward_token){.token = SEQ_A[t + 3], .kv = {&sa, t + 3}, .want_logits = true};
        }
        assert_int_equal(forward_batch(fw, batch, n, out, &err), 0);
        int k = 0;
        for (int t = 0; t < NTOK; t++) {
            assert_true(max_diff(out + (size_t)k++ * TINY_VOCAB, ref_b + t * TINY_VOCAB, TINY_VOCAB) < 1e-4);
            if (t + 3 < NTOK)
                assert_true(max_diff(out + (size_t)k++ * TINY_VOCAB, ref_a + (t + 3) * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        }
        /* logits only where asked: the last token of each */
        kv_seq_advance(&sa, NTOK - 3), kv_seq_advance(&sb, NTOK);
        /* a third sequence sharing A's first 8 tokens (2 full pages) via
         * attach, recomputing nothing: its next token's logits must match
         * A's at that position */
        kv_seq sc;
        kv_seq_init(&sc);
        assert_int_equal(kv_seq_attach(&sc, pool, sa.pages, 2, 8, &err), 0);
        assert_int_equal(kv_seq_prepare(&sc, pool, 1, &err), 0);
        forward_token one = {.token = SEQ_A[8], .kv = {&sc, 8}, .want_logits = true};
        assert_int_equal(forward_batch(fw, &one, 1, out, &err), 0);
        assert_true(max_diff(out, ref_a + 8 * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        /* a position its page table does not cover is refused */
        one.kv.pos = 40;
        assert_int_equal(forward_batch(fw, &one, 1, out, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        kv_seq_release(&sc, pool);
        kv_seq_release(&sa, pool), kv_seq_release(&sb, pool);
        assert_int_equal(kv_pool_pages_free(pool), kv_pool_pages_total(pool));
        forward_ctx_free(fw);
        kv_pool_free(pool);
        model_free(m);
    }
}

static void test_bad_tokens_rejected(void **state) {
    (void)state;
    larder_error err;
    model *m = load(0);
    runner *r = runner_create(m, g_be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = 8}, &err);
    kv_seq s;
    kv_seq_init(&s);
    float out[TINY_VOCAB];
    int32_t bad[2] = {3, TINY_VOCAB};
    assert_int_equal(runner_eval(r, &s, bad, 2, false, out, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    int32_t neg = -1;
    assert_int_equal(runner_eval(r, &s, &neg, 1, false, out, &err), -1);
    int32_t many[9] = {0};
    assert_int_equal(runner_eval(r, &s, many, 9, false, out, &err), -1); /* beyond max_seq_tokens */
    assert_int_equal(err.code, ERR_LIMIT);
    kv_seq_release(&s, r->pool);
    runner_free(r);
    /* a pool on one backend and a forward pass on another (here: a second
     * backend object) are refused */
    backend *other = test_backend_create(1);
    kv_pool_config c = {.n_layers = m->hp.n_layers, .n_kv_heads = m->hp.n_kv_heads, .head_dim = m->hp.head_dim,
                        .page_tokens = 4, .kv_type = TYPE_F16, .budget_bytes = 1 << 20, .low_water_pages = -1};
    kv_pool *pool = kv_pool_create(&c, other, &err);
    assert_null(forward_ctx_create(m, pool, g_be, &err));
    assert_int_equal(err.code, ERR_INVALID);
    kv_pool_free(pool);
    backend_free(other);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_load),
        cmocka_unit_test(test_prefill_then_decode_equals_full_prefill),
        cmocka_unit_test(test_batch_of_two_sequences_equals_each_alone),
        cmocka_unit_test(test_bad_tokens_rejected),
    };
    return cmocka_run_group_tests(tests, setup_models, teardown_models);
}
