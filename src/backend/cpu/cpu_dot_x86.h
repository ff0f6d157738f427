/*
 * cpu_dot_x86.h — the x86 dot-product and activation-quantization kernels,
 * written once and compiled twice: by cpu_dot_avx2.c (AVX2+FMA+F16C) and by
 * cpu_dot_avx512.c (adds AVX-512 VL + VNNI). Include ONLY from those files;
 * everything here is static.
 *
 * The includer defines X86_VNNI (0 or 1) and X86_FILL (the table-filling
 * function's name) before including this file.
 *
 * Key ideas
 *  - Integer products. Weight quants and 8-bit activation quants are
 *    multiplied as bytes: the u8 x s8 instructions (AVX2 vpmaddubsw + vpmaddwd,
 *    or VNNI vpdpbusd) need the left operand unsigned, so
 *      unsigned weights (Q4_1, Q5_1, Q4_K, Q5_K, Q6_K+32) go in directly, and
 *      a signed x signed product uses |w| * (a with w's sign) (vpsignb),
 *    which is exact because no operand is -128 (Q8_0 activations are in
 *    [-127, 127]; Q6_K is made unsigned with q+32 and corrected through the
 *    activation's bsums: sum sc*(q-32)*a = sum sc*q'*a - 32 sum sc*bsum).
 *  - Tokens share the weight unpacking: each kernel handles NT activation
 *    rows (1..CPU_DOT_TILE_TOKENS, or 1..CPU_DOT_MAX_TOKENS for the AVX-512
 *    Q4_K tile; a compile-time constant per instance), so a weight block is
 *    loaded and unpacked once per NT tokens.
 *  - Integer block sums are exact; only the float accumulation order differs
 *    from the reference (tests/backend/ checks within tolerance).
 */
#ifndef X86_FILL
#error "cpu_dot_x86.h is included only by cpu_dot_avx2.c / cpu_dot_avx512.c"
#endif

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/cpu_x86_reduce.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* Fully unrolls the short loops over tokens and chunks, so the per-token
 * accumulators live in registers (at -O2 gcc would keep them on the stack). */
#define UNROLL _Pragma("GCC unroll 8")

/* ---- small helpers */

ALWAYS_INLINE int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

ALWAYS_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* 8 int32 lanes, each the sum of 4 adjacent products u[i]*s[i] (u unsigned,
 * s signed bytes). Exact when the pairwise sums fit int16: |u| <= 127 here,
 * or u <= 63 with any s (all callers). */
ALWAYS_INLINE __m256i dot_u8s8(__m256i u, __m256i s) {
#if X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* As dot_u8s8 for two signed vectors (neither may contain -128). */
ALWAYS_INLINE __m256i dot_s8s8(__m256i w, __m256i a) {
    return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

/* acc + 8 int32 lanes: pairs of u8*s8 products (vpmaddubsw), pairs of those
 * weighted by the int16 scales in `scale16` (lane-wise). VNNI's vpdpwssd
 * does the weighting and the accumulation in one instruction (exact: no
 * saturation, and no sum here comes near 2^31). */
ALWAYS_INLINE __m256i acc_u8s8_scaled(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
#if X86_VNNI
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale16);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
#endif
}

/* 32 nibbles of a 16-byte qs: element i < 16 the low nibble of qs[i],
 * i >= 16 the high nibble of qs[i-16] (the legacy block order). */
ALWAYS_INLINE __m256i unpack_nibbles_32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* Byte i = 0x10 if bit i of the 32-bit little-endian qh is set, else 0. */
ALWAYS_INLINE __m256i unpack_high_bits_32(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, sizeof bits);
    /* byte i <- byte i/8 of bits (each 128-bit lane holds all 4 bytes) */
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                             0x0101010101010101, 0x0000000000000000);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    const __m256i which = _mm256_set1_epi64x((long long)0x8040201008040201ULL); /* 1 << (i%8) */
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, which), which);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

#define ACT(T) ((const void *)((const char *)act + (size_t)(T) * stride))

/* ---- legacy 32-element blocks x Q8_0 / Q8_1 */

/* Weights of one block as signed bytes (Q8_0, Q4_0 = q-8, Q5_0 = q-16) or
 * unsigned bytes (Q4_1, Q5_1). */
ALWAYS_INLINE __m256i weights_q8_0(const block_q8_0 *x) { return _mm256_loadu_si256((const __m256i *)x->qs); }
ALWAYS_INLINE __m256i weights_q4_0(const block_q4_0 *x) {
    return _mm256_sub_epi8(unpack_nibbles_32(x->qs), _mm256_set1_epi8(8));
}
ALWAYS_INLINE __m256i weights_q5_0(const block_q5_0 *x) {
    __m256i q = _mm256_or_si256(unpack_nibbles_32(x->qs), unpack_high_bits_32(x->qh));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(16));
}
ALWAYS_INLINE __m256i weights_q4_1(const block_q4_1 *x) { return unpack_nibbles_32(x->qs); }
ALWAYS_INLINE __m256i weights_q5_1(const block_q5_1 *x) {
    return _mm256_or_si256(unpack_nibbles_32(x->qs), unpack_high_bits_32(x->qh));
}

