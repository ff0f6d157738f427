/*
 * dtype.h — tensor element types and the byte layout of every quantized block.
 *
 * Type ids are GGUF's (ggml's) ids, so a tensor's type field in a GGUF file
 * maps directly onto this enum. A row of n elements of a block type holds
 * n / block_elems blocks, packed back to back; n must be a multiple of
 * block_elems (the GGUF reader rejects files where it is not).
 *
 * Every block struct below is the exact on-disk layout; sizes are asserted at
 * compile time. Multi-byte fields are little-endian (larder runs on
 * little-endian hosts only). f16 fields are IEEE binary16 stored as uint16_t.
 *
 * Dequantized value of element i of a block, per type:
 *   Q4_0  x = d * (q - 8),          q = 4-bit nibble: element i<16 low nibble of qs[i], i>=16 high nibble of qs[i-16]
 *   Q4_1  x = d * q + m
 *   Q5_0  x = d * (q - 16),         q = nibble | (bit i of qh) << 4
 *   Q5_1  x = d * q + m
 *   Q8_0  x = d * qs[i]
 *   Q4_K  256 = 8 sub-blocks of 32; sub-block j has 6-bit scale sc[j] and min m[j] packed in scales[12];
 *         x = d * sc[j] * q - dmin * m[j]   (q: 4-bit; qs holds 4 groups of 64: low nibbles then high)
 *   Q5_K  as Q4_K with a 5th bit from qh
 *   Q6_K  256 = 16 sub-blocks of 16 with int8 scales; x = d * scales[j] * (q - 32), q 6-bit (ql low 4, qh high 2)
 *   Q8_K  activation type for K-quant dot products: x = d * qs[i]; bsums[j] = sum of qs in group j of 16
 * The precise bit packing follows ggml: src/tensor/quant_legacy.c and quant_k.c hold the
 * commented unpacking code, the reference (quant.h) every SIMD kernel is tested against.
 */
#ifndef LARDER_TENSOR_DTYPE_H
#define LARDER_TENSOR_DTYPE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum tensor_type {
    TYPE_F32  = 0,
    TYPE_F16  = 1,
    TYPE_Q4_0 = 2,
    TYPE_Q4_1 = 3,
    /* 4 and 5 were Q4_2/Q4_3, removed from the format */
    TYPE_Q5_0 = 6,
    TYPE_Q5_1 = 7,
    TYPE_Q8_0 = 8,
    TYPE_Q8_1 = 9,
    TYPE_Q2_K = 10,
    TYPE_Q3_K = 11,
    TYPE_Q4_K = 12,
    TYPE_Q5_K = 13,
    TYPE_Q6_K = 14,
    TYPE_Q8_K = 15,
    TYPE_BF16 = 30,
    TYPE_COUNT_MAX = 64 /* ids at or above this are rejected as unknown */
} tensor_type;

/* Elements per super-block of the K-quant types. */
#define QK_K 256
/* Elements per block of the legacy types (Q4_0 ... Q8_1). */
#define QK32 32

typedef struct { uint16_t d; uint8_t qs[QK32 / 2]; } block_q4_0;                 /* 18 bytes / 32 */
typedef struct { uint16_t d; uint16_t m; uint8_t qs[QK32 / 2]; } block_q4_1;     /* 20 bytes / 32 */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } block_q5_0;  /* 22 bytes / 32 */
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } block_q5_1; /* 24 / 32 */
typedef struct { uint16_t d; int8_t qs[QK32]; } block_q8_0;                      /* 34 bytes / 32 */
typedef struct { uint16_t d; uint16_t s; int8_t qs[QK32]; } block_q8_1;          /* 36 bytes / 32; s = d * sum(qs) */

typedef struct {                       /* 84 bytes / 256 */
    uint8_t scales[QK_K / 16];         /* 4-bit scale (low) and min (high) per 16 elements */
    uint8_t qs[QK_K / 4];              /* 2-bit quants */
    uint16_t d, dmin;
} block_q2_k;
typedef struct {                       /* 110 bytes / 256 */
    uint8_t hmask[QK_K / 8];           /* high bit of each quant */
    uint8_t qs[QK_K / 4];              /* low 2 bits */
    uint8_t scales[12];                /* 16 6-bit scales */
    uint16_t d;
} block_q3_k;
typedef struct {                       /* 144 bytes / 256 */
    uint16_t d, dmin;                  /* super-block scale for scales and for mins */
    uint8_t scales[12];                /* 8 6-bit scales and 8 6-bit mins, packed */
    uint8_t qs[QK_K / 2];              /* 4-bit quants */
} block_q4_k;
typedef struct {                       /* 176 bytes / 256 */
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];              /* 5th bit of each quant */
    uint8_t qs[QK_K / 2];              /* low 4 bits */
} block_q5_k;
typedef struct {                       /* 210 bytes / 256 */
    uint8_t ql[QK_K / 2];              /* low 4 bits */
    uint8_t qh[QK_K / 4];              /* high 2 bits */
    int8_t scales[QK_K / 16];          /* 16 8-bit scales */
    uint16_t d;
} block_q6_k;
typedef struct {                       /* 292 bytes / 256 */
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];          /* sum of each group of 16 qs */
} block_q8_k;

static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
static_assert(sizeof(block_q2_k) == 84, "q2_k layout");
static_assert(sizeof(block_q3_k) == 110, "q3_k layout");
static_assert(sizeof(block_q4_k) == 144, "q4_k layout");
static_assert(sizeof(block_q5_k) == 176, "q5_k layout");
static_assert(sizeof(block_q6_k) == 210, "q6_k layout");
static_assert(sizeof(block_q8_k) == 292, "q8_k layout");

typedef struct tensor_type_traits {
    const char *name;       /* "f32", "q4_k", ... (lower case, as GGUF tools print them) */
    int32_t block_elems;    /* elements per block (1 for f32/f16/bf16) */
    size_t block_bytes;     /* bytes per block */
    bool can_compute;       /* larder has dequantize + dot-product kernels for it */
} tensor_type_traits;

/* Traits of a type id, or NULL if the id is unknown. */
const tensor_type_traits *tensor_type_get(uint32_t type);

/* Bytes of a row of n_elems elements; 0 if the type is unknown or n_elems is
 * not a multiple of its block size. */
size_t tensor_row_bytes(uint32_t type, int64_t n_elems);

/* Type id for a name ("q4_k", "Q4_K", "f16"...), or -1. */
int tensor_type_from_name(const char *name);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

#endif
