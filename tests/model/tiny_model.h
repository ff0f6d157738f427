/*
 * tiny_model.h — writes a tiny random GGUF model (llama, qwen2 or qwen3;
 * f32 weights) for the forward-pass tests, so they need no model file.
 * Shapes: vocab 96, dim 64, 4 heads, 2 kv heads, head 16 (qwen3: 24),
 * ff 96, 2 layers.
 */
#ifndef LARDER_TESTS_MODEL_TINY_MODEL_H
#define LARDER_TESTS_MODEL_TINY_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tensor/dtype.h"

#define TINY_VOCAB 96
#define TINY_DIM 64
#define TINY_FF 96
#define TINY_LAYERS 2

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

static int tiny_add(gguf_writer *w, const char *name, int64_t ne0, int64_t ne1, float *data) {
    int64_t ne[2] = {ne0, ne1};
    return gguf_writer_add_tensor(w, name, TYPE_F32, ne1 > 1 ? 2 : 1, ne, data, NULL);
}

/* arch: "llama", "qwen2", "qwen3". Returns 0 on success. */
static int tiny_model_write(const char *path, const char *arch, unsigned seed) {
    int qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    int heads = 4, kv = 2, hd = qwen3 ? 24 : TINY_DIM / 4;
    tiny_arena a = {malloc(sizeof(float) * 400000), 0, 400000};
    gguf_writer *w = gguf_writer_create(NULL);
    if (!a.buf || !w) return -1;
    char k[96];
    int rc = gguf_writer_set_string(w, "general.architecture", arch, NULL);
#define U32(s, v) (snprintf(k, sizeof k, "%s." s, arch), rc |= gguf_writer_set_u32(w, k, (v), NULL))
#define F32(s, v) (snprintf(k, sizeof k, "%s." s, arch), rc |= gguf_writer_set_f32(w, k, (v), NULL))
    U32("context_length", 512);
    U32("embedding_length", TINY_DIM);
    U32("block_count", TINY_LAYERS);
    U32("feed_forward_length", TINY_FF);
    U32("attention.head_count", heads);
    U32("attention.head_count_kv", kv);
    if (qwen3) {
        U32("attention.key_length", hd);
        U32("attention.value_length", hd);
    }
    F32("rope.freq_base", qwen2 || qwen3 ? 1000000.0f : 10000.0f);
    F32("attention.layer_norm_rms_epsilon", 1e-5f);
    float s = 0.25f;
    rc |= tiny_add(w, "token_embd.weight", TINY_DIM, TINY_VOCAB, tiny_alloc(&a, TINY_DIM * TINY_VOCAB, &seed, 2.0f, 0));
    rc |= tiny_add(w, "output_norm.weight", TINY_DIM, 1, tiny_alloc(&a, TINY_DIM, &seed, 0.2f, 1.0f));
    if (!qwen3) rc |= tiny_add(w, "output.weight", TINY_DIM, TINY_VOCAB, tiny_alloc(&a, TINY_DIM * TINY_VOCAB, &seed, 1.0f, 0));
    for (int l = 0; l < TINY_LAYERS; l++) {
#define T(nm, n0, n1, sc, off) (snprintf(k, sizeof k, "blk.%d." nm, l), rc |= tiny_add(w, k, (n0), (n1), tiny_alloc(&a, (size_t)(n0) * (n1), &seed, (sc), (off))))
        T("attn_norm.weight", TINY_DIM, 1, 0.2f, 1.0f);
        T("attn_q.weight", TINY_DIM, heads * hd, s, 0);
        T("attn_k.weight", TINY_DIM, kv * hd, s, 0);
        T("attn_v.weight", TINY_DIM, kv * hd, s, 0);
        T("attn_output.weight", heads * hd, TINY_DIM, s, 0);
        T("ffn_norm.weight", TINY_DIM, 1, 0.2f, 1.0f);
        T("ffn_gate.weight", TINY_DIM, TINY_FF, s, 0);
        T("ffn_up.weight", TINY_DIM, TINY_FF, s, 0);
        T("ffn_down.weight", TINY_FF, TINY_DIM, s, 0);
        if (qwen2) {
            T("attn_q.bias", heads * hd, 1, 0.5f, 0);
            T("attn_k.bias", kv * hd, 1, 0.5f, 0);
            T("attn_v.bias", kv * hd, 1, 0.5f, 0);
        }
        if (qwen3) {
            T("attn_q_norm.weight", hd, 1, 0.2f, 1.0f);
            T("attn_k_norm.weight", hd, 1, 0.2f, 1.0f);
        }
#undef T
    }
#undef U32
#undef F32
    if (!rc) rc = gguf_writer_write(w, path, NULL);
    gguf_writer_free(w);
    free(a.buf);
    return rc ? -1 : 0;
}

#endif
