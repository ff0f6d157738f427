/*
 * hash.c — FNV-1a 64 with a splitmix64 finaliser (see hash.h).
 */
#include "base/hash.h"

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL

/* splitmix64 finaliser: xor-shift-multiply rounds that spread every bit. */
static uint64_t hash_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];        /* FNV-1a: xor the byte in, then multiply */
        h *= FNV64_PRIME;
    }
    return hash_mix(h ^ (uint64_t)n);
}

uint64_t hash_string(const char *s) {
    uint64_t h = FNV64_OFFSET;
    size_t n = 0;
    for (; s[n]; n++) {
        h ^= (unsigned char)s[n];
        h *= FNV64_PRIME;
    }
    return hash_mix(h ^ (uint64_t)n);
}

uint64_t hash_combine(uint64_t h, uint64_t v) {
    return hash_mix(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}