/* Signed weights x Q8_0: sum_b dw*da * sum_i w_i a_i. With one token, two
 * accumulators (even / odd blocks) break the FMA latency chain; with 2+
 * tokens, one, which is llama.cpp's prefill order (see LEGACY_SIGNED_DOT2).
 * (Its decode, ggml_vec_dot_q8_0_q8_0, keeps one chain too: one-token calls
 * are not matched, for speed.) */
#define LEGACY_SIGNED_DOT(NAME, WBLOCK, WEIGHTS)                                              \
    ALWAYS_INLINE void NAME(int64_t nb, const WBLOCK *x, const void *act, size_t stride,      \
                            const int NT, float *out) {                                       \
        const int CH = NT == 1 ? 2 : 1;                                                       \
        __m256 acc[2][CPU_DOT_MAX_TOKENS];                                                    \
        UNROLL                                                                                \
        for (int c = 0; c < 2; c++)                                                           \
            UNROLL                                                                            \
            for (int t = 0; t < NT; t++) acc[c][t] = _mm256_setzero_ps();                     \
        int64_t b = 0;                                                                        \
        for (; b < nb; b += CH) {                                                             \
            UNROLL                                                                            \
            for (int c = 0; c < CH; c++) {                                                    \
                if (CH > 1 && b + c >= nb) break;                                             \
                __m256i w = WEIGHTS(&x[b + c]);                                               \
                __m256i wabs = _mm256_sign_epi8(w, w);                                        \
                float dw = h2f(x[b + c].d);                                                   \
                UNROLL                                                                        \
                for (int t = 0; t < NT; t++) {                                                \
                    const block_q8_0 *a = (const block_q8_0 *)ACT(t) + b + c;                 \
                    __m256i av = _mm256_loadu_si256((const __m256i *)a->qs);                  \
                    __m256i p = dot_u8s8(wabs, _mm256_sign_epi8(av, w));                      \
                    acc[c][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(a->d)), _mm256_cvtepi32_ps(p), \
                                                acc[c][t]);                                   \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) out[t] = hsum_ps(_mm256_add_ps(acc[0][t], acc[1][t]));   \
    }
LEGACY_SIGNED_DOT(dot_q8_0_nt, block_q8_0, weights_q8_0)
LEGACY_SIGNED_DOT(dot_q4_0_nt, block_q4_0, weights_q4_0)
LEGACY_SIGNED_DOT(dot_q5_0_nt, block_q5_0, weights_q5_0)

/* Two rows x NT tokens of the signed types (prefill). Per token and block:
 * one activation load and one f16 scale conversion serve both rows. Each
 * row sums as the one-row kernel does with 2+ tokens, which is llama.cpp's
 * order for these types in prefill (tinyBLAS_Q0_AVX, ggml-cpu/llamafile/
 * sgemm.cpp, in its AVX2 and AVX-512 variants alike): per block, 8 lanes of
 * 4-product integer sums, acc = fma(dw·da, sums, acc); hsum at the end.
 * (Packing the two rows' sums with vphaddd to scale them in one multiply,
 * as this kernel did before, rounds in another order.) */
#define LEGACY_SIGNED_DOT2(NAME, WBLOCK, WEIGHTS)                                             \
    ALWAYS_INLINE void NAME(int64_t nb, const WBLOCK *x0, const WBLOCK *x1, const void *act,  \
                            size_t stride, const int NT, float *out) {                        \
        __m256 acc0[CPU_DOT_MAX_TOKENS], acc1[CPU_DOT_MAX_TOKENS];                            \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();                 \
        for (int64_t b = 0; b < nb; b++) {                                                    \
            __m256i w0 = WEIGHTS(&x0[b]), w1 = WEIGHTS(&x1[b]);                               \
            __m256i w0abs = _mm256_sign_epi8(w0, w0), w1abs = _mm256_sign_epi8(w1, w1);       \
            float dw0 = h2f(x0[b].d), dw1 = h2f(x1[b].d);                                     \
            UNROLL                                                                            \
            for (int t = 0; t < NT; t++) {                                                    \
                const block_q8_0 *a = (const block_q8_0 *)ACT(t) + b;                         \
                __m256i av = _mm256_loadu_si256((const __m256i *)a->qs);                      \
                float da = h2f(a->d);                                                         \
                __m256i p0 = dot_u8s8(w0abs, _mm256_sign_epi8(av, w0));                       \
                __m256i p1 = dot_u8s8(w1abs, _mm256_sign_epi8(av, w1));                       \
                acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw0 * da), _mm256_cvtepi32_ps(p0), acc0[t]); \
                acc1[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw1 * da), _mm256_cvtepi32_ps(p1), acc1[t]); \
            }                                                                                 \
        }                                                                                     \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) {                                                        \
            out[t] = hsum_ps(acc0[t]);                                                        \
            out[CPU_DOT_MAX_TOKENS + t] = hsum_ps(acc1[t]);                                   \
        }                                                                                     \
    }
