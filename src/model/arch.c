/*
 * arch.c — the architecture rows and the one tensor list (see arch.h), and
 * the walk that resolves the list for a model's shape.
 */
#include "model/arch.h"

#include <stdio.h>
#include <string.h>

#include "model/model.h"

#define DENSE ARCH_FFN_DENSE, ARCH_GATING_SOFTMAX, false, ARCH_NEED_ABSENT, ARCH_FF_EXP_KEY

static const arch_info ARCHS[] = {
    /* name     rope             qk_norm                qkv_bias            rope_freqs
     *          ffn  gating  gating_from_file  exp_probs_b  ff_exp
     *          tied  explicit_head_dim  rope_base  rms_eps */
    {"llama", ARCH_ROPE_NORMAL, ARCH_QK_NORM_NONE, ARCH_NEED_OPTIONAL, ARCH_NEED_OPTIONAL,
     DENSE, true, false, 10000.0, 1e-5},
    {"qwen2", ARCH_ROPE_NEOX, ARCH_QK_NORM_NONE, ARCH_NEED_REQUIRED, ARCH_NEED_ABSENT,
     DENSE, true, false, 1000000.0, 1e-6},
    {"qwen3", ARCH_ROPE_NEOX, ARCH_QK_NORM_PER_HEAD, ARCH_NEED_ABSENT, ARCH_NEED_ABSENT,
     DENSE, true, true, 1000000.0, 1e-6},
    /* Qwen3-MoE (Qwen3-30B-A3B, Qwen3-Coder-30B-A3B): qwen3's attention, a
     * softmax router (llama.cpp ignores expert_gating_func for it) */
    {"qwen3moe", ARCH_ROPE_NEOX, ARCH_QK_NORM_PER_HEAD, ARCH_NEED_ABSENT, ARCH_NEED_ABSENT,
     ARCH_FFN_MOE, ARCH_GATING_SOFTMAX, false, ARCH_NEED_ABSENT, ARCH_FF_EXP_KEY,
     true, true, 1000000.0, 1e-6},
    /* MiniMax-M2 / M2.1: one norm over the whole q and k rows, partial rope,
     * sigmoid scores with a selection bias, untied output */
    {"minimax-m2", ARCH_ROPE_NEOX, ARCH_QK_NORM_WHOLE, ARCH_NEED_ABSENT, ARCH_NEED_ABSENT,
     ARCH_FFN_MOE, ARCH_GATING_SIGMOID, true, ARCH_NEED_REQUIRED, ARCH_FF_EXP_FF,
     false, true, 5000000.0, 1e-6},
};
#undef DENSE
#define N_ARCHS (sizeof ARCHS / sizeof ARCHS[0])

const arch_info *arch_find(const char *name) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (!strcmp(ARCHS[i].name, name)) return &ARCHS[i];
    return NULL;
}

