/*
 * unicode.c — UTF-8 decode/encode with the reference tokenizer's error rules,
 * the GPT-2 byte-to-code-point map, and the "is this UTF-8 finished" check
 * used by streaming. See unicode.h for the rules.
 */
#include "tokenizer/unicode.h"

size_t unicode_len_utf8(uint8_t lead) {
    /* indexed by the high 4 bits: 0xxx -> 1, 10xx -> 1 (stray), 110x -> 2,
     * 1110 -> 3, 1111 -> 4 */
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

static int is_cont(const char *s, size_t len, size_t i) {
    return i < len && ((uint8_t)s[i] & 0xC0) == 0x80;
}

uint32_t unicode_decode_utf8(const char *s, size_t len, size_t *pos) {
    size_t i = *pos;
    uint8_t b0 = (uint8_t)s[i];
    if (!(b0 & 0x80)) {
        *pos = i + 1;
        return b0;
    }
    if ((b0 & 0x40) && !(b0 & 0x20)) { /* 110xxxxx */
        if (is_cont(s, len, i + 1)) {
            *pos = i + 2;
            return ((uint32_t)(b0 & 0x1F) << 6) | ((uint8_t)s[i + 1] & 0x3F);
        }
    } else if ((b0 & 0x40) && !(b0 & 0x10)) { /* 1110xxxx */
        if (is_cont(s, len, i + 1) && is_cont(s, len, i + 2)) {
            *pos = i + 3;
            return ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)((uint8_t)s[i + 1] & 0x3F) << 6) |
                   ((uint8_t)s[i + 2] & 0x3F);
        }
    } else if ((b0 & 0x40) && !(b0 & 0x08)) { /* 11110xxx */
        if (is_cont(s, len, i + 1) && is_cont(s, len, i + 2) && is_cont(s, len, i + 3)) {
            *pos = i + 4;
            return ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)((uint8_t)s[i + 1] & 0x3F) << 12) |
                   ((uint32_t)((uint8_t)s[i + 2] & 0x3F) << 6) | ((uint8_t)s[i + 3] & 0x3F);
        }
    }
    *pos = i + 1;
    return UNICODE_REPLACEMENT;
}

size_t unicode_encode_utf8(uint32_t cp, char out[4]) {
    if (cp <= 0x7F) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp > 0x10FFFF) cp = UNICODE_REPLACEMENT;
    if (cp <= 0xFFFF) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Bytes that stand for themselves in the GPT-2 map. */
static int byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t unicode_byte_to_cp(uint8_t byte) {
    if (byte_is_printable(byte)) return byte;
    /* the n-th non-printable byte (in increasing order) maps to 256 + n */
    uint32_t n = 0;
    for (unsigned b = 0; b < byte; b++)
        if (!byte_is_printable(b)) n++;
    return 256 + n;
}

int unicode_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    uint32_t n = 0;
    for (unsigned b = 0; b < 256; b++) {
        if (byte_is_printable(b)) continue;
        if (256 + n == cp) return (int)b;
        n++;
    }
    return -1;
}

size_t unicode_complete_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t b0 = (uint8_t)s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (b0 < 0x80) { i++; continue; }
        else if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
        else if (b0 >= 0xE0 && b0 <= 0xEF) {
            need = 3;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            need = 4;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        } else { i++; continue; } /* invalid lead: complete (never valid) */
        size_t k = 1;
        for (; k < need && i + k < len; k++) {
            uint8_t b = (uint8_t)s[i + k];
            if (k == 1 ? (b < lo || b > hi) : ((b & 0xC0) != 0x80)) break;
        }
        if (k == need) { i += need; continue; }
        if (i + k == len) return i; /* valid so far but cut off: unfinished */
        i++;                        /* invalid sequence: passes through */
    }
    return len;
}
