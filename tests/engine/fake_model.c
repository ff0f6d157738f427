/*
 * fake_model.c — a forward function (model/forward.h's forward_fn) without
 * a real network, for the engine's tests, over a REAL kv_pool (f32, 1
 * layer, 1 KV head of 128) on the test backend: reference counts, budget,
 * copy-on-write and page memory are the production ones. Its "K/V" is what
 * a real model would store too, in spirit: the K row of a token's slot holds
 * the token id, the V row its position (element 0 of each). Its logits for a
 * position are computed by reading the sequence's tokens back FROM THE PAGES
 * (a hash of the positions it sees): if the engine shared, dropped or
 * overwrote a page wrongly, the next token changes. It also fails the
 * forward pass when asked to write a page that someone else references
 * (copy-on-write violated) or a position its page table does not cover.
 * With a rotating window the hash covers only the positions the token sees,
 * and reading a dropped page fails.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_model.h"
#include "kv/kv_pool.h"
#include "kv/kv_seq.h"
#include "tensor/dtype.h"
#include "test_backend.h"

enum { FAKE_HEAD_DIM = 128 };

struct fake_model {
    backend *be;
    kv_pool *pool;
    int32_t page_tokens;
    float *page;                    /* (page floats) one page, read back to the host */
    int64_t forward_calls, forward_tokens;
};

int64_t fake_model_forward_tokens(const fake_model *f) { return f->forward_tokens; }

uint64_t fake_model_hash_step(uint64_t h, int32_t token, int32_t pos) {
    h ^= (uint64_t)(uint32_t)token * 0x9E3779B97F4A7C15ULL + (uint64_t)pos;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 31);
}

int32_t fake_model_next_token(uint64_t h, int32_t n_vocab) { return (int32_t)(h % (uint64_t)n_vocab); }

fake_model *fake_model_create(size_t kv_bytes, int32_t page_tokens, larder_error *err) {
    fake_model *f = calloc(1, sizeof *f);
    if (!f) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    f->be = test_backend_create(1);
    f->page_tokens = page_tokens;
    kv_pool_config c = {.n_layers = 1, .n_kv_heads = 1, .head_dim = FAKE_HEAD_DIM, .page_tokens = page_tokens,
                        .kv_type = TYPE_F32, .budget_bytes = kv_bytes, .low_water_pages = -1};
    f->pool = kv_pool_create(&c, f->be, err);
    f->page = f->pool ? malloc(kv_pool_page_bytes(f->pool)) : NULL;
    if (!f->page) {
        if (f->pool) error_set(err, ERR_NOMEM, "out of memory");
        fake_model_free(f);
        return NULL;
    }
    return f;
}

void fake_model_free(fake_model *f) {
    if (!f) return;
    kv_pool_free(f->pool);
    backend_free(f->be);
    free(f->page);
    free(f);
}

/* The K row (kv = 0) or V row (kv = 1) of slot i of the page in f->page:
 * [layer 0][K|V][head 0][token][128 floats]. */
static float *slot_row(fake_model *f, int kv, int32_t i) {
    return f->page + ((size_t)kv * (size_t)f->page_tokens + (size_t)i) * FAKE_HEAD_DIM;
}

static int forward(void *ctx, const forward_token *items, int32_t n_items, float *logits, larder_error *err) {
    fake_model *f = ctx;
    const int32_t P = f->page_tokens;
    backend_kv *mem = kv_pool_memory(f->pool);
    f->forward_calls++;
    f->forward_tokens += n_items;
    /* Write every item's token into its page first (as a real model writes K/V). */
    for (int32_t i = 0; i < n_items; i++) {
        const kv_seq *s = items[i].kv.seq;
        int32_t pos = items[i].kv.pos, pi = pos / P;
        if (pi >= s->n_pages || s->pages[pi] == KV_SEQ_NO_PAGE)
            return error_set(err, ERR_INVALID, "fake: position %d has no page", pos);
        uint32_t page = s->pages[pi];
        if (kv_pool_refcount(f->pool, page) != 1)
            return error_set(err, ERR_INVALID, "fake: write into page %u shared by %d holders", page,
                             kv_pool_refcount(f->pool, page));
        if (backend_kv_page_read(f->be, mem, page, f->page, err)) return -1;
        slot_row(f, 0, pos % P)[0] = (float)items[i].token;
        slot_row(f, 1, pos % P)[0] = (float)pos;
        if (backend_kv_page_write(f->be, mem, page, f->page, err)) return -1;
    }
    int32_t row = 0;
    for (int32_t i = 0; i < n_items; i++) {
        const forward_token *it = &items[i];
        if (!it->want_logits) continue;
        const kv_seq *s = it->kv.seq;
        uint64_t h = 0x12345;
        int32_t loaded = -1; /* page index whose bytes are in f->page */
        for (int32_t p = 0; p <= it->kv.pos; p++) {
            if (s->window_tokens > 0 && p >= s->keep_tokens && p <= it->kv.pos - s->window_tokens) continue;
            uint32_t page = s->pages[p / P];
            if (page == KV_SEQ_NO_PAGE) return error_set(err, ERR_INVALID, "fake: position %d reads a dropped page", p);
            if (p / P != loaded) {
                if (backend_kv_page_read(f->be, mem, page, f->page, err)) return -1;
                loaded = p / P;
            }
            if (slot_row(f, 1, p % P)[0] != (float)p)
                return error_set(err, ERR_INVALID, "fake: position %d reads a stale slot", p);
            h = fake_model_hash_step(h, (int32_t)slot_row(f, 0, p % P)[0], p);
        }
        float *out = logits + (size_t)row++ * FAKE_MODEL_VOCAB;
        for (int32_t v = 0; v < FAKE_MODEL_VOCAB; v++) out[v] = 0.0f;
        out[fake_model_next_token(h, FAKE_MODEL_VOCAB)] = 10.0f;
    }
    return 0;
}

void fake_model_engine_config(fake_model *f, engine_config *c) {
    c->pool = f->pool;
    c->forward = forward;
    c->forward_ctx = f;
    c->n_vocab = FAKE_MODEL_VOCAB;
}
