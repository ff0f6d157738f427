/*
 * size_parse.c — parsing "1.5GiB"-style sizes (see size_parse.h).
 *
 * Key idea: parse the integer part exactly into a uint64 with overflow
 * checks, the fraction as digits scaled by the unit with integer arithmetic
 * (no floating point, so "1.5G" is exact), then multiply by the unit checking
 * for overflow.
 */
#include "base/size_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Most fraction digits considered (more are ignored: below a byte at 1 TiB). */
#define SIZE_PARSE_MAX_FRACTION_DIGITS 18

static const struct { const char *suffix; uint64_t mult; } SIZE_UNITS[] = {
    {"", 1}, {"b", 1},
    {"k", 1ULL << 10}, {"kb", 1ULL << 10}, {"kib", 1ULL << 10},
    {"m", 1ULL << 20}, {"mb", 1ULL << 20}, {"mib", 1ULL << 20},
    {"g", 1ULL << 30}, {"gb", 1ULL << 30}, {"gib", 1ULL << 30},
    {"t", 1ULL << 40}, {"tb", 1ULL << 40}, {"tib", 1ULL << 40},
};

int size_parse(const char *text, uint64_t *out_bytes, larder_error *err) {
    if (text == NULL || *text == '\0') return error_set(err, ERR_INVALID, "empty size");
    const char *p = text;
    uint64_t whole = 0;
    int n_digits = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10)
            return error_set(err, ERR_INVALID, "size '%s' is too large", text);
        whole = whole * 10 + d;
        n_digits++;
        p++;
    }
    /* Fraction digits, kept as numerator / 10^k. */
    uint64_t frac = 0, frac_den = 1;
    int n_frac = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n_frac < SIZE_PARSE_MAX_FRACTION_DIGITS) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_den *= 10;
            }
            n_frac++;
            p++;
        }
        if (n_frac == 0)
            return error_set(err, ERR_INVALID, "size '%s': expected digits after '.'", text);
    }
    if (n_digits == 0 && n_frac == 0)
        return error_set(err, ERR_INVALID, "size '%s' does not start with a number", text);
    uint64_t mult = 0;
    for (size_t i = 0; i < sizeof SIZE_UNITS / sizeof SIZE_UNITS[0]; i++)
        if (strcasecmp(p, SIZE_UNITS[i].suffix) == 0) { mult = SIZE_UNITS[i].mult; break; }
    if (mult == 0)
        return error_set(err, ERR_INVALID,
                         "size '%s': unknown unit '%s' (use K, M, G, T, KiB, MiB, GiB, TiB: 1024-based)",
                         text, p);
    if (whole > UINT64_MAX / mult) return error_set(err, ERR_INVALID, "size '%s' is too large", text);
    uint64_t bytes = whole * mult;
    if (frac != 0) {
        if (mult == 1) return error_set(err, ERR_INVALID, "size '%s': a fraction of a byte", text);
        /* frac/frac_den * mult, with mult <= 2^40 and frac < 10^18: split to avoid overflow. */
        uint64_t q = mult / frac_den, r = mult % frac_den;
        unsigned __int128 extra = (unsigned __int128)frac * q +
                                  (unsigned __int128)frac * r / frac_den;
        if (extra > UINT64_MAX - bytes) return error_set(err, ERR_INVALID, "size '%s' is too large", text);
        bytes += (uint64_t)extra;
    }
    if (bytes > SIZE_MAX) return error_set(err, ERR_INVALID, "size '%s' is too large", text);
    *out_bytes = bytes;
    return 0;
}

char *size_format(uint64_t bytes, char *buf, size_t buf_size) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) { v /= 1024.0; u++; }
    if (u == 0) snprintf(buf, buf_size, "%llu B", (unsigned long long)bytes);
    else snprintf(buf, buf_size, "%.2f %s", v, units[u]);
    return buf;
}
