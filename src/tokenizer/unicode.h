/*
 * unicode.h — the UTF-8 and byte-level facts the tokenizers share.
 *
 * Decoding follows the reference tokenizer (llama.cpp) exactly, because token
 * ids depend on it: a lead byte announces the sequence length, continuation
 * bytes are checked for the 10xxxxxx pattern, and anything that fails is ONE
 * replacement character U+FFFD for the ONE offending byte (decoding resumes at
 * the next byte). Overlong forms and surrogates are accepted as decoded; code
 * points above U+10FFFF (from F5..F7 lead bytes) become U+FFFD on re-encoding.
 *
 * The GPT-2 byte-level map: each of the 256 byte values is shown as one
 * printable code point (bytes ! .. ~, ¡ .. ¬, ® .. ÿ stand for themselves; the
 * other 68 bytes, in increasing order, become U+0100, U+0101, ...). Byte-level
 * BPE vocabularies spell every token in these code points.
 */
#ifndef LARDER_TOKENIZER_UNICODE_H
#define LARDER_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define UNICODE_REPLACEMENT 0xFFFDu

/* Length in bytes that a lead byte announces (1 for ASCII and for stray
 * continuation bytes; 2, 3 or 4 by the high bits). */
size_t unicode_len_utf8(uint8_t lead);

/* Decodes one code point at s[*pos] (pos < len), reference-style: on an
 * invalid sequence returns U+FFFD and advances by one byte. */
uint32_t unicode_decode_utf8(const char *s, size_t len, size_t *pos);

/* Encodes cp into out (4 bytes room); code points above U+10FFFF are written
 * as U+FFFD. Returns the byte count (1..4). */
size_t unicode_encode_utf8(uint32_t cp, char out[4]);

/* GPT-2 byte-level map: the code point standing for a byte, and back
 * (returns -1 when cp stands for no byte). */
uint32_t unicode_byte_to_cp(uint8_t byte);
int unicode_cp_to_byte(uint32_t cp);

/* Length of the longest prefix of s[0..len) that is complete, valid UTF-8
 * (strict: no overlongs, surrogates or code points past U+10FFFF), treating
 * an invalid sequence as complete (it will never become valid). Used by the
 * streaming detokenizer to hold back only a truly unfinished character. */
size_t unicode_complete_prefix(const char *s, size_t len);

#endif
