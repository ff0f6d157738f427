/*
 * test_forward.c — the forward pass (its ops are tested in
 * tests/backend/test_backend_ops.c), on the backend LARDER_BACKEND names:
 *   a batch of two sequences gives each one's logits as when run alone;
 *   prefill then one-token decode steps give the full prefill's logits;
 *   models load for every architecture, and bad inputs fail clearly;
 *   every architecture's logits (mixtures of experts included) equal the
 *   forward pass computed from its definition in doubles.
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

#define N_ARCHS 5
static char model_path[N_ARCHS][256];
static const char *ARCHS[N_ARCHS] = {"llama", "qwen2", "qwen3", "qwen3moe", "minimax-m2"};

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
    for (int i = 0; i < N_ARCHS; i++) {
        snprintf(model_path[i], sizeof model_path[i], "%s/tiny-%s-%d.gguf", tmp ? tmp : "/tmp", ARCHS[i], (int)getpid());
        if (tiny_model_write(model_path[i], ARCHS[i], i == 2 || i == 3 /* tied */, 100 + i)) return -1;
    }
    return 0;
}

static int teardown_models(void **state) {
    (void)state;
    for (int i = 0; i < N_ARCHS; i++) unlink(model_path[i]);
    backend_free(g_be);
    return 0;
}

static void test_models_load(void **state) {
    (void)state;
    larder_error err;
    for (int i = 0; i < N_ARCHS; i++) {
        model *m = model_load(model_path[i], &err);
        assert_non_null(m);
        const model_layer *l = &m->layers[1];
        assert_int_equal(m->hp.n_vocab, TINY_VOCAB);
        assert_int_equal(m->hp.n_kv_heads, 2);
        assert_int_equal(m->hp.head_dim, i >= 2 ? 24 : 16);
        assert_int_equal(m->hp.n_rot, i == 4 ? 12 : m->hp.head_dim);
        assert_string_equal(m->hp.arch->name, ARCHS[i]);
        assert_int_equal(m->hp.arch->rope == ARCH_ROPE_NEOX, i != 0);
        assert_int_equal(m->output_tied, i == 2 || i == 3);
        assert_true((l->bq.data != NULL) == (i == 1));
        assert_true((l->q_norm.data != NULL) == (i >= 2));
        assert_int_equal(l->q_norm.n, i == 4 ? 4 * 24 : i >= 2 ? 24 : 0); /* minimax-m2: the whole q row */
        /* mixtures of experts: the stacked experts bound in place, the router, the selection bias */
        assert_int_equal(m->hp.n_expert, i >= 3 ? TINY_EXPERTS : 0);
        assert_int_equal(m->hp.n_expert_used, i >= 3 ? TINY_EXPERTS_USED : 0);
        assert_int_equal(m->hp.n_ff_exp, i == 3 ? TINY_FF_EXP : i == 4 ? TINY_FF : 0);
        assert_true((l->w_gate.data != NULL) == (i < 3));
        assert_true((l->router.data != NULL) == (i >= 3));
        assert_true((l->exp_probs_b.data != NULL) == (i == 4));
        if (i >= 3) {
            assert_int_equal(l->gate_exps.rows, (int64_t)TINY_EXPERTS * m->hp.n_ff_exp);
            assert_int_equal(l->down_exps.cols, m->hp.n_ff_exp);
            assert_int_equal(m->hp.gating, i == 3 ? ARCH_GATING_SOFTMAX : ARCH_GATING_SIGMOID);
        }
        model_free(m);
    }
    assert_null(model_load("/nonexistent/x.gguf", &err));
    assert_non_null(strstr(err.message, "/nonexistent/x.gguf"));
}

/* A file of an architecture without a row fails with ERR_UNSUPPORTED, naming
 * it and the supported ones; a missing or misshapen tensor of the list fails
 * naming that tensor. */
