/*
 * jinja_lexer.h — template source to tokens, with Jinja2's whitespace control
 * as Hugging Face configures it (trim_blocks, lstrip_blocks, `-`/`+`
 * modifiers, one trailing newline dropped, \r\n and \r read as \n).
 */
#ifndef LARDER_JINJA_LEXER_H
#define LARDER_JINJA_LEXER_H

#include <stddef.h>

#include "jinja/jinja_internal.h"

typedef enum jtok_type {
    JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
} jtok_type;

typedef struct jtok {
    jtok_type type;
    int line;
    const char *s;   /* DATA/NAME/OP text, STRING decoded value (arena, NUL-terminated) */
    size_t n;
    int64_t i;       /* INT */
    double f;        /* FLOAT */
} jtok;

/* Tokenizes src into *toks (arena-allocated, ending with JT_EOF). -1 with err. */
int jinja_lex(jarena *a, const char *src, size_t len, jtok **toks, size_t *n_toks, larder_error *err);

#endif