const char *arch_names(char *buf, size_t size) {
    size_t used = 0;
    if (size) buf[0] = 0;
    for (size_t i = 0; i < N_ARCHS && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", ARCHS[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
    return buf;
}

/* ---- the tensors, in llama.cpp's file order */

#define M(field) offsetof(model, field)
#define L(field) offsetof(model_layer, field)
#define MAT ARCH_TENSOR_MATRIX
#define NORM ARCH_TENSOR_NORM
#define BIAS ARCH_TENSOR_BIAS
#define D(x) ARCH_DIM_##x
#define W(x) ARCH_WHEN_##x

static const arch_tensor TENSORS[] = {
    /* name                 per_layer kind  n_dims  ne                     when               field */
    {"token_embd.weight",   false, MAT,  2, {D(DIM), D(VOCAB)},      W(ALWAYS),           M(tok_embd)},
    {"rope_freqs.weight",   false, ARCH_TENSOR_FREQS, 1, {D(ROT_HALF)}, W(ROPE_FREQS),     M(rope_freqs)},
    {"attn_norm.weight",    true,  NORM, 1, {D(DIM)},                W(ALWAYS),           L(attn_norm)},
    {"attn_q.weight",       true,  MAT,  2, {D(DIM), D(Q_ROWS)},     W(ALWAYS),           L(wq)},
    {"attn_k.weight",       true,  MAT,  2, {D(DIM), D(KV_ROWS)},    W(ALWAYS),           L(wk)},
    {"attn_v.weight",       true,  MAT,  2, {D(DIM), D(KV_ROWS)},    W(ALWAYS),           L(wv)},
    {"attn_q.bias",         true,  BIAS, 1, {D(Q_ROWS)},             W(QKV_BIAS),         L(bq)},
    {"attn_k.bias",         true,  BIAS, 1, {D(KV_ROWS)},            W(QKV_BIAS),         L(bk)},
    {"attn_v.bias",         true,  BIAS, 1, {D(KV_ROWS)},            W(QKV_BIAS),         L(bv)},
    {"attn_q_norm.weight",  true,  NORM, 1, {D(HEAD_DIM)},           W(QK_NORM_PER_HEAD), L(q_norm)},
    {"attn_k_norm.weight",  true,  NORM, 1, {D(HEAD_DIM)},           W(QK_NORM_PER_HEAD), L(k_norm)},
    {"attn_q_norm.weight",  true,  NORM, 1, {D(Q_ROWS)},             W(QK_NORM_WHOLE),    L(q_norm)},
    {"attn_k_norm.weight",  true,  NORM, 1, {D(KV_ROWS)},            W(QK_NORM_WHOLE),    L(k_norm)},
    {"attn_output.weight",  true,  MAT,  2, {D(Q_ROWS), D(DIM)},     W(ALWAYS),           L(wo)},
    {"ffn_norm.weight",     true,  NORM, 1, {D(DIM)},                W(ALWAYS),           L(ffn_norm)},
    {"ffn_gate.weight",     true,  MAT,  2, {D(DIM), D(FF)},         W(FFN_DENSE),        L(w_gate)},
    {"ffn_up.weight",       true,  MAT,  2, {D(DIM), D(FF)},         W(FFN_DENSE),        L(w_up)},
    {"ffn_down.weight",     true,  MAT,  2, {D(FF), D(DIM)},         W(FFN_DENSE),        L(w_down)},
    {"ffn_gate_inp.weight", true,  ARCH_TENSOR_ROUTER, 2, {D(DIM), D(N_EXPERT)}, W(FFN_MOE), L(router)},
    {"ffn_gate_exps.weight", true, MAT,  3, {D(DIM), D(FF_EXP), D(N_EXPERT)}, W(FFN_MOE), L(gate_exps)},
    {"ffn_down_exps.weight", true, MAT,  3, {D(FF_EXP), D(DIM), D(N_EXPERT)}, W(FFN_MOE), L(down_exps)},
    {"ffn_up_exps.weight",  true,  MAT,  3, {D(DIM), D(FF_EXP), D(N_EXPERT)}, W(FFN_MOE), L(up_exps)},
    {"exp_probs_b.bias",    true,  BIAS, 1, {D(N_EXPERT)},           W(EXP_PROBS_B),      L(exp_probs_b)},
    {"output_norm.weight",  false, NORM, 1, {D(DIM)},                W(ALWAYS),           M(output_norm)},
    {"output.weight",       false, MAT,  2, {D(DIM), D(VOCAB)},      W(UNTIED),           M(output)},
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

#undef M
#undef L
#undef MAT
#undef NORM
#undef BIAS
#undef D
#undef W

arch_need arch_tensor_need(const arch_info *a, arch_when when) {
    switch (when) {
    case ARCH_WHEN_ALWAYS: return ARCH_NEED_REQUIRED;
    case ARCH_WHEN_UNTIED: return a->output_tied_allowed ? ARCH_NEED_OPTIONAL : ARCH_NEED_REQUIRED;
    case ARCH_WHEN_ROPE_FREQS: return a->rope_freqs;
    case ARCH_WHEN_QKV_BIAS: return a->qkv_bias;
    case ARCH_WHEN_QK_NORM_PER_HEAD: return a->qk_norm == ARCH_QK_NORM_PER_HEAD ? ARCH_NEED_REQUIRED : ARCH_NEED_ABSENT;
    case ARCH_WHEN_QK_NORM_WHOLE: return a->qk_norm == ARCH_QK_NORM_WHOLE ? ARCH_NEED_REQUIRED : ARCH_NEED_ABSENT;
    case ARCH_WHEN_FFN_DENSE: return a->ffn == ARCH_FFN_DENSE ? ARCH_NEED_REQUIRED : ARCH_NEED_ABSENT;
    case ARCH_WHEN_FFN_MOE: return a->ffn == ARCH_FFN_MOE ? ARCH_NEED_REQUIRED : ARCH_NEED_ABSENT;
    case ARCH_WHEN_EXP_PROBS_B: return a->ffn == ARCH_FFN_MOE ? a->exp_probs_b : ARCH_NEED_ABSENT;
    }
    return ARCH_NEED_ABSENT;
}

static int64_t dim_value(const model_hparams *hp, arch_dim d) {
    switch (d) {
    case ARCH_DIM_DIM: return hp->dim;
    case ARCH_DIM_Q_ROWS: return (int64_t)hp->n_heads * hp->head_dim;
    case ARCH_DIM_KV_ROWS: return (int64_t)hp->n_kv_heads * hp->head_dim;
    case ARCH_DIM_FF: return hp->n_ff;
    case ARCH_DIM_VOCAB: return hp->n_vocab;
    case ARCH_DIM_HEAD_DIM: return hp->head_dim;
    case ARCH_DIM_ROT_HALF: return hp->n_rot / 2;
    case ARCH_DIM_N_EXPERT: return hp->n_expert;
    case ARCH_DIM_FF_EXP: return hp->n_ff_exp;
    }
    return 0;
}

/* Resolves entry t for layer il (-1: model-wide) and calls fn, unless absent. */
static int visit(const model_hparams *hp, const arch_tensor *t, int32_t il, arch_tensor_fn fn, void *ctx,
                 larder_error *err) {
    arch_tensor_use u = {.spec = t, .layer = il, .n_dims = t->n_dims, .need = arch_tensor_need(hp->arch, t->when)};
    if (u.need == ARCH_NEED_ABSENT) return 0;
    if (il >= 0) snprintf(u.name, sizeof u.name, "blk.%d.%s", (int)il, t->name);
    else snprintf(u.name, sizeof u.name, "%s", t->name);
    for (uint32_t i = 0; i < ARCH_TENSOR_MAX_DIMS; i++) u.ne[i] = i < t->n_dims ? dim_value(hp, t->ne[i]) : 1;
    return fn(ctx, &u, err);
}

int arch_tensors_each(const model_hparams *hp, arch_tensor_fn fn, void *ctx, larder_error *err) {
    bool layers_done = false;
    for (size_t i = 0; i < N_TENSORS; i++) {
        int rc;
        if (!TENSORS[i].per_layer) {
            if ((rc = visit(hp, &TENSORS[i], -1, fn, ctx, err))) return rc;
            continue;
        }
        if (layers_done) continue;
        /* the first per-layer entry: every layer's tensors here, layer by layer */
        layers_done = true;
        for (int32_t il = 0; il < hp->n_layers; il++)
            for (size_t k = i; k < N_TENSORS; k++)
                if (TENSORS[k].per_layer && (rc = visit(hp, &TENSORS[k], il, fn, ctx, err))) return rc;
    }
    return 0;
}
