/*
 * utf8.c — UTF-8 validation (see utf8.h). A byte-at-a-time decoder: the
 * second byte's allowed range depends on the lead byte (that is where
 * overlongs, surrogates and values above U+10FFFF are excluded).
 */
#include "base/utf8.h"

int utf8_sequence_bytes(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        int len = utf8_sequence_bytes(c);
        if (len == 0 || i + (size_t)len > n) return i;
        if (len >= 2) {
            unsigned char lo = 0x80, hi = 0xBF, c1 = s[i + 1];
            if (c == 0xE0) lo = 0xA0;      /* overlong 3-byte */
            if (c == 0xED) hi = 0x9F;      /* UTF-16 surrogates */
            if (c == 0xF0) lo = 0x90;      /* overlong 4-byte */
            if (c == 0xF4) hi = 0x8F;      /* above U+10FFFF */
            if (c1 < lo || c1 > hi) return i;
            for (int k = 2; k < len; k++)
                if ((s[i + k] & 0xC0) != 0x80) return i;
        }
        i += (size_t)len;
    }
    return i;
}