static void test_unsupported_or_incomplete_files_fail_clearly(void **state) {
    (void)state;
    char path[300];
    const char *tmp = getenv("TEST_TMP");
    snprintf(path, sizeof path, "%s/tiny-bad-%d.gguf", tmp ? tmp : "/tmp", (int)getpid());
    gguf_writer *w = gguf_writer_create(NULL);
    assert_int_equal(gguf_writer_set_string(w, "general.architecture", "mamba", NULL), 0);
    assert_int_equal(gguf_writer_write(w, path, NULL), 0);
    gguf_writer_free(w);
    larder_error err = {0};
    assert_null(model_load(path, &err));
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "architecture 'mamba' is not supported (llama, qwen2, qwen3, qwen3moe, minimax-m2)"));

    /* qwen2 requires its biases: a file without attn_v.bias of layer 1 */
    gguf_file *good = gguf_open(model_path[1], &err);
    assert_non_null(good);
    for (int variant = 0; variant < 2; variant++) {
        w = gguf_writer_create(NULL);
        for (int64_t i = 0; i < gguf_kv_count(good); i++)
            assert_int_equal(gguf_writer_copy_kv(w, good, gguf_kv_key(good, i), NULL), 0);
        for (int64_t i = 0; i < gguf_tensor_count(good); i++) {
            const gguf_tensor *t = gguf_tensor_at(good, i);
            int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
            if (variant == 0 && !strcmp(t->name, "blk.1.attn_v.bias")) continue;
            if (variant == 1 && !strcmp(t->name, "blk.0.ffn_up.weight")) ne[0] /= 2, ne[1] *= 2; /* same bytes */
            assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data, NULL), 0);
        }
        assert_int_equal(gguf_writer_write(w, path, NULL), 0);
        gguf_writer_free(w);
        assert_null(model_load(path, &err));
        assert_int_equal(err.code, ERR_FORMAT);
        if (variant == 0) assert_non_null(strstr(err.message, "tensor blk.1.attn_v.bias is missing"));
        else assert_non_null(strstr(err.message, "tensor blk.0.ffn_up.weight has shape [32, 192], expected [64, 96]"));
    }
    gguf_close(good);
    unlink(path);
}

#define NTOK 13
static const int32_t SEQ_A[NTOK] = {1, 5, 17, 33, 2, 90, 44, 44, 7, 61, 12, 3, 80};
static const int32_t SEQ_B[NTOK] = {9, 9, 70, 31, 15, 88, 0, 52, 6, 27, 95, 40, 11};

/* ---- the forward pass against its definition */

/* y (rows) = W x for an f32 weight, in doubles. */
static void ref_matvec(const model_weight *w, const double *x, double *y) {
    assert_int_equal(w->type, TYPE_F32);
    const float *d = w->data;
    for (int64_t r = 0; r < w->rows; r++) {
        double acc = 0;
        for (int64_t c = 0; c < w->cols; c++) acc += (double)d[r * w->cols + c] * x[c];
        y[r] = acc;
    }
}

/* x (n) = x / rms(x) * w, in place. */
static void ref_rmsnorm(double *x, const float *w, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * r * w[i];
}

/* Q/K norm as the architecture's row says: each head on its own (PER_HEAD)
 * or the whole row of `heads` heads (WHOLE). */
static void ref_qk_norm(double *x, const float *w, int64_t heads, int64_t D, arch_qk_norm kind, double eps) {
    if (!w || kind == ARCH_QK_NORM_NONE) return;
    if (kind == ARCH_QK_NORM_WHOLE) ref_rmsnorm(x, w, heads * D, eps);
    else for (int64_t h = 0; h < heads; h++) ref_rmsnorm(x + h * D, w, D, eps);
}

/* Rotates each head's first n_rot values at position pos, theta_i = pos * base^(-2i/n_rot). */
static void ref_rope(double *x, int64_t heads, int64_t D, const model_hparams *hp, int pos) {
    int64_t half = hp->n_rot / 2;
    for (int64_t h = 0; h < heads; h++)
        for (int64_t i = 0; i < half; i++) {
            bool neox = hp->arch->rope == ARCH_ROPE_NEOX;
            int64_t a = h * D + (neox ? i : 2 * i), b = h * D + (neox ? i + half : 2 * i + 1);
            double th = pos * pow((double)hp->rope_theta, -2.0 * (double)i / hp->n_rot);
            double xa = x[a], xb = x[b];
            x[a] = xa * cos(th) - xb * sin(th);
            x[b] = xa * sin(th) + xb * cos(th);
        }
}

enum { REF_MAXW = 256 };

/* xb = Wdown (silu(Wgate xb) * Wup xb), W of ff rows (an expert: a view of its rows). */
static void ref_ffn(const model_weight *wg, const model_weight *wu, const model_weight *wd, int64_t ff, double *xb) {
    double g[REF_MAXW], u[REF_MAXW];
    assert_true(ff <= REF_MAXW && wg->rows == ff && wu->rows == ff);
    ref_matvec(wg, xb, g), ref_matvec(wu, xb, u);
    for (int64_t i = 0; i < ff; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i]; /* silu(gate) * up */
    ref_matvec(wd, g, xb);
}

