/*
 * test_forward.c — the forward pass and its ops:
 *   rope equals the direct rotation formula (both pairings);
 *   rmsnorm equals its definition;
 *   the SIMD vector kernels equal the scalar ones;
 *   attention over scattered pages equals attention over contiguous K/V;
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
#include "backend/cpu/cpu_ops.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/seq_runner.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "model/tiny_model.h"

static float frand(unsigned *s) { return tiny_rand(s) * 2.0f; }

static void test_rope_matches_formula(void **state) {
    (void)state;
    backend *b = backend_cpu_create(1, NULL);
    assert_non_null(b);
    enum { H = 3, D = 16, NROT = 12, NT = 2 };
    float factors[NROT / 2] = {1, 1, 4, 1, 1, 1};
    const backend_rope_freqs freqs = {powf(10000.0f, -2.0f / NROT), 0.5f, factors};
    int32_t pos[NT] = {7, 1234};
    for (int neox = 0; neox < 2; neox++) {
        float x[NT * H * D], y[NT * H * D];
        unsigned s = 5;
        for (int i = 0; i < NT * H * D; i++) x[i] = y[i] = frand(&s);
        backend_rope(b, y, pos, NT, H, D, NROT, &freqs, neox);
        for (int t = 0; t < NT; t++)
            for (int h = 0; h < H; h++) {
                const float *v = x + (t * H + h) * D, *r = y + (t * H + h) * D;
                for (int i = 0; i < NROT / 2; i++) {
                    int ia = neox ? i : 2 * i, ib = neox ? i + NROT / 2 : 2 * i + 1;
                    double th = 0.5 * pos[t] * pow(10000.0, -2.0 * i / NROT) / factors[i];
                    assert_float_equal(r[ia], v[ia] * cos(th) - v[ib] * sin(th), 2e-3);
                    assert_float_equal(r[ib], v[ia] * sin(th) + v[ib] * cos(th), 2e-3);
                }
                for (int i = NROT; i < D; i++) assert_float_equal(r[i], v[i], 0); /* unrotated tail */
            }
    }
    backend_free(b);
}

static void test_rmsnorm_matches_definition(void **state) {
    (void)state;
    backend *b = backend_cpu_create(1, NULL);
    enum { N = 3, DIM = 37 };
    float x[N * DIM], w[DIM], y[N * DIM];
    unsigned s = 9;
    for (int i = 0; i < N * DIM; i++) x[i] = frand(&s) * (1 + i % 5);
    for (int i = 0; i < DIM; i++) w[i] = frand(&s);
    backend_rmsnorm(b, x, w, y, N, DIM, 1e-5f);
    for (int t = 0; t < N; t++) {
        double ss = 0;
        for (int i = 0; i < DIM; i++) ss += (double)x[t * DIM + i] * x[t * DIM + i];
        double r = 1.0 / sqrt(ss / DIM + 1e-5);
        for (int i = 0; i < DIM; i++) assert_float_equal(y[t * DIM + i], x[t * DIM + i] * r * w[i], 1e-5);
    }
    backend_free(b);
}