LEGACY_SIGNED_DOT2(dot2_q8_0_nt, block_q8_0, weights_q8_0)
LEGACY_SIGNED_DOT2(dot2_q4_0_nt, block_q4_0, weights_q4_0)
LEGACY_SIGNED_DOT2(dot2_q5_0_nt, block_q5_0, weights_q5_0)

/* Unsigned weights (w = dw*q + m) x Q8_1: sum = dw*da*sum(q*qa) + m*s, where
 * the Q8_1 activation carries s = da*sum(qa). */
#define LEGACY_UNSIGNED_DOT(NAME, WBLOCK, WEIGHTS)                                            \
    ALWAYS_INLINE void NAME(int64_t nb, const WBLOCK *x, const void *act, size_t stride,      \
                            const int NT, float *out) {                                       \
        __m256 acc[CPU_DOT_MAX_TOKENS];                                                       \
        float offs[CPU_DOT_MAX_TOKENS];                                                       \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps(), offs[t] = 0;               \
        for (int64_t b = 0; b < nb; b++) {                                                    \
            __m256i q = WEIGHTS(&x[b]);                                                       \
            float dw = h2f(x[b].d), m = h2f(x[b].m);                                          \
            UNROLL                                                                            \
            for (int t = 0; t < NT; t++) {                                                    \
                const block_q8_1 *a = (const block_q8_1 *)ACT(t) + b;                         \
                __m256i p = dot_u8s8(q, _mm256_loadu_si256((const __m256i *)a->qs));          \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(a->d)), _mm256_cvtepi32_ps(p), acc[t]); \
                offs[t] += m * h2f(a->s);                                                     \
            }                                                                                 \
        }                                                                                     \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) out[t] = hsum_ps(acc[t]) + offs[t];                      \
    }
LEGACY_UNSIGNED_DOT(dot_q4_1_nt, block_q4_1, weights_q4_1)
LEGACY_UNSIGNED_DOT(dot_q5_1_nt, block_q5_1, weights_q5_1)

/* ---- K-quants x Q8_K */

/* The 8 six-bit scales and 8 mins of a Q4_K/Q5_K scales[12], as bytes
 * sc0..sc7, m0..m7 (the packing of src/tensor/quant_k.c q4k_scale_min, four
 * at a time: bytes 0-3 hold sc0-3, 4-7 hold m0-3 (low 6 bits each); bytes
 * 8-11 hold the low 4 bits of sc4-7 / m4-7 as nibbles, and their top 2 bits
 * are the top bits of bytes 0-3 / 4-7). */
ALWAYS_INLINE __m128i q4k_unpack_scales(const uint8_t scales[12]) {
    /* Reads 16 bytes (the 12 of scales and 4 of the qs that follow in the
     * block). Dwords u0, u1, u2 of scales; per byte:
     *   sc0-3 = u0 & 63              m0-3 = u1 & 63
     *   sc4-7 = (u2 & 15) | (u0 >> 6) << 4  = (u2 & 0x0f) | ((u0 >> 2) & 0x30)
     *   m4-7  = (u2 >> 4) | (u1 >> 6) << 4  = ((u2 >> 4) & 0x0f) | ((u1 >> 2) & 0x30) */
    __m128i v = _mm_loadu_si128((const __m128i *)scales);
    __m128i low = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));  /* u0 u2 u1 u2 */
    __m128i top = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  /* u0 u0 u1 u1 */
    low = _mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4));
    low = _mm_and_si128(low, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    top = _mm_and_si128(_mm_srli_epi32(top, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm_or_si128(low, top);                                /* sc0-3 sc4-7 m0-3 m4-7 */
}

/* From the bytes sc0..7, m0..7 of q4k_unpack_scales:
 *   *scales16  int16 sc0..sc7 in both 128-bit lanes (for broadcasts by vpshufb)
 *   *mins_pair int16 m0,m0,m1,m1,...,m7,m7: madd with the 16 bsums gives
 *              m_j * (bsums[2j] + bsums[2j+1]) in int32 lane j. */
ALWAYS_INLINE void q4k_scale_vectors(__m128i scm, __m256i *scales16, __m256i *mins_pair) {
    __m128i sc8 = _mm_cvtepu8_epi16(scm);
    *scales16 = _mm256_broadcastsi128_si256(sc8);
    const __m128i dup = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    *mins_pair = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scm, dup));
}

/* int16 lane j of scales16 (both 128-bit lanes hold the same 8) broadcast to all 16 lanes. */
#define BCAST16(V, J) _mm256_shuffle_epi8((V), _mm256_set1_epi16((short)((2 * (J) + 1) << 8 | 2 * (J))))

