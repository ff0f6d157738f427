/*
 * tokenizer_index.c — the vocabulary's two hash indexes, built once at load
 * and read by every encode: token text → id, and BPE merge (left id, right
 * id) → rank. Open addressing with linear probing, tables at least twice the
 * entries, so a probe ends at an empty slot.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t table_size_for(uint32_t n) {
    uint32_t size = 16;
    while (size < n * 2u) size <<= 1;
    return size;
}

static uint64_t merge_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

int32_t tok_find(const tokenizer *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->text_mask;
    for (;;) {
        int32_t id = t->text_slots[i];
        if (id < 0) return TOKEN_NONE;
        if (t->text_len[id] == n && !memcmp(t->text_blob + t->text_off[id], s, n)) return id;
        i = (i + 1) & t->text_mask;
    }
}

int32_t tok_merge_rank(const tokenizer *t, int32_t left, int32_t right) {
    if (!t->merge_keys || left < 0 || right < 0) return -1;
    uint64_t key = merge_key(left, right);
    uint32_t i = (uint32_t)hash_u64(key) & t->merge_mask;
    for (;;) {
        if (t->merge_keys[i] == UINT64_MAX) return -1;
        if (t->merge_keys[i] == key) return t->merge_ranks[i];
        i = (i + 1) & t->merge_mask;
    }
}

int tok_index_texts(tokenizer *t) {
    uint32_t n = t->n_tokens, size = table_size_for(n);
    t->text_mask = size - 1;
    t->text_slots = malloc(size * sizeof *t->text_slots);
    if (!t->text_slots) return -1;
    memset(t->text_slots, 0xff, size * sizeof *t->text_slots);
    for (uint32_t id = 0; id < n; id++) {
        const char *s = t->text_blob + t->text_off[id];
        uint32_t i = (uint32_t)hash_bytes(s, t->text_len[id]) & t->text_mask;
        for (;;) {
            int32_t other = t->text_slots[i];
            if (other < 0) { t->text_slots[i] = (int32_t)id; break; }
            if (t->text_len[other] == t->text_len[id] && !memcmp(t->text_blob + t->text_off[other], s, t->text_len[id])) {
                t->text_slots[i] = (int32_t)id; /* a later duplicate text wins, as in the reference's map */
                break;
            }
            i = (i + 1) & t->text_mask;
        }
    }
    return 0;
}

int tok_index_merges(tokenizer *t, const tokenizer_source *src) {
    uint32_t msize = table_size_for(src->n_merges);
    t->merge_mask = msize - 1;
    t->merge_keys = malloc(msize * sizeof *t->merge_keys);
    t->merge_ranks = malloc(msize * sizeof *t->merge_ranks);
    if (!t->merge_keys || !t->merge_ranks) return -1;
    memset(t->merge_keys, 0xff, msize * sizeof *t->merge_keys);
    for (uint32_t r = 0; r < src->n_merges; r++) {
        size_t len = 0;
        const char *s = src->merge_text(src->ctx, r, &len);
        if (!s || len < 2) continue;
        const char *sp = memchr(s + 1, ' ', len - 1);
        if (!sp) continue;
        int32_t l = tok_find(t, s, (size_t)(sp - s));
        int32_t rr = tok_find(t, sp + 1, len - (size_t)(sp - s) - 1);
        if (l < 0 || rr < 0) continue; /* a merge of non-tokens can never apply */
        uint64_t key = merge_key(l, rr);
        uint32_t i = (uint32_t)hash_u64(key) & t->merge_mask;
        while (t->merge_keys[i] != UINT64_MAX && t->merge_keys[i] != key) i = (i + 1) & t->merge_mask;
        if (t->merge_keys[i] == UINT64_MAX) { /* the first rank of a pair wins */
            t->merge_keys[i] = key;
            t->merge_ranks[i] = (int32_t)r;
        }
    }
    return 0;
}
