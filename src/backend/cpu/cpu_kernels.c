/*
 * cpu_kernels.c — the scalar kernel table (wrapping the reference in
 * src/tensor/quant.h) and the selection of a level's table.
 *
 * Tables are built once under pthread_once; each ISA level starts from the
 * level below in its chain (cpu_features.h), so a type without a fast
 * kernel still works.
 */
#include "backend/cpu/cpu_kernels.h"

#include <pthread.h>

#include "tensor/quant.h"

/* Reference dot for n_tok activation rows: one vec_dot_ref per token. The
 * weight type is known per table slot, so each slot gets a tiny wrapper. */
#define SCALAR_DOT(TYPE, NAME)                                                          \
    static void NAME(int64_t n, const void *w, const void *act, size_t stride, int n_tok, \
                     float *out) {                                                      \
        for (int t = 0; t < n_tok; t++)                                                 \
            out[t] = vec_dot_ref(TYPE, w, (const char *)act + (size_t)t * stride, n);   \
    }
SCALAR_DOT(TYPE_F32, dot_scalar_f32)
SCALAR_DOT(TYPE_F16, dot_scalar_f16)
SCALAR_DOT(TYPE_BF16, dot_scalar_bf16)
SCALAR_DOT(TYPE_Q4_0, dot_scalar_q4_0)
SCALAR_DOT(TYPE_Q4_1, dot_scalar_q4_1)
SCALAR_DOT(TYPE_Q5_0, dot_scalar_q5_0)
SCALAR_DOT(TYPE_Q5_1, dot_scalar_q5_1)
SCALAR_DOT(TYPE_Q8_0, dot_scalar_q8_0)
SCALAR_DOT(TYPE_Q2_K, dot_scalar_q2_k)
SCALAR_DOT(TYPE_Q3_K, dot_scalar_q3_k)
SCALAR_DOT(TYPE_Q4_K, dot_scalar_q4_k)
SCALAR_DOT(TYPE_Q5_K, dot_scalar_q5_k)
SCALAR_DOT(TYPE_Q6_K, dot_scalar_q6_k)

#define SCALAR_QUANT(TYPE, NAME) \
    static void NAME(const float *x, void *dst, int64_t n) { quantize_row_activation(TYPE, x, dst, n); }
SCALAR_QUANT(TYPE_F32, quant_scalar_f32)
SCALAR_QUANT(TYPE_Q8_0, quant_scalar_q8_0)
SCALAR_QUANT(TYPE_Q8_1, quant_scalar_q8_1)
SCALAR_QUANT(TYPE_Q8_K, quant_scalar_q8_k)

void cpu_kernels_fill_scalar(cpu_kernels *k) {
    k->level = CPU_LEVEL_SCALAR;
    for (int t = 0; t < TYPE_COUNT_MAX; t++) k->tile_tokens[t] = CPU_DOT_TILE_TOKENS;
    k->dot[TYPE_F32] = dot_scalar_f32;
    k->dot[TYPE_F16] = dot_scalar_f16;
    k->dot[TYPE_BF16] = dot_scalar_bf16;
    k->dot[TYPE_Q4_0] = dot_scalar_q4_0;
    k->dot[TYPE_Q4_1] = dot_scalar_q4_1;
    k->dot[TYPE_Q5_0] = dot_scalar_q5_0;
    k->dot[TYPE_Q5_1] = dot_scalar_q5_1;
    k->dot[TYPE_Q8_0] = dot_scalar_q8_0;
    k->dot[TYPE_Q2_K] = dot_scalar_q2_k;
    k->dot[TYPE_Q3_K] = dot_scalar_q3_k;
    k->dot[TYPE_Q4_K] = dot_scalar_q4_k;
    k->dot[TYPE_Q5_K] = dot_scalar_q5_k;
    k->dot[TYPE_Q6_K] = dot_scalar_q6_k;
    k->quantize[TYPE_F32] = quant_scalar_f32;
    k->quantize[TYPE_Q8_0] = quant_scalar_q8_0;
    k->quantize[TYPE_Q8_1] = quant_scalar_q8_1;
    k->quantize[TYPE_Q8_K] = quant_scalar_q8_k;
    k->vec = cpu_vec_scalar();
}

static cpu_kernels g_tables[CPU_LEVEL_COUNT];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Fills a level's own kernels (only the target's family is compiled). */
static void cpu_kernels_fill(cpu_level level, cpu_kernels *k) {
    switch (level) {
#if defined(__x86_64__)
    case CPU_LEVEL_AVX2: cpu_kernels_fill_avx2(k); break;
    case CPU_LEVEL_AVX512: cpu_kernels_fill_avx512(k); break;
#elif defined(__aarch64__)
    case CPU_LEVEL_NEON: cpu_kernels_fill_neon(k); break;
    case CPU_LEVEL_DOTPROD: cpu_kernels_fill_dotprod(k); break;
    case CPU_LEVEL_I8MM: cpu_kernels_fill_i8mm(k); break;
#endif
    default: break;
    }
}

static void cpu_kernels_build(void) {
    cpu_level top = cpu_level_supported();
    cpu_kernels_fill_scalar(&g_tables[CPU_LEVEL_SCALAR]);
    /* the level below always has a smaller number, so it is built first */
    for (int l = CPU_LEVEL_SCALAR + 1; l < CPU_LEVEL_COUNT; l++) {
        g_tables[l] = g_tables[cpu_level_below((cpu_level)l)];
        if (!cpu_level_includes(top, (cpu_level)l)) continue; /* unsupported: keep the level below's kernels */
        cpu_kernels_fill((cpu_level)l, &g_tables[l]);
    }
}

const cpu_kernels *cpu_kernels_for(cpu_level level) {
    pthread_once(&g_once, cpu_kernels_build);
    if ((int)level < 0 || (int)level >= CPU_LEVEL_COUNT) level = CPU_LEVEL_SCALAR;
    return &g_tables[level];
}

const cpu_kernels *cpu_kernels_active(void) { return cpu_kernels_for(cpu_level_active()); }