/* The min part of a Q4_K/Q5_K block for one token, as 8 float lanes to be
 * scaled by -dmin*da: m_j * (bsums[2j] + bsums[2j+1]). */
ALWAYS_INLINE __m256 q8k_min_lanes(const block_q8_k *a, __m256i mins_pair) {
    __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mins_pair));
}

/* Q4_K: x = d*sc_j*q - dmin*m_j per 32-element sub-block j. */
ALWAYS_INLINE void dot_q4_k_nt(int64_t nb, const block_q4_k *x, const void *act, size_t stride,
                               const int NT, float *out) {
    __m256 acc[CPU_DOT_MAX_TOKENS];
    UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        __m256i scales16, mins_pair;
        q4k_scale_vectors(q4k_unpack_scales(x[b].scales), &scales16, &mins_pair);
        float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
        __m256i sumi[CPU_DOT_MAX_TOKENS];
        UNROLL
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        UNROLL
        for (int c = 0; c < 4; c++) {          /* 64 elements: sub-blocks 2c (low), 2c+1 (high) */
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            __m256i qlo = _mm256_and_si256(q, low4);
            __m256i qhi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            __m256i s_lo = BCAST16(scales16, 2 * c), s_hi = BCAST16(scales16, 2 * c + 1);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
                __m256i a0 = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c));
                __m256i a1 = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32));
                if (NT == 1) /* one token: keep the vpdpwssd chains short (latency, not throughput) */
                    sumi[t] = _mm256_add_epi32(sumi[t], acc_u8s8_scaled(acc_u8s8_scaled(_mm256_setzero_si256(),
                                                                        qlo, a0, s_lo), qhi, a1, s_hi));
                else
                    sumi[t] = acc_u8s8_scaled(acc_u8s8_scaled(sumi[t], qlo, a0, s_lo), qhi, a1, s_hi);
            }
        }
        UNROLL
        for (int t = 0; t < NT; t++) {
            const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * a->d), q8k_min_lanes(a, mins_pair), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++) out[t] = hsum_ps(acc[t]);
}

#if X86_VNNI
/* Q4_K with 512-bit vectors (AVX-512 build): one zmm holds a whole 64-element
 * chunk (low nibbles = sub-block 2c in the low half, high nibbles = 2c+1 in
 * the high half), matching the 64 contiguous activation bytes, so each chunk
 * costs one vpmaddubsw + one vpdpwssd per token instead of two of each
 * plus the adds. */
ALWAYS_INLINE void dot_q4_k_512_nt(int64_t nb, const block_q4_k *x, const void *act, size_t stride,
                                   const int NT, float *out) {
    __m256 acc[CPU_DOT_MAX_TOKENS];
    UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        __m128i scm = q4k_unpack_scales(x[b].scales);
        __m256i scales16, mins_pair;
        q4k_scale_vectors(scm, &scales16, &mins_pair);
        __m512i sc512 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(scm)); /* sc0..7 in every 128-bit lane */
        float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
        __m512i sumi[CPU_DOT_MAX_TOKENS];
        UNROLL
        for (int t = 0; t < NT; t++) sumi[t] = _mm512_setzero_si512();
        UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
            qq = _mm512_and_si512(qq, low4);
            /* int16 sc[2c] in the low 256 bits, sc[2c+1] in the high 256 */
            const __m512i pick = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set1_epi16((short)((4 * c + 1) << 8 | 4 * c))),
                _mm256_set1_epi16((short)((4 * c + 3) << 8 | (4 * c + 2))), 1);
            __m512i scale = _mm512_shuffle_epi8(sc512, pick);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
                __m512i av = _mm512_loadu_si512((const void *)(a->qs + 64 * c));
                sumi[t] = _mm512_dpwssd_epi32(sumi[t], _mm512_maddubs_epi16(qq, av), scale);
            }
        }
        UNROLL
        for (int t = 0; t < NT; t++) {
            const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
            __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(sumi[t]), _mm512_extracti64x4_epi64(sumi[t], 1));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(s), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * a->d), q8k_min_lanes(a, mins_pair), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++) out[t] = hsum_ps(acc[t]);
}
/* 512 bits for token tiles only; a single token uses the 256-bit kernel,
 * whose vpdpwssd chains are short (one chain of 8 dependent vpdpwssd per
 * block made decode 2x slower on Intel Sapphire Rapids; AMD Zen 4 did not
 * mind). */
/* The 512-bit tiles live in their own function: when it was inlined next to
 * the 1-token path, the compiler hoisted zmm constants to the shared entry,
 * and executing any 512-bit instruction slowed the 256-bit decode loop about
 * 3x on Sapphire Rapids (AVX-512 frequency license / port 1 shut-down). */
