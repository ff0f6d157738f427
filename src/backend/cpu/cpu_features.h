/*
 * cpu_features.h — which SIMD kernels this CPU can run, decided once at run
 * time.
 *
 * Kernels compiled with an ISA (files *_avx2.c, *_avx512.c) may only be
 * called when cpu_level_active() says so. Levels are ordered: a CPU at
 * AVX512 also runs the AVX2 and scalar kernels.
 *
 *   CPU_LEVEL_SCALAR  plain C (the reference in src/tensor/quant.h)
 *   CPU_LEVEL_AVX2    AVX2 + FMA + F16C
 *   CPU_LEVEL_AVX512  the above + AVX-512 F/BW/VL/DQ + VNNI
 *
 * The environment variable LARDER_CPU=scalar|avx2|avx512 caps the level (for
 * tests and benchmarks); it can lower the level, never raise it above what
 * the CPU supports. An unknown value is ignored.
 */
#ifndef LARDER_BACKEND_CPU_FEATURES_H
#define LARDER_BACKEND_CPU_FEATURES_H

#include <stdbool.h>

typedef enum cpu_level {
    CPU_LEVEL_SCALAR = 0,
    CPU_LEVEL_AVX2 = 1,
    CPU_LEVEL_AVX512 = 2,
} cpu_level;

typedef struct cpu_features {
    bool avx2, fma, f16c;                     /* the AVX2 level needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni; /* the AVX512 level needs all five */
    bool avx512bf16;                          /* detected and reported; no kernel needs it yet */
} cpu_features;

/* The CPU's features (cpuid, via the compiler's builtins; cached). */
const cpu_features *cpu_features_get(void);

/* Highest level the CPU supports, ignoring LARDER_CPU. */
cpu_level cpu_level_supported(void);

/* The level the kernels use: cpu_level_supported() capped by LARDER_CPU
 * (read once, on the first call). */
cpu_level cpu_level_active(void);

/* "scalar", "avx2", "avx512". */
const char *cpu_level_name(cpu_level level);

/* Parses "scalar" / "avx2" / "avx512" into *level; false if unknown. */
bool cpu_level_parse(const char *name, cpu_level *level);

#endif