/* Expert e of a stacked matrix (rows_per_expert rows each) as a matrix of its own. */
static model_weight ref_expert(const model_weight *w, int64_t e, int64_t rows_per_expert) {
    model_weight v = *w;
    v.rows = rows_per_expert;
    v.data = (const uint8_t *)w->data + (size_t)(e * rows_per_expert) * w->row_bytes;
    return v;
}

/* xb = the mixture of experts of xb, from its definition: scores softmax or
 * sigmoid of the router logits, the top k by score + selection bias, their
 * unbiased scores renormalised as weights, the weighted sum of the chosen
 * experts' SwiGLU FFNs. */
static void ref_moe(const model_hparams *hp, const model_layer *l, double *xb) {
    const int64_t E = hp->n_expert, K = hp->n_expert_used, ff = hp->n_ff_exp, dim = hp->dim;
    double logit[64], s[64], sum = 0, wsum = 0, out[REF_MAXW] = {0}, y[REF_MAXW];
    int64_t chosen[64];
    assert_true(E <= 64);
    ref_matvec(&l->router, xb, logit);
    double mx = -1e300;
    for (int64_t e = 0; e < E; e++) mx = fmax(mx, logit[e]);
    for (int64_t e = 0; e < E; e++)
        s[e] = hp->gating == ARCH_GATING_SIGMOID ? 1.0 / (1.0 + exp(-logit[e])) : exp(logit[e] - mx);
    for (int64_t e = 0; hp->gating == ARCH_GATING_SOFTMAX && e < E; e++) sum += s[e];
    for (int64_t e = 0; hp->gating == ARCH_GATING_SOFTMAX && e < E; e++) s[e] /= sum;
    bool taken[64] = {false};
    for (int64_t j = 0; j < K; j++) { /* the j-th largest score + bias */
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            double v = s[e] + (l->exp_probs_b.data ? l->exp_probs_b.data[e] : 0);
            double bv = best < 0 ? 0 : s[best] + (l->exp_probs_b.data ? l->exp_probs_b.data[best] : 0);
            if (!taken[e] && (best < 0 || v > bv)) best = e;
        }
        taken[best] = true;
        chosen[j] = best;
        wsum += s[best];
    }
    for (int64_t j = 0; j < K; j++) {
        model_weight g = ref_expert(&l->gate_exps, chosen[j], ff), u = ref_expert(&l->up_exps, chosen[j], ff),
                     d = ref_expert(&l->down_exps, chosen[j], dim);
        memcpy(y, xb, (size_t)dim * sizeof *y);
        ref_ffn(&g, &u, &d, ff, y);
        for (int64_t i = 0; i < dim; i++) out[i] += s[chosen[j]] / wsum * y[i];
    }
    memcpy(xb, out, (size_t)dim * sizeof *xb);
}

/* The model's logits for tokens[0..n) of one sequence, all positions,
 * computed directly from the definition in doubles (n <= 16). */