static __attribute__((noinline)) void dot_q4_k_512_tile(int64_t nb, const block_q4_k *x, const void *act,
                                                        size_t stride, int n_tok, float *out) {
    switch (n_tok) {
    case 2: dot_q4_k_512_nt(nb, x, act, stride, 2, out); break;
    case 3: dot_q4_k_512_nt(nb, x, act, stride, 3, out); break;
    case 4: dot_q4_k_512_nt(nb, x, act, stride, 4, out); break;
    case 5: dot_q4_k_512_nt(nb, x, act, stride, 5, out); break;
    case 6: dot_q4_k_512_nt(nb, x, act, stride, 6, out); break;
    case 7: dot_q4_k_512_nt(nb, x, act, stride, 7, out); break;
    default: dot_q4_k_512_nt(nb, x, act, stride, 8, out); break;
    }
}
/* The 1-token Q4_K kernel of the AVX2 build (cpu_dot_avx2.c): compiled
 * for AVX-512, the same source ran 2.4x slower on Sapphire Rapids (31.6 vs
 * 13.4 ns per block, cause not found; AMD Zen 4: equal), so decode uses it. */
void cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *act, size_t stride, int n_tok, float *out);

ALWAYS_INLINE void dot_q4_k_best_nt(int64_t nb, const block_q4_k *x, const void *act, size_t stride,
                                    const int NT, float *out) {
    if (NT == 1) cpu_dot_q4_k_avx2(nb * QK_K, x, act, stride, 1, out);
    else dot_q4_k_512_tile(nb, x, act, stride, NT, out);
}
#define DOT_Q4_K_IMPL dot_q4_k_best_nt
#else
#define DOT_Q4_K_IMPL dot_q4_k_nt
#endif

/* Q5_K: as Q4_K with bit 4 of element e in bit e/32 of qh[e%32]. */
ALWAYS_INLINE void dot_q5_k_nt(int64_t nb, const block_q5_k *x, const void *act, size_t stride,
                               const int NT, float *out) {
    __m256 acc[CPU_DOT_MAX_TOKENS];
    UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        __m256i scales16, mins_pair;
        q4k_scale_vectors(q4k_unpack_scales(x[b].scales), &scales16, &mins_pair);
        float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
        __m256i qh = _mm256_loadu_si256((const __m256i *)x[b].qh);
        __m256i sumi[CPU_DOT_MAX_TOKENS];
        UNROLL
        for (int t = 0; t < NT; t++) sumi[t] = _mm256_setzero_si256();
        UNROLL
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * c));
            /* bits 2c and 2c+1 of each qh byte (qh is shifted right by 2 per chunk) */
            __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
            __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
            qh = _mm256_srli_epi16(qh, 2);
            __m256i qlo = _mm256_or_si256(_mm256_and_si256(q, low4), h_lo);
            __m256i qhi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), h_hi);
            __m256i s_lo = BCAST16(scales16, 2 * c), s_hi = BCAST16(scales16, 2 * c + 1);
            UNROLL
            for (int t = 0; t < NT; t++) {
                const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
                __m256i a0 = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c));
                __m256i a1 = _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32));
                if (NT == 1) /* one token: keep the vpdpwssd chains short (latency, not throughput) */
                    sumi[t] = _mm256_add_epi32(sumi[t], acc_u8s8_scaled(acc_u8s8_scaled(_mm256_setzero_si256(),
                                                                        qlo, a0, s_lo), qhi, a1, s_hi));
                else
                    sumi[t] = acc_u8s8_scaled(acc_u8s8_scaled(sumi[t], qlo, a0, s_lo), qhi, a1, s_hi);
            }
        }
        UNROLL
        for (int t = 0; t < NT; t++) {
            const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * a->d), q8k_min_lanes(a, mins_pair), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++) out[t] = hsum_ps(acc[t]);
}

/* Q6_K: x = d*sc_s*(q-32), 16 sub-blocks of 16. With q' = q (unsigned 0..63):
 * sum_s sc_s * sum (q-32)*qa = sum_s sc_s*sum q*qa - 32*sum_s sc_s*bsums_s. */