static void test_simd_kernels_match_scalar(void **state) {
    (void)state;
    const cpu_vec_kernels *ref = cpu_vec_scalar(), *k = cpu_vec_avx2();
    if (!k) k = cpu_vec_best(); /* no AVX2: the best is scalar; still exercised */
    unsigned s = 3;
    enum { KB = CPU_ATTN_KEY_BLOCK, MAXD = 80, MAXQ = 7 };
    for (int n = 1; n < MAXD; n += 7) {
        float a[MAXD], f1[MAXD], f2[MAXD];
        uint16_t bh[MAXD], h1[MAXD], h2[MAXD];
        for (int i = 0; i < n; i++) a[i] = frand(&s), bh[i] = f32_to_fp16(frand(&s));
        k->f32_to_f16(h1, a, n), ref->f32_to_f16(h2, a, n);
        assert_memory_equal(h1, h2, (size_t)n * 2);
        k->f16_to_f32(f1, bh, n), ref->f16_to_f32(f2, bh, n);
        assert_memory_equal(f1, f2, (size_t)n * 4);
        /* softmax pieces: scale and max exact; exp within 1e-6 relative
         * (and exp(-inf) = 0, tiny arguments 0); rounding to half exact */
        for (int i = 0; i < n; i++) f1[i] = f2[i] = a[i] * 9.0f;
        assert_float_equal(k->scale_max(f1, n, 0.37f), ref->scale_max(f2, n, 0.37f), 0);
        assert_memory_equal(f1, f2, (size_t)n * 4);
        f1[0] = f2[0] = -INFINITY;
        if (n > 2) f1[2] = f2[2] = -200.0f;
        float m = 3.0f, e1 = k->exp_sum(f1, n, m), e2 = ref->exp_sum(f2, n, m);
        assert_true(fabsf(e1 - e2) <= 1e-6f * e2);
        for (int i = 0; i < n; i++) assert_true(fabsf(f1[i] - f2[i]) <= 1e-6f * f2[i]);
        assert_true(f1[0] == 0.0f && (n <= 2 || f1[2] == 0.0f));
        for (int i = 0; i < n; i++) f1[i] = f2[i] = a[i];
        for (int rf = 0; rf < 2; rf++) {
            k->scale_round(f1, n, 0.3f, rf), ref->scale_round(f2, n, 0.3f, rf);
            assert_memory_equal(f1, f2, (size_t)n * 4);
        }
        /* scores and weighted sums: every row count (register blocks of 4
         * and tails) and key count, head size n */
        static float q[MAXQ * MAXD], kt[MAXD * KB], v[KB * MAXD], s1[MAXQ * 20], s2[MAXQ * 20], o1[MAXQ * MAXD],
            o2[MAXQ * MAXD];
        for (int i = 0; i < MAXQ * MAXD; i++) q[i] = frand(&s), o1[i] = o2[i] = frand(&s);
        for (int i = 0; i < MAXD * KB; i++) kt[i] = frand(&s), v[i] = frand(&s);
        /* key blocks transposed: exact, every row count (zero columns after) */
        static uint16_t rh[KB * MAXD];
        static float rf[KB * MAXD], t1[MAXD * KB], t2[MAXD * KB];
        for (int i = 0; i < KB * MAXD; i++) rf[i] = frand(&s), rh[i] = f32_to_fp16(frand(&s));
        for (int nk = 1; nk <= KB; nk += 3) {
            k->kt_from_f16(t1, rh, MAXD, nk, n), ref->kt_from_f16(t2, rh, MAXD, nk, n);
            assert_memory_equal(t1, t2, (size_t)n * KB * 4);
            k->kt_from_f32(t1, rf, MAXD, nk, n), ref->kt_from_f32(t2, rf, MAXD, nk, n);
            assert_memory_equal(t1, t2, (size_t)n * KB * 4);
        }
        for (int nq = 1; nq <= MAXQ; nq += 2)
            for (int nk = 1; nk <= KB; nk += 5) {
                k->attn_scores(s1, 20, q, n, nq, kt, nk, n), ref->attn_scores(s2, 20, q, n, nq, kt, nk, n);
                for (int r = 0; r < nq; r++)
                    for (int j = 0; j < nk; j++) assert_float_equal(s1[r * 20 + j], s2[r * 20 + j], 1e-4);
                k->attn_pv(o1, n, s1, 20, nq, v, nk, n), ref->attn_pv(o2, n, s1, 20, nq, v, nk, n);
                for (int i = 0; i < nq * n; i++) assert_float_equal(o1[i], o2[i], 1e-3);
            }
    }
}

/* x (64) = H x, H the orthonormal 64x64 Walsh-Hadamard matrix written out
 * (Sylvester: H[i][j] = (-1)^popcount(i & j) / 8), not the fast transform. */
static void hadamard64(float *x) {
    float y[64];
    for (int i = 0; i < 64; i++) {
        double acc = 0;
        for (int j = 0; j < 64; j++) acc += (__builtin_popcount((unsigned)(i & j)) & 1 ? -x[j] : x[j]) / 8.0;
        y[i] = (float)acc;
    }
    memcpy(x, y, sizeof y);
}

