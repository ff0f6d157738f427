/*
 * cpu_dot_dotprod.c — the AArch64 dot-product kernel table (compiled with
 * -march=armv8.2-a+dotprod by the Makefile; called only when the active
 * level includes CPU_LEVEL_DOTPROD). Same kernels as the NEON build
 * (cpu_dot_arm.inc) with every 4-byte group product one SDOT.
 */
#define ARM_DOTPROD 1
#define ARM_I8MM 0
#define ARM_FILL cpu_kernels_fill_dotprod
#include "backend/cpu/arm/cpu_dot_arm.inc"

void cpu_kernels_fill_dotprod(cpu_kernels *k) {
    k->level = CPU_LEVEL_DOTPROD;
    fill_arm_common(k);
}