ALWAYS_INLINE void dot_q6_k_nt(int64_t nb, const block_q6_k *x, const void *act, size_t stride,
                               const int NT, float *out) {
    __m256 acc[CPU_DOT_MAX_TOKENS];
    UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
    for (int64_t b = 0; b < nb; b++) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[b].scales));
        float d = h2f(x[b].d);
        __m256i sumi[CPU_DOT_MAX_TOKENS];
        UNROLL
        for (int t = 0; t < NT; t++) {
            /* the -32 correction: 32 * sum_s sc_s * bsums_s */
            const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
            __m256i bs = _mm256_loadu_si256((const __m256i *)a->bsums);
            sumi[t] = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5);
            sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), sumi[t]);
        }
        UNROLL
        for (int h = 0; h < 2; h++) {          /* halves of 128 elements */
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(x[b].ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x[b].qh + 32 * h));
            /* int16 scales 8h..8h+7 in both 128-bit lanes */
            __m256i half_scales = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                                         : _mm256_permute2x128_si256(sc16, sc16, 0x11);
            __m256i q[4];                       /* groups g of 32: element 128h + 32g + l */
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, two), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4));
            UNROLL
            for (int g = 0; g < 4; g++) {
                /* sub-blocks s = 8h+2g (low 128-bit lane) and s+1 (high): int16
                 * lanes 2g and 2g+1 of this half's scales, by one vpshufb */
                const __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)((4 * g + 3) << 8 | (4 * g + 2))),
                                                      _mm_set1_epi16((short)((4 * g + 1) << 8 | 4 * g)));
                __m256i scale = _mm256_shuffle_epi8(half_scales, pick);
                UNROLL
                for (int t = 0; t < NT; t++) {
                    const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
                    __m256i av = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * g));
                    if (NT == 1) /* short dependency chains, as in Q4_K */
                        sumi[t] = _mm256_add_epi32(sumi[t], acc_u8s8_scaled(_mm256_setzero_si256(), q[g], av, scale));
                    else
                        sumi[t] = acc_u8s8_scaled(sumi[t], q[g], av, scale);
                }
            }
        }
        UNROLL
        for (int t = 0; t < NT; t++) {
            const block_q8_k *a = (const block_q8_k *)ACT(t) + b;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    UNROLL
    for (int t = 0; t < NT; t++) out[t] = hsum_ps(acc[t]);
}

/* ---- float weights x f32 activations */