/* x (n) as a KV pool of `type` gives it back: quantized types (head size 64
 * here) are rotated, stored, read and rotated back; `act` rounds as a query
 * (to q8_0 for q8_0/q4_0) instead of as a stored row. */
static void kv_round_trip(uint32_t type, float *x, int n, bool act) {
    uint8_t tmp[512];
    bool rot = type == TYPE_Q8_0 || type == TYPE_Q4_0;
    if (rot) hadamard64(x);
    if (act && rot) quantize_row_activation(TYPE_Q8_0, x, tmp, n), dequantize_row(TYPE_Q8_0, tmp, x, n);
    else if (act && type == TYPE_F16) for (int i = 0; i < n; i++) x[i] = fp16_to_f32(f32_to_fp16(x[i]));
    else if (act && type == TYPE_BF16) for (int i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    else if (!act) assert_int_equal(quantize_row_fast(type, x, tmp, n), 0), dequantize_row(type, tmp, x, n);
    if (rot) hadamard64(x);
}

/* Reference attention of one token over contiguous K/V in doubles, with the
 * roundings backend.h promises for a KV type; window as in backend_kv_ref. */
static void attention_reference(uint32_t type, const float *Q, const float *K, const float *V, int t, int H,
                                int HKV, int D, float scale, int keep, int window, double *out) {
    enum { MAXLEN = 64 };
    for (int h = 0; h < H; h++) {
        int kh = h / (H / HKV);
        float q[64];
        memcpy(q, Q + (t * H + h) * D, (size_t)D * sizeof(float));
        kv_round_trip(type, q, D, true);
        double sc[MAXLEN], mx = -1e30, sum = 0;
        bool sees[MAXLEN];
        for (int j = 0; j <= t; j++) {
            sees[j] = window == 0 || j < keep || j > t - window;
            if (!sees[j]) continue;
            double d = 0;
            for (int i = 0; i < D; i++) d += (double)q[i] * K[(j * HKV + kh) * D + i];
            sc[j] = scale * d;
            if (sc[j] > mx) mx = sc[j];
        }
        for (int j = 0; j <= t; j++)
            if (sees[j]) sum += sc[j] = exp(sc[j] - mx);
        for (int i = 0; i < D; i++) {
            double o = 0;
            for (int j = 0; j <= t; j++) {
                if (!sees[j]) continue;
                float w = (float)(sc[j] / sum);
                if (type == TYPE_F16) w = fp16_to_f32(f32_to_fp16(w));
                else if (type == TYPE_BF16) w = bf16_to_f32(f32_to_bf16(w));
                o += w * V[(j * HKV + kh) * D + i];
            }
            out[h * D + i] = o;
        }
    }
}

/* Attention over pages scattered in the pool (page ids out of order, page
 * size 3, so key blocks end at page edges) against a direct computation over
 * contiguous K/V holding the values the pool's type stores (quantized types
 * through the Walsh-Hadamard rotation), for every KV type; 40 tokens of one sequence make two tiles. Then a rotating window
 * (keep 2, window 7): the last tokens, computed again after the pages wholly
 * inside their gap are filled with NaN, equal the reference that skips the
 * gap — so those pages are never read. */
static void test_paged_attention_equals_contiguous(void **state) {
    (void)state;
    enum { H = 4, HKV = 2, D = 64, LEN = 40, P = 3, NP = (LEN + P - 1) / P };
    const uint32_t types[] = {TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0};
    static float K[LEN * HKV * D], V[LEN * HKV * D], Q[LEN * H * D], out[LEN * H * D];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        kv_pool_config c = {.n_layers = 2, .n_kv_heads = HKV, .head_dim = D, .page_tokens = P,
                            .kv_type = type, .budget_bytes = 1 << 20, .low_water_pages = -1};
        kv_pool *pool = kv_pool_create(&c, NULL);
        assert_non_null(pool);
        backend *b = backend_cpu_create(2, NULL);
        /* occupy a few pages first so the sequence's pages are not 0,1,2.. */
        uint32_t junk[3], pages[NP];
        for (int i = 0; i < 3; i++) kv_pool_alloc(pool, &junk[i], NULL);
        for (int i = 0; i < NP; i++) kv_pool_alloc(pool, &pages[NP - 1 - i], NULL);
        unsigned s = 11;
        for (int i = 0; i < LEN * HKV * D; i++) K[i] = frand(&s), V[i] = frand(&s);
        for (int i = 0; i < LEN * H * D; i++) Q[i] = frand(&s);
        /* K and V as the pool's type stores them */
        for (int r = 0; r < LEN * HKV; r++) kv_round_trip(type, K + r * D, D, false), kv_round_trip(type, V + r * D, D, false);
        backend_kv_ref refs[LEN];
        for (int t = 0; t < LEN; t++) refs[t] = (backend_kv_ref){.pos = t, .pages = pages};
        assert_int_equal(backend_kv_store(b, pool, 1, K, V, refs, LEN, NULL), 0);
        assert_int_equal(backend_attention(b, pool, 1, Q, refs, LEN, H, 0.35f, out, NULL), 0);
        double want[H * D];
        for (int t = 0; t < LEN; t++) {
            attention_reference(type, Q, K, V, t, H, HKV, D, 0.35f, 0, 0, want);
            for (int i = 0; i < H * D; i++) assert_float_equal(out[t * H * D + i], want[i], 2e-4);
        }
        /* rotating window: tokens 35..39 see 0,1 and (t-7, t]; pages 1..8
         * (positions 3..26) are in every one's gap */
        enum { KEEP = 2, WIN = 7, T0 = 35 };
        for (int pi = 1; pi <= 8; pi++) memset(kv_pool_page_data(pool, pages[pi]), 0xff, kv_pool_page_bytes(pool));
        for (int t = T0; t < LEN; t++) refs[t].keep_tokens = KEEP, refs[t].window_tokens = WIN;
        assert_int_equal(backend_attention(b, pool, 1, Q + T0 * H * D, refs + T0, LEN - T0, H, 0.35f, out, NULL), 0);
        for (int t = T0; t < LEN; t++) {
            attention_reference(type, Q, K, V, t, H, HKV, D, 0.35f, KEEP, WIN, want);
            for (int i = 0; i < H * D; i++) assert_float_equal(out[(t - T0) * H * D + i], want[i], 2e-4);
        }
        backend_free(b);
        kv_pool_free(pool);
    }
}

