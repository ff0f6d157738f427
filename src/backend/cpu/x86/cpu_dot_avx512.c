/*
 * cpu_dot_avx512.c — the AVX-512 kernel table (compiled with AVX-512
 * F/BW/VL/DQ + VNNI; called only when cpu_level_active() >= AVX512).
 *
 * Same kernels as the AVX2 build (cpu_dot_x86.inc) with X86_VNNI = 1:
 *  - every u8 x s8 block sum with a per-block float scale (Q8_0, Q4_0,
 *    Q5_0, Q4_1, Q5_1) is one vpdpbusd instead of vpmaddubsw + vpmaddwd;
 *  - the K-quants weight each pair-sum by its sub-block scale and accumulate
 *    in one vpdpwssd (instead of vpmaddwd + vpaddd);
 *  - Q4_K uses 512-bit vectors (a whole 64-element chunk per register);
 *  - Q8_0 prefill uses the broadcast-tile GEMM (4 weight rows x 8 tokens per
 *    step, weight bytes broadcast into vpdpbusd, 32 registers).
 * Other vectors stay 256 bits wide: decode is bound by memory bandwidth, and
 * on the machine measured (AMD Zen 4) 512-bit integer ops execute as two
 * 256-bit halves, so wider vectors only save instruction slots.
 */
#define X86_VNNI 1
#define X86_FILL cpu_kernels_fill_avx512
#include "backend/cpu/x86/cpu_dot_x86.inc"

void cpu_kernels_fill_avx512(cpu_kernels *k) {
    k->level = CPU_LEVEL_AVX512;
    fill_x86_common(k);
    k->tile_tokens[TYPE_Q4_K] = CPU_DOT_MAX_TOKENS; /* dot_q4_k's 512-bit tiles */
}
