/*
 * cpu_features.h — which SIMD kernels this CPU can run, decided once at run
 * time.
 *
 * Kernels compiled with an ISA (files *_avx2.c, *_avx512.c on x86-64;
 * *_dotprod.c, *_i8mm.c on AArch64) may only be called when the active level
 * includes theirs (cpu_level_includes). Levels form one chain per
 * instruction-set family, each level running everything below it:
 *
 *   CPU_LEVEL_SCALAR   plain C (the reference in src/tensor/quant.h), every CPU
 *   x86-64:
 *   CPU_LEVEL_AVX2     AVX2 + FMA + F16C                        (above SCALAR)
 *   CPU_LEVEL_AVX512   the above + AVX-512 F/BW/VL/DQ + VNNI    (above AVX2)
 *   AArch64:
 *   CPU_LEVEL_NEON     Advanced SIMD (every AArch64 CPU)        (above SCALAR)
 *   CPU_LEVEL_DOTPROD  + SDOT/UDOT (FEAT_DotProd, Armv8.2+)     (above NEON)
 *   CPU_LEVEL_I8MM     + SMMLA (FEAT_I8MM, Armv8.6+)            (above DOTPROD)
 *
 * The environment variable LARDER_CPU=scalar|avx2|avx512|neon|dotprod|i8mm
 * caps the level (for tests and benchmarks): it selects a level of the
 * CPU's own chain at or below the supported one, never one above it. An
 * unknown value, or a level the CPU does not have (avx2 on ARM, i8mm on a
 * CPU without it), is ignored.
 */
#ifndef LARDER_BACKEND_CPU_FEATURES_H
#define LARDER_BACKEND_CPU_FEATURES_H

#include <stdbool.h>

typedef enum cpu_level {
    CPU_LEVEL_SCALAR = 0,
    CPU_LEVEL_AVX2 = 1,
    CPU_LEVEL_AVX512 = 2,
    CPU_LEVEL_NEON = 3,
    CPU_LEVEL_DOTPROD = 4,
    CPU_LEVEL_I8MM = 5,
} cpu_level;

#define CPU_LEVEL_COUNT 6

typedef struct cpu_features {
    /* x86-64 (cpuid + XGETBV) */
    bool avx2, fma, f16c;                     /* the AVX2 level needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni; /* the AVX512 level needs all five */
    bool avx512bf16;                          /* detected and reported; no kernel needs it yet */
    /* AArch64 (getauxval on Linux, sysctlbyname on macOS) */
    bool neon;                                /* Advanced SIMD: the NEON level */
    bool dotprod;                             /* SDOT/UDOT: the DOTPROD level */
    bool i8mm;                                /* SMMLA/UMMLA: the I8MM level (with dotprod) */
    bool fp16;                                /* half-precision arithmetic; reported only */
} cpu_features;

/* The CPU's features (cached). */
const cpu_features *cpu_features_get(void);

/* Highest level the CPU supports, ignoring LARDER_CPU. */
cpu_level cpu_level_supported(void);

/* The level the kernels use: cpu_level_supported() capped by LARDER_CPU
 * (read once, on the first call). */
cpu_level cpu_level_active(void);

/* The level directly below `level` in its chain (SCALAR for SCALAR). */
cpu_level cpu_level_below(cpu_level level);

/* True when a CPU at `level` runs the kernels of `needed`: needed is level
 * itself or below it in the same chain (SCALAR is below every level). */
bool cpu_level_includes(cpu_level level, cpu_level needed);

/* "scalar", "avx2", "avx512", "neon", "dotprod", "i8mm". */
const char *cpu_level_name(cpu_level level);

/* Parses one of those names into *level; false if unknown. */
bool cpu_level_parse(const char *name, cpu_level *level);

#endif