/* Loads 8 weights of a float type as f32. */
ALWAYS_INLINE __m256 load8_f32(const float *w) { return _mm256_loadu_ps(w); }
ALWAYS_INLINE __m256 load8_f16(const uint16_t *w) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
}
ALWAYS_INLINE __m256 load8_bf16(const uint16_t *w) { /* bf16 = top half of an f32 */
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* CH independent accumulators per token hide the FMA latency: 4 for a
 * single token (decode), 2 when 2-4 tokens already give parallel chains.
 *
 * F32 weights take llama.cpp's summation order instead (CH = F32_DOT_CHAINS
 * for any NT), so that an F32 model's q, k and v come out bit for bit as
 * llama.cpp's: its F32 matmul (llamafile's tinyBLAS, ggml-cpu/llamafile/
 * sgemm.cpp) keeps one vector accumulator per output, fed by fused
 * multiply-adds in order along the row, and sums its lanes at the end
 * (halves, then pairs: hsum_ps's order). The vector is 16 lanes in the
 * AVX-512 builds (the zen4, skylakex, ... CPU variants) and 8 lanes in the
 * AVX2 ones (haswell): CH = 2 here is that 16-lane order (the two 8-lane
 * halves added first), CH = 1 the 8-lane one. The order matters beyond
 * rounding noise for a quantized KV cache: a one-ulp change of q moved a
 * q8_0 block scale across an f16 rounding boundary and |Δp| to 7e-4 (qwen3,
 * tests/model/test_agreement.mjs, llama.cpp's haswell variant against the
 * 16-lane order). Not matched: rows whose length is not a multiple of the
 * lane count, and one-token calls (decode), for which llama.cpp takes
 * ggml_vec_dot_f32 (4 accumulators, another final reduction). On AVX-512
 * CPUs without VNNI larder runs its AVX2 level, ggml a 16-lane variant (the
 * tests force ggml's haswell there: tests/oracle/llama_cpu_variant.mjs). */
#if X86_VNNI
#define F32_DOT_CHAINS 2
#else
#define F32_DOT_CHAINS 1
#endif
#define FLOAT_DOT(NAME, WT, LOAD8, SCALAR, CHAINS)                                            \
    ALWAYS_INLINE void NAME(int64_t n, const WT *w, const void *act, size_t stride, const int NT, \
                            float *out) {                                                     \
        const int CH = CHAINS;                                                                \
        __m256 acc[CPU_DOT_MAX_TOKENS][4];                                                    \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++)                                                          \
            UNROLL                                                                            \
            for (int c = 0; c < CH; c++) acc[t][c] = _mm256_setzero_ps();                     \
        int64_t i = 0;                                                                        \
        for (; i + 8 * CH <= n; i += 8 * CH) {                                                \
            UNROLL                                                                            \
            for (int c = 0; c < CH; c++) {                                                    \
                __m256 wv = LOAD8(w + i + 8 * c);                                             \
                UNROLL                                                                        \
                for (int t = 0; t < NT; t++)                                                  \
                    acc[t][c] = _mm256_fmadd_ps(wv, _mm256_loadu_ps((const float *)ACT(t) + i + 8 * c), \
                                                acc[t][c]);                                   \
            }                                                                                 \
        }                                                                                     \
        for (; i + 8 <= n; i += 8) {                                                          \
            __m256 wv = LOAD8(w + i);                                                         \
            UNROLL                                                                            \
            for (int t = 0; t < NT; t++)                                                      \
                acc[t][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps((const float *)ACT(t) + i), acc[t][0]); \
        }                                                                                     \
        UNROLL                                                                                \
        for (int t = 0; t < NT; t++) {                                                        \
            __m256 a = acc[t][0];                                                             \
            UNROLL                                                                            \
            for (int c = 1; c < CH; c++) a = _mm256_add_ps(a, acc[t][c]);                     \
            float s = hsum_ps(a);                                                             \
            for (int64_t k = i; k < n; k++) s += SCALAR(w[k]) * ((const float *)ACT(t))[k];  \
            out[t] = s;                                                                       \
        }                                                                                     \
    }
#define AS_F32(v) (v)
FLOAT_DOT(dot_f32_nt, float, load8_f32, AS_F32, F32_DOT_CHAINS)
FLOAT_DOT(dot_f16_nt, uint16_t, load8_f16, h2f, NT == 1 ? 4 : 2)
FLOAT_DOT(dot_bf16_nt, uint16_t, load8_bf16, bf16_to_f32, NT == 1 ? 4 : 2)

/* ---- the table entries: n_tok -> a compile-time NT */

#define DOT_ENTRY(NAME, IMPL, WT, BLOCK_ELEMS)                                                \
    static void NAME(int64_t n, const void *w, const void *act, size_t stride, int n_tok,     \
                     float *out) {                                                            \
        int64_t nb = n / (BLOCK_ELEMS);                                                       \
        switch (n_tok) {                                                                      \
        case 1: IMPL(nb, (const WT *)w, act, stride, 1, out); break;                          \
        case 2: IMPL(nb, (const WT *)w, act, stride, 2, out); break;                          \
        case 3: IMPL(nb, (const WT *)w, act, stride, 3, out); break;                          \
        default: IMPL(nb, (const WT *)w, act, stride, 4, out); break;                         \
        }                                                                                     \
    }
DOT_ENTRY(dot_q8_0, dot_q8_0_nt, block_q8_0, QK32)
DOT_ENTRY(dot_q4_0, dot_q4_0_nt, block_q4_0, QK32)
DOT_ENTRY(dot_q5_0, dot_q5_0_nt, block_q5_0, QK32)
DOT_ENTRY(dot_q4_1, dot_q4_1_nt, block_q4_1, QK32)
DOT_ENTRY(dot_q5_1, dot_q5_1_nt, block_q5_1, QK32)
#if X86_VNNI
/* Q4_K on AVX-512 takes tiles of up to CPU_DOT_MAX_TOKENS (8) tokens: the
 * weight unpacking of a 64-element chunk (5 instructions) then serves 8
 * tokens' 2 instructions each instead of 4's. */
static void dot_q4_k(int64_t n, const void *w, const void *act, size_t stride, int n_tok, float *out) {
    if (n_tok == 1) cpu_dot_q4_k_avx2(n, w, act, stride, 1, out);
    else dot_q4_k_512_tile(n / QK_K, (const block_q4_k *)w, act, stride, n_tok, out);
}
#else
DOT_ENTRY(dot_q4_k, DOT_Q4_K_IMPL, block_q4_k, QK_K)
#endif
DOT_ENTRY(dot_q5_k, dot_q5_k_nt, block_q5_k, QK_K)
DOT_ENTRY(dot_q6_k, dot_q6_k_nt, block_q6_k, QK_K)
DOT_ENTRY(dot_f32, dot_f32_nt, float, 1)
DOT_ENTRY(dot_f16, dot_f16_nt, uint16_t, 1)
DOT_ENTRY(dot_bf16, dot_bf16_nt, uint16_t, 1)

#define DOT2_ENTRY(NAME, IMPL, WT, BLOCK_ELEMS)                                               \
    static void NAME(int64_t n, const void *w, size_t w_row_bytes, const void *act, size_t stride, \
                     int n_tok, float *out) {                                                 \
        int64_t nb = n / (BLOCK_ELEMS);                                                       \
        const WT *x0 = w, *x1 = (const WT *)((const char *)w + w_row_bytes);                  \
        switch (n_tok) {                                                                      \
        case 1: IMPL(nb, x0, x1, act, stride, 1, out); break;                                 \
        case 2: IMPL(nb, x0, x1, act, stride, 2, out); break;                                 \
        case 3: IMPL(nb, x0, x1, act, stride, 3, out); break;                                 \
        default: IMPL(nb, x0, x1, act, stride, 4, out); break;                                \
        }                                                                                     \
    }
DOT2_ENTRY(dot2_q8_0, dot2_q8_0_nt, block_q8_0, QK32)
DOT2_ENTRY(dot2_q4_0, dot2_q4_0_nt, block_q4_0, QK32)
DOT2_ENTRY(dot2_q5_0, dot2_q5_0_nt, block_q5_0, QK32)

/* ---- activation quantization, bit-identical to quantize_row_activation */

/* Largest |x| of 32 floats. */
ALWAYS_INLINE float amax_32(const float *x) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_and_ps(_mm256_loadu_ps(x), abs_mask);
    for (int i = 8; i < 32; i += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* q[i] = round_to_nearest_even(x[i] * scale) as int8 for 32 floats (the
 * products are within [-128.5, 127.5], so the saturating packs never clip a
 * value the reference would not clamp the same way); returns sum(q). */
ALWAYS_INLINE int quantize_32(const float *x, float scale, int8_t *q) {
    __m256 s = _mm256_set1_ps(scale);
    __m256i v[4];
    UNROLL
    for (int k = 0; k < 4; k++) {
        __m256 p = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v[k] = _mm256_cvtps_epi32(p);
    }
    /* packs work per 128-bit lane: the permute restores element order */
    __m256i w01 = _mm256_packs_epi32(v[0], v[1]), w23 = _mm256_packs_epi32(v[2], v[3]);
    __m256i b = _mm256_packs_epi16(w01, w23);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, b);
    __m256i sum32 = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
    return hsum_epi32(sum32);
}

/* id = 127/amax, not 1/d: llama.cpp's x86 quantize_row_q8_0 / q8_1 */
static void quant_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / QK32; b++, x += QK32) {
        float amax = amax_32(x), d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        quantize_32(x, id, y[b].qs);
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    }
}

