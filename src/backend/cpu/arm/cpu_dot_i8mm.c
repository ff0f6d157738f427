/*
 * cpu_dot_i8mm.c — the AArch64 int8 matrix-multiply kernel table (compiled
 * with -march=armv8.2-a+dotprod+i8mm; called only when the active level is
 * CPU_LEVEL_I8MM). The dot kernels are the dotprod build's; the prefill GEMM
 * of Q8_0 / Q4_0 / Q5_0 multiplies 2 weight rows x 2 tokens x 8 bytes per
 * SMMLA (cpu_dot_arm.inc), with the same results as the SDOT GEMM.
 */
#define ARM_DOTPROD 1
#define ARM_I8MM 1
#define ARM_FILL cpu_kernels_fill_i8mm
#include "backend/cpu/arm/cpu_dot_arm.inc"

void cpu_kernels_fill_i8mm(cpu_kernels *k) {
    k->level = CPU_LEVEL_I8MM;
    fill_arm_common(k);
}
