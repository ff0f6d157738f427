/*
 * token_list.c — the growable list of token ids that encoding appends to
 * (token_list in tokenizer.h; the merge algorithms and the caller share it).
 */
#include <stdlib.h>

#include "tokenizer/tokenizer.h"

int token_list_push(token_list *list, int32_t id, larder_error *err) {
    if (list->n == list->cap) {
        size_t nc = list->cap ? list->cap * 2 : 64;
        int32_t *ni = realloc(list->ids, nc * sizeof *ni);
        if (!ni) return error_set(err, ERR_NOMEM, "out of memory (token list of %zu)", nc);
        list->ids = ni;
        list->cap = nc;
    }
    list->ids[list->n++] = id;
    return 0;
}

void token_list_free(token_list *list) {
    free(list->ids);
    list->ids = NULL;
    list->n = list->cap = 0;
}
