/* Where the shared vocabularies live: $SHARED/vocab, else ../shared/vocab. */
#ifndef LARDER_TESTS_TOKENIZER_VOCAB_PATH_H
#define LARDER_TESTS_TOKENIZER_VOCAB_PATH_H
#include <stdio.h>
#include <stdlib.h>

static inline const char *vocab_path(const char *name, char *buf, size_t cap) {
    const char *shared = getenv("SHARED");
    snprintf(buf, cap, "%s/vocab/ggml-vocab-%s.gguf", shared && *shared ? shared : "../shared", name);
    return buf;
}
#endif
