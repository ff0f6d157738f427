/*
 * size_parse.h — byte sizes from the command line: "512", "32M", "1GiB", "1.5G".
 *
 * Suffixes (case-insensitive), all powers of 1024 as llama.cpp users expect:
 *   (none) or B    bytes
 *   K, KB, KiB     1024
 *   M, MB, MiB     1024^2
 *   G, GB, GiB     1024^3
 *   T, TB, TiB     1024^4
 * A decimal fraction is allowed ("1.5G" = 1610612736); the result is rounded
 * down to whole bytes. Rejected: empty text, signs, garbage, a missing
 * number, a fraction of plain bytes that is not whole, values above SIZE_MAX.
 */
#ifndef LARDER_BASE_SIZE_PARSE_H
#define LARDER_BASE_SIZE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Parses text into *out_bytes. Returns 0, or -1 with err (ERR_INVALID) naming
 * the problem. */
int size_parse(const char *text, uint64_t *out_bytes, larder_error *err);

/* Formats bytes for humans into buf ("1.50 GiB", "512 B"); returns buf. */
char *size_format(uint64_t bytes, char *buf, size_t buf_size);

#endif