static void quant_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t b = 0; b < n / QK32; b++, x += QK32) {
        float amax = amax_32(x), d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = quantize_32(x, id, y[b].qs);
        y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[b].s = _cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
    }
}

/* Q8_K: d = max / -127 where max is the FIRST element of largest magnitude
 * (with its sign), q = round(x * -127/max). */
static void quant_q8_k(const float *x, void *dst, int64_t n) {
    block_q8_k *y = dst;
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float amax = 0;
        UNROLL
        for (int k = 0; k < QK_K; k += 32) amax = fmaxf(amax, amax_32(x + k));
        if (amax == 0.0f || !isfinite(amax)) {
            /* zero block with 256-bit stores: a memset here compiles to zmm
             * stores in the AVX-512 build, and any 512-bit instruction slows
             * the decode kernels that follow on Intel (see dot_q4_k_512_tile) */
            uint8_t *p = (uint8_t *)&y[b];
            size_t k = 0;
            for (; k + 32 <= sizeof y[b]; k += 32) {
                _mm256_storeu_si256((__m256i *)(p + k), _mm256_setzero_si256());
                __asm__ __volatile__("" ::: "memory"); /* keeps gcc from merging them into zmm stores */
            }
            for (; k < sizeof y[b]; k++) p[k] = 0;
            continue;
        }
        const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        float max = 0;
        for (int k = 0; k < QK_K; k += 8) {
            __m256 eq = _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask),
                                      _mm256_set1_ps(amax), _CMP_EQ_OQ);
            int mask = _mm256_movemask_ps(eq);
            if (mask) {
                max = x[k + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        float iscale = -127.0f / max;
        UNROLL
        for (int k = 0; k < QK_K; k += 32) quantize_32(x + k, iscale, y[b].qs + k);
        for (int s = 0; s < QK_K / 16; s++) {
            /* sum of 16 int8: widen to int16 and add pairwise */
            __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y[b].qs + 16 * s)));
            y[b].bsums[s] = (int16_t)hsum_epi32(_mm256_madd_epi16(w, _mm256_set1_epi16(1)));
        }
        y[b].d = 1.0f / iscale;
    }
}

static void quant_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }

/* Replaces the entries this ISA speeds up (Q2_K and Q3_K stay scalar). */
static void fill_x86_common(cpu_kernels *k) {
    k->dot2[TYPE_Q8_0] = dot2_q8_0;
    k->dot2[TYPE_Q4_0] = dot2_q4_0;
    k->dot2[TYPE_Q5_0] = dot2_q5_0;
    k->dot[TYPE_Q8_0] = dot_q8_0;
    k->dot[TYPE_Q4_0] = dot_q4_0;
    k->dot[TYPE_Q5_0] = dot_q5_0;
    k->dot[TYPE_Q4_1] = dot_q4_1;
    k->dot[TYPE_Q5_1] = dot_q5_1;
    k->dot[TYPE_Q4_K] = dot_q4_k;
    k->dot[TYPE_Q5_K] = dot_q5_k;
    k->dot[TYPE_Q6_K] = dot_q6_k;
    k->dot[TYPE_F32] = dot_f32;
    k->dot[TYPE_F16] = dot_f16;
    k->dot[TYPE_BF16] = dot_bf16;
    k->quantize[TYPE_F32] = quant_f32;
    k->quantize[TYPE_Q8_0] = quant_q8_0;
    k->quantize[TYPE_Q8_1] = quant_q8_1;
    k->quantize[TYPE_Q8_K] = quant_q8_k;
}
