/*
 * cmd_detokenize.c — `larder detokenize --model FILE [--special] IDS`: prints
 * the text of comma-separated token ids (as llama.cpp's detokenize with
 * remove_special=false; control tokens only with --special). An id out of
 * range is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *o) {
    fprintf(o, "usage: larder detokenize --model FILE [--special] IDS   (IDS: comma-separated, e.g. 1,15043,3186)\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *idstr = NULL;
    bool special = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--special")) special = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (!idstr) idstr = argv[i];
        else { fprintf(stderr, "larder detokenize: unexpected argument '%s'\n", argv[i]); return 1; }
    }
    if (!model || !idstr) { usage(stderr); return 1; }
    larder_error err = {0};
    token_list ids = {0};
    if (cli_parse_ids(idstr, &ids, &err)) {
        fprintf(stderr, "larder detokenize: %s\n", err.message);
        return 1;
    }
    tokenizer *t = tokenizer_load_file(model, &err);
    if (!t) { fprintf(stderr, "larder detokenize: %s\n", err.message); token_list_free(&ids); return 1; }
    size_t len;
    char *text = tokenizer_decode(t, ids.ids, ids.n, special, &len, &err);
    int rc = 0;
    if (!text) { fprintf(stderr, "larder detokenize: %s\n", err.message); rc = 1; }
    else { fwrite(text, 1, len, stdout); putchar('\n'); }
    free(text);
    token_list_free(&ids);
    tokenizer_free(t);
    return rc;
}
