/*
 * utf8.h — UTF-8 validation (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF). Used on every text that comes from outside before it is parsed.
 */
#ifndef LARDER_BASE_UTF8_H
#define LARDER_BASE_UTF8_H

#include <stddef.h>

/* Length of the longest valid UTF-8 prefix of s[0, n): n when all of it is valid. */
size_t utf8_valid_prefix(const char *s, size_t n);

/* Length in bytes of the sequence that a lead byte starts (1-4), 0 for a byte that
 * cannot start one. */
int utf8_sequence_bytes(unsigned char lead);

#endif
