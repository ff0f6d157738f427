/*
 * tiny_model.h — writes a tiny random GGUF model of an architecture of
 * model/arch.c (f32 weights) for the forward-pass tests, so they need no
 * model file. Its tensors are those of arch.c's one tensor list (the list
 * the loader binds and make-model writes). Shapes: vocab 96, dim 64, 4
 * heads, 2 kv heads, head 16 (24 where the architecture's head size is a
 * free parameter: qwen3), ff 96, 2 layers; mixtures of experts: 8 experts,
 * 2 per token, each of ff TINY_FF_EXP (qwen3moe) or TINY_FF (minimax-m2,
 * which also rotates only half of each head).
 */
#ifndef LARDER_TESTS_MODEL_TINY_MODEL_H
#define LARDER_TESTS_MODEL_TINY_MODEL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/arch.h"
#include "model/model.h"
#include "tensor/dtype.h"

#define TINY_VOCAB 96
#define TINY_DIM 64
#define TINY_FF 96
#define TINY_LAYERS 2
#define TINY_HEADS 4
#define TINY_KV_HEADS 2
#define TINY_EXPERTS 8
#define TINY_EXPERTS_USED 2
#define TINY_FF_EXP 32
#define TINY_ARENA_FLOATS 1000000

static float tiny_rand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1u << 24) - 0.5f);
}

/* Tensor storage lives until the writer has written: one big arena. */
typedef struct tiny_arena { float *buf; size_t used, cap; } tiny_arena;

static float *tiny_alloc(tiny_arena *a, size_t n, unsigned *seed, float scale, float offset) {
    if (a->used + n > a->cap) return NULL;
    float *p = a->buf + a->used;
    a->used += n;
    for (size_t i = 0; i < n; i++) p[i] = offset + scale * tiny_rand(seed);
    return p;
}

typedef struct tiny_writer {
    gguf_writer *w;
    tiny_arena a;
    unsigned seed;
    bool tied;
} tiny_writer;

/* arch_tensor_fn: random f32 data for one tensor of the list (optional ones:
 * only output.weight, when not tied). */
static int tiny_add_tensor(void *ctx, const arch_tensor_use *u, larder_error *err) {
    tiny_writer *tw = ctx;
    const arch_tensor *t = u->spec;
    if (u->need == ARCH_NEED_OPTIONAL && !(t->when == ARCH_WHEN_UNTIED && !tw->tied)) return 0;
    float scale = 0.25f, offset = 0;
    if (t->kind == ARCH_TENSOR_NORM || t->kind == ARCH_TENSOR_FREQS) scale = 0.2f, offset = 1.0f;
    else if (t->kind == ARCH_TENSOR_BIAS) scale = 0.5f;
    else if (!strcmp(t->name, "token_embd.weight")) scale = 2.0f;
    else if (t->when == ARCH_WHEN_UNTIED) scale = 1.0f;
    float *data = tiny_alloc(&tw->a, (size_t)(u->ne[0] * u->ne[1] * u->ne[2]), &tw->seed, scale, offset);
    if (!data) return error_set(err, ERR_NOMEM, "tiny model arena full at %s", u->name);
    return gguf_writer_add_tensor(tw->w, u->name, TYPE_F32, u->n_dims, u->ne, data, err);
}

/* arch: a row of model/arch.c; tied: no output.weight. Returns 0 on success. */
static int tiny_model_write(const char *path, const char *arch, bool tied, unsigned seed) {
    const arch_info *row = arch_find(arch);
    if (!row) return -1;
    model_hparams hp = {.arch = row, .n_vocab = TINY_VOCAB, .dim = TINY_DIM, .n_layers = TINY_LAYERS,
                        .n_heads = TINY_HEADS, .n_kv_heads = TINY_KV_HEADS,
                        .head_dim = row->explicit_head_dim ? 24 : TINY_DIM / TINY_HEADS, .n_ff = TINY_FF};
    const bool moe = row->ffn == ARCH_FFN_MOE;
    hp.n_rot = row->ff_exp == ARCH_FF_EXP_FF && moe ? hp.head_dim / 2 : hp.head_dim; /* minimax-m2: partial rope */
    if (moe) {
        hp.n_expert = TINY_EXPERTS;
        hp.n_expert_used = TINY_EXPERTS_USED;
        hp.n_ff_exp = row->ff_exp == ARCH_FF_EXP_FF ? TINY_FF : TINY_FF_EXP;
    }
    tiny_writer tw = {gguf_writer_create(NULL), {malloc(sizeof(float) * TINY_ARENA_FLOATS), 0, TINY_ARENA_FLOATS},
                      seed, tied};
    if (!tw.a.buf || !tw.w) {
        gguf_writer_free(tw.w);
        free(tw.a.buf);
        return -1;
    }
    char k[96];
    int rc = gguf_writer_set_string(tw.w, "general.architecture", arch, NULL);
#define U32(s, v) (snprintf(k, sizeof k, "%s." s, arch), rc |= gguf_writer_set_u32(tw.w, k, (v), NULL))
#define F32(s, v) (snprintf(k, sizeof k, "%s." s, arch), rc |= gguf_writer_set_f32(tw.w, k, (v), NULL))
    U32("context_length", 512);
    U32("embedding_length", TINY_DIM);
    U32("block_count", TINY_LAYERS);
    U32("feed_forward_length", TINY_FF);
    U32("attention.head_count", TINY_HEADS);
    U32("attention.head_count_kv", TINY_KV_HEADS);
    if (row->explicit_head_dim) {
        U32("attention.key_length", (uint32_t)hp.head_dim);
        U32("attention.value_length", (uint32_t)hp.head_dim);
    }
    U32("rope.dimension_count", (uint32_t)hp.n_rot);
    if (moe) {
        U32("expert_count", TINY_EXPERTS);
        U32("expert_used_count", TINY_EXPERTS_USED);
        U32("expert_feed_forward_length", (uint32_t)hp.n_ff_exp);
        if (row->gating_from_file) U32("expert_gating_func", (uint32_t)row->gating);
    }
    F32("rope.freq_base", (float)row->typical_rope_base);
    F32("attention.layer_norm_rms_epsilon", 1e-5f);
#undef U32
#undef F32
    if (!rc) rc = arch_tensors_each(&hp, tiny_add_tensor, &tw, NULL);
    if (!rc) rc = gguf_writer_write(tw.w, path, NULL);
    gguf_writer_free(tw.w);
    free(tw.a.buf);
    return rc ? -1 : 0;
}

#endif