static char model_path[3][256];
static const char *ARCHS[3] = {"llama", "qwen2", "qwen3"};

static int setup_models(void **state) {
    (void)state;
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
        assert_true((m->layers[0].bq != NULL) == (i == 1));
        assert_true((m->layers[0].q_norm != NULL) == (i == 2));
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
        model *m = model_load(model_path[a], &err);
        assert_non_null(m);
        seq_runner *r = seq_runner_create(m, 64, 2, TYPE_F32, &err);
        assert_non_null(r);
        float full[NTOK * TINY_VOCAB], step[TINY_VOCAB];
        assert_int_equal(seq_runner_eval(r, SEQ_A, NTOK, true, full, &err), 0);
        seq_runner_reset(r);
        assert_int_equal(seq_runner_eval(r, SEQ_A, 5, false, step, &err), 0); /* prefill 5 */
        assert_true(max_diff(step, full + 4 * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        for (int t = 5; t < NTOK; t++) {
            assert_int_equal(seq_runner_eval(r, SEQ_A + t, 1, false, step, &err), 0);
            assert_true(max_diff(step, full + t * TINY_VOCAB, TINY_VOCAB) < 1e-4);
        }
        assert_int_equal(r->seq.n_tokens, NTOK);
        seq_runner_free(r);
        model_free(m);
    }
}

/* Two sequences in one forward call (interleaved tokens, different
 * lengths, one in prefill while the other decodes) vs each alone. */
static void test_batch_of_two_sequences_equals_each_alone(void **state) {
    (void)state;
    larder_error err;
    for (int a = 0; a < 3; a++) {
        model *m = model_load(model_path[a], &err);
        assert_non_null(m);
        float ref_a[NTOK * TINY_VOCAB], ref_b[NTOK * TINY_VOCAB];
        seq_runner *r = seq_runner_create(m, 64, 1, TYPE_F16, &err);
        assert_int_equal(seq_runner_eval(r, SEQ_A, NTOK, true, ref_a, &err), 0);
        seq_runner_reset(r);
        assert_int_equal(seq_runner_eval(r, SEQ_B, NTOK, true, ref_b, &err), 0);
        seq_runner_free(r);

        kv_pool_config c = {.n_layers = m->hp.n_layers, .n_kv_heads = m->hp.n_kv_heads, .head_dim = m->hp.head_dim,
                            .page_tokens = 4, .kv_type = TYPE_F16, .budget_bytes = 1 << 20, .low_water_pages = -1};
        kv_pool *pool = kv_pool_create(&c, &err);
        forward_ctx *fw = forward_ctx_create(m, pool, 2, &err);
        assert_non_null(fw);
        kv_seq sa, sb;
        kv_seq_init(&sa), kv_seq_init(&sb);
        /* step 1: A's first 3 tokens alone */
        assert_int_equal(kv_seq_prepare(&sa, pool, 3, &err), 0);
        forward_token batch[NTOK * 2];
        float out[NTOK * 2 * TINY_VOCAB];
        for (int t = 0; t < 3; t++) batch[t] = (forward_token){.token = SEQ_A[t], .pos = t, .pages = sa.pages, .want_logits = true};
        assert_int_equal(forward_batch(fw, batch, 3, out, &err), 0);
        kv_seq_advance(&sa, 3);
        assert_true(max_diff(out, ref_a, 3 * TINY_VOCAB) < 1e-4);
        /* step 2: A's remaining tokens interleaved with all of B's */
        assert_int_equal(kv_seq_prepare(&sa, pool, NTOK - 3, &err), 0);
        assert_int_equal(kv_seq_prepare(&sb, pool, NTOK, &err), 0);
        int n = 0;
        for (int t = 0; t < NTOK; t++) {
            batch[n++] = (forward_token){.token = SEQ_B[t], .pos = t, .pages = sb.pages, .want_logits = true};
            if (t + 3 < NTOK) batch[n++] = (forward_token){.token = SEQ_A[t + 3], .pos = t + 3, .pages = sa.pages, .want_logits = true};
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
        forward_token one = {.token = SEQ_A[8], .pos = 8, .pages = sc.pages, .want_logits = true};
        assert_int_equal(forward_batch(fw, &one, 1, out, &err), 0);
        assert_true(max_diff(out, ref_a + 8 * TINY_VOCAB, TINY_VOCAB) < 1e-4);
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
    model *m = model_load(model_path[0], &err);
    seq_runner *r = seq_runner_create(m, 8, 1, TYPE_F16, &err);
    float out[TINY_VOCAB];
    int32_t bad[2] = {3, TINY_VOCAB};
    assert_int_equal(seq_runner_eval(r, bad, 2, false, out, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    int32_t neg = -1;
    assert_int_equal(seq_runner_eval(r, &neg, 1, false, out, &err), -1);
    int32_t many[9] = {0};
    assert_int_equal(seq_runner_eval(r, many, 9, false, out, &err), -1); /* beyond max_tokens */
    assert_int_equal(err.code, ERR_LIMIT);
    seq_runner_free(r);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_matches_formula),
        cmocka_unit_test(test_rmsnorm_matches_definition),
        cmocka_unit_test(test_simd_kernels_match_scalar),
        cmocka_unit_test(test_paged_attention_equals_contiguous),
        cmocka_unit_test(test_models_load),
        cmocka_unit_test(test_prefill_then_decode_equals_full_prefill),
        cmocka_unit_test(test_batch_of_two_sequences_equals_each_alone),
        cmocka_unit_test(test_bad_tokens_rejected),
    };
    return cmocka_run_group_tests(tests, setup_models, teardown_models);
}