static void forward_reference(const model *m, const int32_t *tokens, int n, double *logits) {
    const model_hparams *hp = &m->hp;
    const int64_t dim = hp->dim, H = hp->n_heads, Hkv = hp->n_kv_heads, D = hp->head_dim, ff = hp->n_ff;
    enum { MAXN = 16, MAXW = REF_MAXW };
    assert_true(n <= MAXN && dim <= MAXW && H * D <= MAXW && ff <= MAXW);
    static double x[MAXN][MAXW], K[MAXN][MAXW], V[MAXN][MAXW];
    double xb[MAXW], q[MAXW], att[MAXW], o[MAXW];
    for (int t = 0; t < n; t++)
        for (int64_t i = 0; i < dim; i++) x[t][i] = ((const float *)m->tok_embd.data)[tokens[t] * dim + i];
    for (int il = 0; il < hp->n_layers; il++) {
        const model_layer *l = &m->layers[il];
        for (int t = 0; t < n; t++) { /* causal: token t sees K/V of 0..t, all computed by then */
            memcpy(xb, x[t], (size_t)dim * sizeof *xb);
            ref_rmsnorm(xb, l->attn_norm.data, dim, hp->rms_eps);
            ref_matvec(&l->wq, xb, q), ref_matvec(&l->wk, xb, K[t]), ref_matvec(&l->wv, xb, V[t]);
            for (int64_t i = 0; l->bq.data && i < H * D; i++) q[i] += l->bq.data[i];
            for (int64_t i = 0; l->bk.data && i < Hkv * D; i++) K[t][i] += l->bk.data[i];
            for (int64_t i = 0; l->bv.data && i < Hkv * D; i++) V[t][i] += l->bv.data[i];
            ref_qk_norm(q, l->q_norm.data, H, D, hp->arch->qk_norm, hp->rms_eps);
            ref_qk_norm(K[t], l->k_norm.data, Hkv, D, hp->arch->qk_norm, hp->rms_eps);
            ref_rope(q, H, D, hp, t), ref_rope(K[t], Hkv, D, hp, t);
            for (int64_t h = 0; h < H; h++) {
                int64_t kh = h / (H / Hkv);
                double sc[MAXN], mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += q[h * D + i] * K[j][kh * D + i];
                    sc[j] = d / sqrt((double)D);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = 0; j <= t; j++) sum += sc[j] = exp(sc[j] - mx);
                for (int64_t i = 0; i < D; i++) {
                    double acc = 0;
                    for (int j = 0; j <= t; j++) acc += sc[j] / sum * V[j][kh * D + i];
                    att[h * D + i] = acc;
                }
            }
            ref_matvec(&l->wo, att, o);
            for (int64_t i = 0; i < dim; i++) o[i] += x[t][i]; /* the residual; x[t] is still needed below */
            memcpy(xb, o, (size_t)dim * sizeof *xb);
            ref_rmsnorm(xb, l->ffn_norm.data, dim, hp->rms_eps);
            if (hp->arch->ffn == ARCH_FFN_MOE) ref_moe(hp, l, xb);
            else ref_ffn(&l->w_gate, &l->w_up, &l->w_down, ff, xb);
            for (int64_t i = 0; i < dim; i++) x[t][i] = o[i] + xb[i];
        }
    }
    for (int t = 0; t < n; t++) {
        ref_rmsnorm(x[t], m->output_norm.data, dim, hp->rms_eps);
        ref_matvec(&m->output, x[t], logits + (size_t)t * (size_t)hp->n_vocab);
    }
}

/* Every architecture's logits (F32 weights, F32 KV) equal the direct
 * computation (minimax-m2 checks the Q/K norm over the whole row, partial
 * rope, sigmoid routing with a selection bias; qwen3moe softmax routing). */
static void test_forward_equals_definition(void **state) {
    (void)state;
    enum { N = 9 };
    larder_error err;
    for (int a = 0; a < N_ARCHS; a++) {
        model *m = load(a);
        runner *r = runner_create(m, g_be, &(runner_config){.kv_type = TYPE_F32, .max_seq_tokens = 32}, &err);
        assert_non_null(r);
        kv_seq seq;
        kv_seq_init(&seq);
        float got[N * TINY_VOCAB];
        double want[N * TINY_VOCAB];
        assert_int_equal(runner_eval(r, &seq, SEQ_A, N, true, got, &err), 0);
        forward_reference(m, SEQ_A, N, want);
        double worst = 0, scale = 0;
        /* comparisons, not fmax: this loop with fmax crashes Debian 12's
         * aarch64 gcc 12.2 (internal compiler error in vect_transform_reduction) */
        for (int i = 0; i < N * TINY_VOCAB; i++) {
            double e = fabs(got[i] - want[i]), w = fabs(want[i]);
            if (e > worst) worst = e;
            if (w > scale) scale = w;
        }
        printf("    %s: worst |logit - reference| %.2e (logits up to %.1f)\n", ARCHS[a], worst, scale);
        assert_true(scale > 1.0);
        assert_true(worst < 1e-4);
        kv_seq_release(&seq, r->pool);
        runner_free(r);
        model_free(m);
    }
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) { /* not fmax: see test_forward_equals_definition */
        double e = fabs((double)a[i] - b[i]);
        if (e > m) m = e;
    }
    return m;
}

/* Prefill of all tokens in one batch vs one token per step vs chunks. */
static void test_prefill_then_decode_equals_full_prefill(void **state) {
    (void)state;
    larder_error err;
    for (int a = 0; a < N_ARCHS; a++) {
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
    for (int a = 0; a < N_ARCHS; a++) {
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
        cmocka_unit_test(test_unsupported_or_incomplete_files_fail_clearly),
        cmocka_unit_test(test_forward_equals_definition),
        cmocka_unit_test(test_prefill_then_decode_equals_full_prefill),
        cmocka_unit_test(test_batch_of_two_sequences_equals_each_alone),
        cmocka_unit_test(test_bad_tokens_rejected),
    };
    return cmocka_run_group_tests(tests, setup_models, teardown_models);
}
