/*
 * cpu_features.c — run-time CPU feature detection (see cpu_features.h).
 *
 * Key idea: cpuid says what the core implements; XGETBV says which register
 * files the OS saves on a context switch. A feature counts only when both
 * agree (a VM or kernel may disable AVX-512 state). On AArch64 the kernel
 * reports the features: getauxval(AT_HWCAP / AT_HWCAP2) on Linux (the same
 * bits qemu-user fills from its -cpu model, so the tests can hide dotprod or
 * i8mm), sysctlbyname("hw.optional.arm.FEAT_*") on macOS; NEON is part of
 * every AArch64 CPU. Results are computed once and cached; the cache is
 * filled under pthread_once, so concurrent first calls are safe.
 */
#include "backend/cpu/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
/* The arm64 hwcap bits (linux/arch/arm64/include/uapi/asm/hwcap.h), spelled
 * out so that older headers build too. */
#define LARDER_HWCAP_ASIMD (1UL << 1)
#define LARDER_HWCAP_ASIMDHP (1UL << 10)
#define LARDER_HWCAP_ASIMDDP (1UL << 20)
#define LARDER_HWCAP2_I8MM (1UL << 13)
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
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

#if defined(__aarch64__) && defined(__APPLE__)
/* A hw.optional.* flag of macOS: 1 when present (a missing name reads 0). */
static bool sysctl_flag(const char *name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v == 1;
}
#endif

static void cpu_detect_arm(void) {
#if defined(__aarch64__)
    g_features.neon = true; /* Advanced SIMD is mandatory in AArch64 */
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    g_features.neon = (hw & LARDER_HWCAP_ASIMD) != 0;
    g_features.fp16 = (hw & LARDER_HWCAP_ASIMDHP) != 0;
    g_features.dotprod = (hw & LARDER_HWCAP_ASIMDDP) != 0;
    g_features.i8mm = (hw2 & LARDER_HWCAP2_I8MM) != 0;
#elif defined(__APPLE__)
    g_features.fp16 = sysctl_flag("hw.optional.arm.FEAT_FP16") || sysctl_flag("hw.optional.neon_fp16");
    g_features.dotprod = sysctl_flag("hw.optional.arm.FEAT_DotProd");
    g_features.i8mm = sysctl_flag("hw.optional.arm.FEAT_I8MM");
#endif
    if (g_features.neon) {
        g_supported = CPU_LEVEL_NEON;
        if (g_features.dotprod) {
            g_supported = CPU_LEVEL_DOTPROD;
            if (g_features.i8mm) g_supported = CPU_LEVEL_I8MM;
        }
    }
#endif
}

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
    cpu_detect_arm();
    g_active = g_supported;
    cpu_level cap;
    const char *env = getenv("LARDER_CPU");
    if (env && cpu_level_parse(env, &cap) && cpu_level_includes(g_supported, cap)) g_active = cap;
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

cpu_level cpu_level_below(cpu_level level) {
    switch (level) {
    case CPU_LEVEL_AVX512: return CPU_LEVEL_AVX2;
    case CPU_LEVEL_I8MM: return CPU_LEVEL_DOTPROD;
    case CPU_LEVEL_DOTPROD: return CPU_LEVEL_NEON;
    default: return CPU_LEVEL_SCALAR;
    }
}

bool cpu_level_includes(cpu_level level, cpu_level needed) {
    for (;;) {
        if (level == needed) return true;
        if (level == CPU_LEVEL_SCALAR) return false;
        level = cpu_level_below(level);
    }
}

const char *cpu_level_name(cpu_level level) {
    switch (level) {
    case CPU_LEVEL_AVX2: return "avx2";
    case CPU_LEVEL_AVX512: return "avx512";
    case CPU_LEVEL_NEON: return "neon";
    case CPU_LEVEL_DOTPROD: return "dotprod";
    case CPU_LEVEL_I8MM: return "i8mm";
    default: return "scalar";
    }
}

bool cpu_level_parse(const char *name, cpu_level *level) {
    static const struct { const char *name; cpu_level level; } names[] = {
        {"scalar", CPU_LEVEL_SCALAR}, {"avx2", CPU_LEVEL_AVX2}, {"avx512", CPU_LEVEL_AVX512},
        {"neon", CPU_LEVEL_NEON},     {"dotprod", CPU_LEVEL_DOTPROD}, {"i8mm", CPU_LEVEL_I8MM},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return true;
        }
    return false;
}
