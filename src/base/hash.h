/*
 * hash.h — a 64-bit non-cryptographic hash for strings and bytes.
 *
 * FNV-1a (64-bit) followed by a final avalanche mix (the splitmix64
 * finaliser), so that the low bits used to index power-of-two hash tables
 * depend on every input byte. Deterministic across runs and platforms; not
 * for adversarial keys in security-sensitive tables.
 */
#ifndef LARDER_BASE_HASH_H
#define LARDER_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Hash of n bytes at data. */
uint64_t hash_bytes(const void *data, size_t n);

/* Hash of a NUL-terminated string (same as hash_bytes(s, strlen(s))). */
uint64_t hash_string(const char *s);

/* Combines a running hash h with another 64-bit value (order-dependent),
 * e.g. for hash chains over token prefixes. */
uint64_t hash_combine(uint64_t h, uint64_t v);

#endif
