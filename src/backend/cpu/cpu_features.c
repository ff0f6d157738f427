/*
 * cpu_features.c — run-time CPU feature detection (see cpu_features.h).
 *
 * Key idea: cpuid says what the core implements; XGETBV says which register
 * files the OS saves on a context switch. A feature counts only when both
 * agree (a VM or kernel may disable AVX-512 state). Results are computed once and cached; the cache
 * is filled under pthread_once, so concurrent first calls are safe.
 */
#include "backend/cpu/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cpu_features g_features;
static cpu_level g_supported = CPU_LEVEL_SCALAR;
static cpu_level g_active = CPU_LEVEL_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
/* The OS-enabled register state (XCR0): which register files the kernel
 * saves on a context switch. A feature is usable only if its state is. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
#endif

static void cpu_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        bool osxsave = c >> 27 & 1, avx = c >> 28 & 1;
        /* XCR0 bits 1-2: SSE and AVX (YMM) state; bits 5-7: AVX-512 state */
        uint64_t xcr0 = osxsave ? read_xcr0() : 0;
        bool ymm_ok = avx && (xcr0 & 0x6) == 0x6;
        bool zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
        g_features.fma = ymm_ok && (c >> 12 & 1);
        g_features.f16c = ymm_ok && (c >> 29 & 1);
        unsigned max_leaf = __get_cpuid_max(0, NULL);
        if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            g_features.avx2 = ymm_ok && (b >> 5 & 1);
            g_features.avx512f = zmm_ok && (b >> 16 & 1);
            g_features.avx512dq = zmm_ok && (b >> 17 & 1);
            g_features.avx512bw = zmm_ok && (b >> 30 & 1);
            g_features.avx512vl = zmm_ok && (b >> 31 & 1);
            g_features.avx512vnni = zmm_ok && (c >> 11 & 1);
            if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
                g_features.avx512bf16 = zmm_ok && (a >> 5 & 1);
        }
    }
#endif
    const cpu_features *f = &g_features;
    if (f->avx2 && f->fma && f->f16c) {
        g_supported = CPU_LEVEL_AVX2;
        if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni)
            g_supported = CPU_LEVEL_AVX512;
    }
    g_active = g_supported;
    cpu_level cap;
    const char *env = getenv("LARDER_CPU");
    if (env && cpu_level_parse(env, &cap) && cap < g_active) g_active = cap;
}

const cpu_features *cpu_features_get(void) {
    pthread_once(&g_once, cpu_detect);
    return &g_features;
}

cpu_level cpu_level_supported(void) {
    pthread_once(&g_once, cpu_detect);
    return g_supported;
}

cpu_level cpu_level_active(void) {
    pthread_once(&g_once, cpu_detect);
    return g_active;
}

const char *cpu_level_name(cpu_level level) {
    switch (level) {
    case CPU_LEVEL_AVX2: return "avx2";
    case CPU_LEVEL_AVX512: return "avx512";
    default: return "scalar";
    }
}

bool cpu_level_parse(const char *name, cpu_level *level) {
    static const struct { const char *name; cpu_level level; } names[] = {
        {"scalar", CPU_LEVEL_SCALAR}, {"avx2", CPU_LEVEL_AVX2}, {"avx512", CPU_LEVEL_AVX512},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return true;
        }
    return false;
}
