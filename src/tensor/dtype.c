/*
 * dtype.c — the table of tensor types (name, block size, bytes per block) and
 * the IEEE half / bfloat16 conversions.
 *
 * Key idea: one static table indexed by the GGUF type id; ids that are not in
 * the table have a NULL name and are "unknown". The half conversions are pure
 * integer bit manipulation (no FPU rounding-mode dependence), rounding to
 * nearest with ties to even, with subnormals, infinities and NaNs handled.
 */
#include "tensor/dtype.h"

#include <ctype.h>
#include <string.h>

static const tensor_type_traits TYPE_TABLE[TYPE_COUNT_MAX] = {
    [TYPE_F32]  = { "f32",  1,    4,                  true  },
    [TYPE_F16]  = { "f16",  1,    2,                  true  },
    [TYPE_Q4_0] = { "q4_0", QK32, sizeof(block_q4_0), true  },
    [TYPE_Q4_1] = { "q4_1", QK32, sizeof(block_q4_1), true  },
    [TYPE_Q5_0] = { "q5_0", QK32, sizeof(block_q5_0), true  },
    [TYPE_Q5_1] = { "q5_1", QK32, sizeof(block_q5_1), true  },
    [TYPE_Q8_0] = { "q8_0", QK32, sizeof(block_q8_0), true  },
    [TYPE_Q8_1] = { "q8_1", QK32, sizeof(block_q8_1), false }, /* activation type only */
    [TYPE_Q2_K] = { "q2_k", QK_K, sizeof(block_q2_k), true  },
    [TYPE_Q3_K] = { "q3_k", QK_K, sizeof(block_q3_k), true  },
    [TYPE_Q4_K] = { "q4_k", QK_K, sizeof(block_q4_k), true  },
    [TYPE_Q5_K] = { "q5_k", QK_K, sizeof(block_q5_k), true  },
    [TYPE_Q6_K] = { "q6_k", QK_K, sizeof(block_q6_k), true  },
    [TYPE_Q8_K] = { "q8_k", QK_K, sizeof(block_q8_k), false }, /* activation type only */
    [TYPE_BF16] = { "bf16", 1,    2,                  true  },
};

const tensor_type_traits *tensor_type_get(uint32_t type) {
    if (type >= TYPE_COUNT_MAX || TYPE_TABLE[type].name == NULL) return NULL;
    return &TYPE_TABLE[type];
}

size_t tensor_row_bytes(uint32_t type, int64_t n_elems) {
    const tensor_type_traits *t = tensor_type_get(type);
    if (t == NULL || n_elems < 0 || n_elems % t->block_elems != 0) return 0;
    uint64_t blocks = (uint64_t)(n_elems / t->block_elems);
    if (blocks > SIZE_MAX / t->block_bytes) return 0; /* would overflow size_t */
    return (size_t)blocks * t->block_bytes;
}

int tensor_type_from_name(const char *name) {
    if (name == NULL) return -1;
    char lower[16];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof lower) return -1;
    for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    for (int id = 0; id < TYPE_COUNT_MAX; id++)
        if (TYPE_TABLE[id].name != NULL && strcmp(TYPE_TABLE[id].name, lower) == 0) return id;
    return -1;
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* binary16: sign(1) exponent(5, bias 15) mantissa(10).
 * Normal: (-1)^s * 2^(e-15) * 1.m; subnormal (e=0): (-1)^s * 2^-14 * 0.m. */
float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf or nan: keep the payload, shifted into the f32 mantissa */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: normalise — shift until the implicit 1 reaches bit 10 */
        int e = -14;
        while ((man & 0x400) == 0) { man <<= 1; e--; }
        man &= 0x3ff;
        return bits_f32(sign | (uint32_t)(e + 127) << 23 | man << 13);
    }
    return bits_f32(sign | (exp - 15 + 127) << 23 | man << 13);
}

/* Shift right by s, rounding to nearest, ties to even (s in 1..31). */
static uint32_t shift_rne(uint32_t v, int s) {
    uint32_t kept = v >> s;
    uint32_t rest = v & ((1u << s) - 1);
    uint32_t half = 1u << (s - 1);
    if (rest > half || (rest == half && (kept & 1))) kept++;
    return kept;
}

uint16_t f32_to_fp16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) { /* inf stays inf; nan stays a (quiet) nan with the top payload bits */
        if (man == 0) return sign | 0x7c00;
        return (uint16_t)(sign | 0x7e00 | (man >> 13));
    }
    int e = (int)exp - 127; /* unbiased exponent */
    if (e > 15) return sign | 0x7c00; /* above the largest finite half: overflow to inf */
    if (e >= -14) {
        /* normal half: 1.m with 23 mantissa bits rounded to 10. A carry out of
         * the mantissa correctly bumps the exponent (and 65520+ becomes inf). */
        uint32_t v = ((uint32_t)(e + 15) << 10) + shift_rne(man, 13);
        if (v >= 0x7c00) return sign | 0x7c00;
        return (uint16_t)(sign | v);
    }
    if (e < -25) return sign; /* below half the smallest subnormal: rounds to zero */
    /* subnormal half: value = 1.m * 2^e = q * 2^-24, q = (1.m << 23) >> (-e - 1 ... ) */
    uint32_t full = man | 0x800000;             /* 24-bit significand, value = full * 2^(e-23) */
    int s = -e - 1;                             /* q = full * 2^(e-23+24) = full >> (-1-e) */
    return (uint16_t)(sign | shift_rne(full, s)); /* may round up to the smallest normal: still right */
}

/* bfloat16 is the top 16 bits of an f32. */
float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* nan: force quiet */
    /* round to nearest even: add 0x7fff plus the lowest kept bit, then truncate */
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
