/*
 * cmd_tokenize.c — `larder tokenize --model FILE [--special] [--bos] (TEXT | -)`:
 * prints the token ids of TEXT (or of all of stdin with `-`) as a JSON array.
 * By default no BOS/EOS and no special-token parsing, like llama.cpp's
 * tokenize(text, add_special=false, parse_special=false).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void usage(FILE *o) {
    fprintf(o, "usage: larder tokenize --model FILE [--special] [--bos] (TEXT | -)\n"
               "  --special  recognise control tokens written in the text (e.g. <|im_start|>)\n"
               "  --bos      add BOS/EOS as the model's add_bos_token/add_eos_token say\n"
               "  -          read the text from stdin\n");
}

/* Reads all of stdin; NULL on failure. */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) { free(buf); return NULL; }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    int flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--special")) flags |= TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--bos")) flags |= TOKENIZE_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (!text && (strncmp(argv[i], "--", 2) != 0 || !strcmp(argv[i], "-"))) text = argv[i];
        else { fprintf(stderr, "larder tokenize: unexpected argument '%s'\n", argv[i]); usage(stderr); return 1; }
    }
    if (!model || !text) { usage(stderr); return 1; }
    larder_error err = {0};
    tokenizer *t = tokenizer_load_file(model, &err);
    if (!t) { fprintf(stderr, "larder tokenize: %s\n", err.message); return 1; }
    char *owned = NULL;
    size_t len;
    if (!strcmp(text, "-")) {
        owned = read_stdin(&len);
        if (!owned) { fprintf(stderr, "larder tokenize: cannot read stdin\n"); tokenizer_free(t); return 1; }
        text = owned;
    } else {
        len = strlen(text);
    }
    token_list ids = {0};
    int rc = 0;
    if (tokenizer_encode(t, text, len, flags, &ids, &err)) {
        fprintf(stderr, "larder tokenize: %s\n", err.message);
        rc = 1;
    } else {
        putchar('[');
        for (size_t i = 0; i < ids.n; i++) printf(i ? ",%d" : "%d", ids.ids[i]);
        puts("]");
    }
    token_list_free(&ids);
    free(owned);
    tokenizer_free(t);
    return rc;
}
