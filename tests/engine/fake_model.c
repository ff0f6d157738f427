/*
 * fake_model.c — an engine_model (src/engine/engine_model.h) without a real
 * network, for scheduler tests. Its pool is real page bookkeeping: a byte
 * budget, reference counts, a free list. Its "KV" is what a real model would
 * store too, in spirit: each page slot holds the token and position written
 * there. Its logits for a position are computed by reading the sequence's
 * tokens back FROM THE PAGES (a hash of positions 0..pos): if the engine
 * shared, dropped or overwrote a page wrongly, the next token changes. It
 * also fails the forward pass when asked to write a page that someone else
 * references (copy-on-write violated) or a position its page table does not
 * cover. With a rotating window, the hash covers only the positions the item
 * sees, and reading a dropped page fails.
 */
#include "engine/engine_model.h"

#include <stdlib.h>
#include <string.h>

#include "fake_model.h"

struct engine_model {
    int32_t page_tokens, n_vocab;
    size_t page_bytes;              /* pretend bytes per page (for budgets) */
    int64_t n_pages;
    int32_t *refs;                  /* (n_pages) */
    int32_t *slot_token;            /* (n_pages, page_tokens) */
    int32_t *slot_pos;              /* (n_pages, page_tokens) */
    uint32_t *free_list;            /* (n_pages) stack */
    int64_t n_free;
    int64_t forward_calls, forward_tokens;
};

int64_t fake_model_forward_tokens(const engine_model *em) { return em->forward_tokens; }

uint64_t fake_model_hash_step(uint64_t h, int32_t token, int32_t pos) {
    h ^= (uint64_t)(uint32_t)token * 0x9E3779B97F4A7C15ULL + (uint64_t)pos;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 31);
}

int32_t fake_model_next_token(uint64_t h, int32_t n_vocab) { return (int32_t)(h % (uint64_t)n_vocab); }

engine_model *engine_model_create(const engine_model_config *cfg, larder_error *err) {
    engine_model *em = calloc(1, sizeof *em);
    if (!em) return NULL;
    em->page_tokens = cfg->page_tokens;
    em->n_vocab = FAKE_MODEL_VOCAB;
    em->page_bytes = (size_t)cfg->page_tokens * FAKE_MODEL_BYTES_PER_TOKEN;
    em->n_pages = (int64_t)(cfg->kv_memory_bytes / em->page_bytes);
    if (em->n_pages < 1) {
        free(em);
        error_set(err, ERR_INVALID, "--kv-memory holds no page");
        return NULL;
    }
    em->refs = calloc((size_t)em->n_pages, sizeof *em->refs);
    em->slot_token = calloc((size_t)em->n_pages * (size_t)cfg->page_tokens, sizeof *em->slot_token);
    em->slot_pos = calloc((size_t)em->n_pages * (size_t)cfg->page_tokens, sizeof *em->slot_pos);
    em->free_list = malloc((size_t)em->n_pages * sizeof *em->free_list);
    if (!em->refs || !em->slot_token || !em->slot_pos || !em->free_list) {
        engine_model_free(em);
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < em->n_pages; i++) em->free_list[i] = (uint32_t)(em->n_pages - 1 - i);
    em->n_free = em->n_pages;
    return em;
}

void engine_model_free(engine_model *em) {
    if (!em) return;
    free(em->refs);
    free(em->slot_token);
    free(em->slot_pos);
    free(em->free_list);
    free(em);
}

int32_t engine_model_n_vocab(const engine_model *em) { return em->n_vocab; }
int32_t engine_model_n_ctx_train(const engine_model *em) { (void)em; return 4096; }
size_t engine_kv_page_bytes(const engine_model *em) { return em->page_bytes; }
int64_t engine_kv_pages_total(const engine_model *em) { return em->n_pages; }
int64_t engine_kv_pages_free(const engine_model *em) { return em->n_free; }

int engine_kv_page_alloc(engine_model *em, uint32_t *page) {
    if (em->n_free == 0) return -1;
    *page = em->free_list[--em->n_free];
    em->refs[*page] = 1;
    /* Poison: a page must be written before it is read. */
    for (int32_t i = 0; i < em->page_tokens; i++) em->slot_pos[(size_t)*page * em->page_tokens + i] = -1;
    return 0;
}

void engine_kv_page_ref(engine_model *em, uint32_t page) { em->refs[page]++; }

void engine_kv_page_unref(engine_model *em, uint32_t page) {
    if (em->refs[page] <= 0) abort(); /* a double free is a bug the test must see */
    if (--em->refs[page] == 0) em->free_list[em->n_free++] = page;
}

int engine_kv_page_refcount(engine_model *em, uint32_t page) { return em->refs[page]; }
void engine_kv_page_copy(engine_model *em, uint32_t dst, uint32_t src) {
    size_t P = (size_t)em->page_tokens;
    memcpy(em->slot_token + dst * P, em->slot_token + src * P, P * sizeof *em->slot_token);
    memcpy(em->slot_pos + dst * P, em->slot_pos + src * P, P * sizeof *em->slot_pos);
}

int engine_model_forward(engine_model *em, const engine_batch_item *items, int32_t n_items, float *logits,
                         larder_error *err) {
    int32_t P = em->page_tokens;
    em->forward_calls++;
    em->forward_tokens += n_items;
    /* Write every item's token into its page first (as a real model writes K/V). */
    for (int32_t i = 0; i < n_items; i++) {
        const engine_batch_item *it = &items[i];
        int32_t pi = it->pos / P;
        if (pi >= it->kv->n_pages) return error_set(err, ERR_INVALID, "fake: position %d has no page", it->pos);
        uint32_t page = it->kv->pages[pi];
        if (em->refs[page] != 1)
            return error_set(err, ERR_INVALID, "fake: write into page %u shared by %d holders", page, em->refs[page]);
        em->slot_token[(size_t)page * P + it->pos % P] = it->token;
        em->slot_pos[(size_t)page * P + it->pos % P] = it->pos;
    }
    int32_t row = 0;
    for (int32_t i = 0; i < n_items; i++) {
        const engine_batch_item *it = &items[i];
        if (!it->want_logits) continue;
        uint64_t h = 0x12345;
        for (int32_t p = 0; p <= it->pos; p++) {
            if (it->window_tokens > 0 && p >= it->keep_tokens && p <= it->pos - it->window_tokens) continue;
            uint32_t page = it->kv->pages[p / P];
            if (page == ENGINE_KV_NO_PAGE) return error_set(err, ERR_INVALID, "fake: position %d reads a dropped page", p);
            size_t slot = (size_t)page * P + p % P;
            if (em->slot_pos[slot] != p) return error_set(err, ERR_INVALID, "fake: position %d reads a stale slot", p);
            h = fake_model_hash_step(h, em->slot_token[slot], p);
        }
        float *out = logits + (size_t)row++ * em->n_vocab;
        for (int32_t v = 0; v < em->n_vocab; v++) out[v] = 0.0f;
        out[fake_model_next_token(h, em->n_vocab)] = 10.0f;
    }
    return 0;
}
