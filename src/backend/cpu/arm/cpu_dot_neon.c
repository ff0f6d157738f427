/*
 * cpu_dot_neon.c — the AArch64 baseline kernel table (Advanced SIMD only,
 * compiled for armv8-a; every AArch64 CPU runs it). The kernels are in
 * cpu_dot_arm.inc, shared with the dotprod and i8mm builds; here SDOT is
 * emulated lane for lane (SMULL + SADDLP + ADDP), so results equal theirs.
 */
#define ARM_DOTPROD 0
#define ARM_I8MM 0
#define ARM_FILL cpu_kernels_fill_neon
#include "backend/cpu/arm/cpu_dot_arm.inc"

void cpu_kernels_fill_neon(cpu_kernels *k) {
    k->level = CPU_LEVEL_NEON;
    fill_arm_common(k);
}
