/*
 * engine_kv_seq.c — a sequence's page table (engine_kv_seq in
 * engine_model.h): a growable array of page ids, whatever model runs them.
 */
#include <stdlib.h>

#include "engine/engine_model.h"

int engine_kv_seq_push_page(engine_kv_seq *s, uint32_t page) {
    if (s->n_pages == s->cap_pages) {
        int32_t cap = s->cap_pages ? s->cap_pages * 2 : 16;
        uint32_t *p = realloc(s->pages, (size_t)cap * sizeof *p);
        if (!p) return -1;
        s->pages = p;
        s->cap_pages = cap;
    }
    s->pages[s->n_pages++] = page;
    return 0;
}

void engine_kv_seq_free(engine_kv_seq *s) {
    free(s->pages);
    s->pages = NULL;
    s->n_pages = s->cap_pages = 0;
}
