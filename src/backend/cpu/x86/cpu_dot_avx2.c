/*
 * cpu_dot_avx2.c — the AVX2 + FMA + F16C kernel table (compiled with those
 * ISAs by the Makefile; called only when cpu_level_active() >= AVX2).
 * The kernels themselves are in cpu_dot_x86.inc, shared with the AVX-512 build.
 */
#define X86_VNNI 0
#define X86_FILL cpu_kernels_fill_avx2
#include "backend/cpu/x86/cpu_dot_x86.inc"

/* Used by the AVX-512 table for 1-token Q4_K (see cpu_dot_x86.inc). */
void cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *act, size_t stride, int n_tok, float *out);
void cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *act, size_t stride, int n_tok, float *out) {
    dot_q4_k(n, w, act, stride, n_tok, out);
}

void cpu_kernels_fill_avx2(cpu_kernels *k) {
    k->level = CPU_LEVEL_AVX2;
    fill_x86_common(k);
    k->vec = &cpu_vec_avx2_kernels; /* the AVX-512 table keeps these */
}
