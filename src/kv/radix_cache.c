/*
 * radix_cache.c — radix tree over token ids with page-aligned edges (see
 * radix_cache.h for the contract).
 *
 * Layout: every node but the root holds a run of n_tokens tokens (a multiple
 * of page_tokens, > 0) and one page id per page_tokens tokens of that run.
 * A child is found by its first page of tokens: siblings never share one.
 * A node may also hold a tail: the tokens of one partially filled page after
 * its run and that page's id (a conversation that ended mid-page).
 * All nodes also sit in one dense array (rc->all) so eviction can scan for the
 * least recently used unpinned leaf without walking the tree; a node knows its
 * index there, so removal is O(1) (swap with the last).
 *
 * Eviction is by whole leaves: with pages shared by reference a leaf is one
 * conversation's private tail, and the prefix it shares with others stays in
 * an interior node until every conversation under it is gone.
 */
#include "kv/radix_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct radix_node {
    radix_node *parent;      /* NULL for the root */
    radix_node **children;   /* n_children pointers, capacity cap_children */
    int32_t n_children, cap_children;
    int32_t *tokens;         /* (n_tokens) the run this node covers */
    uint32_t *pages;         /* (n_tokens / page_tokens) page ids of the run */
    int32_t n_tokens;
    int32_t n_tail;          /* 0, or 1..P-1 tokens of a partial page after the run: */
    int32_t *tail_tokens;    /* (page_tokens) its tokens, valid [0, n_tail) */
    uint32_t tail_page;      /* the page holding their K/V (more slots may be filled) */
    int32_t pin_count;       /* pins through this node (its own and its descendants') */
    uint64_t last_used;      /* rc->now when last matched or inserted */
    int64_t all_index;       /* position in rc->all; -1 for the root */
};

struct radix_cache {
    int32_t page_tokens;
    radix_cache_hooks hooks;
    radix_node root;
    radix_node **all;        /* every non-root node, dense */
    int64_t n_all, cap_all;
    uint64_t now;
    int64_t evicted_leaves, evicted_pages;
    int64_t lookups, hit_tokens, lookup_tokens;
};

/* ---- node helpers */

static int all_push(radix_cache *rc, radix_node *n) {
    if (rc->n_all == rc->cap_all) {
        int64_t cap = rc->cap_all ? rc->cap_all * 2 : 64;
        radix_node **a = realloc(rc->all, (size_t)cap * sizeof *a);
        if (!a) return -1;
        rc->all = a;
        rc->cap_all = cap;
    }
    n->all_index = rc->n_all;
    rc->all[rc->n_all++] = n;
    return 0;
}

static void all_remove(radix_cache *rc, radix_node *n) {
    int64_t i = n->all_index;
    radix_node *last = rc->all[--rc->n_all];
    rc->all[i] = last;
    last->all_index = i;
    n->all_index = -1;
}

static int child_add(radix_node *parent, radix_node *child) {
    if (parent->n_children == parent->cap_children) {
        int32_t cap = parent->cap_children ? parent->cap_children * 2 : 4;
        radix_node **c = realloc(parent->children, (size_t)cap * sizeof *c);
        if (!c) return -1;
        parent->children = c;
        parent->cap_children = cap;
    }
    parent->children[parent->n_children++] = child;
    child->parent = parent;
    return 0;
}

static void child_remove(radix_node *parent, radix_node *child) {
    for (int32_t i = 0; i < parent->n_children; i++) {
        if (parent->children[i] == child) {
            parent->children[i] = parent->children[--parent->n_children];
            return;
        }
    }
}

/* The child of node whose run starts with the page `page_toks`, or NULL. */
static radix_node *child_find(const radix_cache *rc, const radix_node *node, const int32_t *page_toks) {
    size_t page_bytes = (size_t)rc->page_tokens * sizeof(int32_t);
    for (int32_t i = 0; i < node->n_children; i++) {
        radix_node *c = node->children[i];
        if (c->tokens[0] == page_toks[0] && memcmp(c->tokens, page_toks, page_bytes) == 0) return c;
    }
    return NULL;
}

/* Whole pages shared by the node's run and toks[0, n_pages pages). */
static int32_t pages_in_common(const radix_cache *rc, const radix_node *node, const int32_t *toks, int32_t n_pages) {
    int32_t P = rc->page_tokens, node_pages = node->n_tokens / P;
    int32_t k = 0;
    while (k < node_pages && k < n_pages &&
           memcmp(node->tokens + (size_t)k * P, toks + (size_t)k * P, (size_t)P * sizeof(int32_t)) == 0)
        k++;
    return k;
}

static void node_free(radix_node *n) {
    free(n->tail_tokens);
    free(n->children);
    free(n->tokens);
    free(n->pages);
    free(n);
}

static radix_node *node_new(radix_cache *rc, const int32_t *tokens, const uint32_t *pages, int32_t n_tokens) {
    radix_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    int32_t n_pages = n_tokens / rc->page_tokens;
    n->tokens = malloc((size_t)n_tokens * sizeof *n->tokens);
    n->pages = malloc((size_t)n_pages * sizeof *n->pages);
    if (!n->tokens || !n->pages || all_push(rc, n) != 0) {
        node_free(n);
        return NULL;
    }
    memcpy(n->tokens, tokens, (size_t)n_tokens * sizeof *n->tokens);
    memcpy(n->pages, pages, (size_t)n_pages * sizeof *n->pages);
    n->n_tokens = n_tokens;
    n->last_used = rc->now;
    return n;
}

/*
 * Splits child after its first k pages: a new node `upper` takes child's
 * place under its parent and holds the first k pages; child keeps the rest
 * and hangs under upper. Page references move, none are taken or dropped.
 */
static radix_node *node_split(radix_cache *rc, radix_node *child, int32_t k) {
    int32_t P = rc->page_tokens, n_pages = child->n_tokens / P;
    int32_t rest_pages = n_pages - k;
    radix_node *upper = node_new(rc, child->tokens, child->pages, k * P);
    if (!upper) return NULL;
    int32_t *rest_tokens = malloc((size_t)rest_pages * P * sizeof *rest_tokens);
    uint32_t *rest_page_ids = malloc((size_t)rest_pages * sizeof *rest_page_ids);
    upper->children = malloc(4 * sizeof *upper->children);
    if (!rest_tokens || !rest_page_ids || !upper->children) {
        free(rest_tokens);
        free(rest_page_ids);
        all_remove(rc, upper);
        node_free(upper);
        return NULL;
    }
    upper->cap_children = 4;
    memcpy(rest_tokens, child->tokens + (size_t)k * P, (size_t)rest_pages * P * sizeof *rest_tokens);
    memcpy(rest_page_ids, child->pages + k, (size_t)rest_pages * sizeof *rest_page_ids);
    free(child->tokens);
    free(child->pages);
    child->tokens = rest_tokens;
    child->pages = rest_page_ids;
    child->n_tokens = rest_pages * P;

    radix_node *parent = child->parent;
    for (int32_t i = 0; i < parent->n_children; i++)
        if (parent->children[i] == child) parent->children[i] = upper;
    upper->parent = parent;
    upper->pin_count = child->pin_count; /* every pin through child passes upper */
    upper->last_used = child->last_used;
    upper->children[0] = child;
    upper->n_children = 1;
    child->parent = upper;
    return upper;
}

/* ---- public API */

radix_cache *radix_cache_create(int32_t page_tokens, radix_cache_hooks hooks, larder_error *err) {
    if (page_tokens < 1) {
        error_set(err, ERR_INVALID, "radix cache: page_tokens must be >= 1 (got %d)", page_tokens);
        return NULL;
    }
    if (!hooks.page_ref || !hooks.page_unref) {
        error_set(err, ERR_INVALID, "radix cache: page_ref and page_unref hooks are required");
        return NULL;
    }
    radix_cache *rc = calloc(1, sizeof *rc);
    if (!rc) {
        error_set(err, ERR_NOMEM, "radix cache: out of memory");
        return NULL;
    }
    rc->page_tokens = page_tokens;
    rc->hooks = hooks;
    rc->root.all_index = -1;
    return rc;
}

/* Drops one tree reference on a page; 1 if that freed it. */
static int64_t page_drop(radix_cache *rc, uint32_t page) {
    int64_t freed = !rc->hooks.page_refcount || rc->hooks.page_refcount(rc->hooks.ctx, page) == 1;
    rc->hooks.page_unref(rc->hooks.ctx, page);
    return freed;
}

static int64_t tail_drop(radix_cache *rc, radix_node *n) {
    if (!n->n_tail) return 0;
    n->n_tail = 0;
    return page_drop(rc, n->tail_page);
}

static int64_t node_drop_pages(radix_cache *rc, radix_node *n) {
    int64_t freed = tail_drop(rc, n);
    int32_t n_pages = n->n_tokens / rc->page_tokens;
    for (int32_t i = 0; i < n_pages; i++) freed += page_drop(rc, n->pages[i]);
    return freed;
}

/* Length of the common start of a[0, n) and b[0, n). */
static int32_t prefix_in_common(const int32_t *a, const int32_t *b, int32_t n) {
    int32_t t = 0;
    while (t < n && a[t] == b[t]) t++;
    return t;
}

/* Tokens at the start of toks[0, n) that n's tail holds. */
static int32_t tail_in_common(const radix_node *n, const int32_t *toks, int32_t n_toks) {
    int32_t t = 0;
    while (t < n->n_tail && t < n_toks && n->tail_tokens[t] == toks[t]) t++;
    return t;
}

void radix_cache_destroy(radix_cache *rc) {
    if (!rc) return;
    for (int64_t i = 0; i < rc->n_all; i++) {
        node_drop_pages(rc, rc->all[i]);
        node_free(rc->all[i]);
    }
    free(rc->all);
    free(rc->root.children);
    free(rc);
}

int32_t radix_cache_match(radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                          uint32_t *pages_out, int32_t max_pages, radix_node **node_out) {
    int32_t P = rc->page_tokens;
    int32_t total_pages = n_tokens > 0 ? n_tokens / P : 0;
    if (total_pages > max_pages) total_pages = max_pages;
    radix_node *node = &rc->root, *deepest = &rc->root;
    radix_node *inside = NULL; /* the node the match stopped inside of, at its page inside_k */
    int32_t matched = 0, inside_k = 0; /* pages */
    rc->lookups++;
    rc->lookup_tokens += n_tokens > 0 ? n_tokens : 0;
    while (matched < total_pages) {
        radix_node *c = child_find(rc, node, tokens + (size_t)matched * P);
        if (!c) break;
        int32_t k = pages_in_common(rc, c, tokens + (size_t)matched * P, total_pages - matched);
        memcpy(pages_out + matched, c->pages, (size_t)k * sizeof *pages_out);
        matched += k;
        c->last_used = rc->now;
        deepest = c;
        if (k < c->n_tokens / P) {
            inside = c, inside_k = k;
            break;
        }
        node = c;
    }
    /* Then one more page whose first tokens agree with the key, if any: the
     * page the match stopped inside of, or where it stopped at a node's end,
     * a child's first page or the node's tail. The caller copies it before
     * writing past those tokens. */
    int32_t tail = 0;
    if (matched < max_pages && n_tokens > matched * P) {
        const int32_t *rest = tokens + (size_t)matched * P;
        int32_t n_rest = n_tokens - matched * P < P ? n_tokens - matched * P : P;
        if (inside) {
            tail = prefix_in_common(inside->tokens + (size_t)inside_k * P, rest, n_rest);
            if (tail) pages_out[matched] = inside->pages[inside_k];
        } else {
            if (node->n_tail) {
                tail = tail_in_common(node, rest, n_rest);
                if (tail) pages_out[matched] = node->tail_page;
            }
            for (int32_t i = 0; i < node->n_children; i++) {
                int32_t t = prefix_in_common(node->children[i]->tokens, rest, n_rest);
                if (t > tail) tail = t, pages_out[matched] = node->children[i]->pages[0];
            }
        }
    }
    /* Ancestors of the deepest node were used too. */
    for (radix_node *a = deepest; a && a != &rc->root; a = a->parent) a->last_used = rc->now;
    rc->hit_tokens += (int64_t)matched * P + tail;
    if (node_out) *node_out = deepest;
    return matched * P + tail;
}

int32_t radix_cache_insert(radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                           const uint32_t *pages, bool tail_want, radix_node **node_out, larder_error *err) {
    int32_t P = rc->page_tokens;
    int32_t total_pages = n_tokens > 0 ? n_tokens / P : 0;
    radix_node *node = &rc->root;
    int32_t done = 0; /* pages */
    while (done < total_pages) {
        const int32_t *rest = tokens + (size_t)done * P;
        /* A whole page of this key follows node: a tail of node that it
         * extends is superseded (its tokens are in that page now). */
        if (node->n_tail && tail_in_common(node, rest, P) == node->n_tail) tail_drop(rc, node);
        radix_node *c = child_find(rc, node, rest);
        if (!c) {
            /* New leaf for the remaining pages; the tree references them. */
            int32_t n_new = total_pages - done;
            radix_node *leaf = node_new(rc, rest, pages + done, n_new * P);
            if (!leaf || child_add(node, leaf) != 0) {
                if (leaf) {
                    all_remove(rc, leaf);
                    node_free(leaf);
                }
                return error_set(err, ERR_NOMEM, "radix cache: out of memory inserting %d tokens", n_tokens);
            }
            for (int32_t i = 0; i < n_new; i++) rc->hooks.page_ref(rc->hooks.ctx, leaf->pages[i]);
            node = leaf;
            done = total_pages;
            break;
        }
        int32_t c_pages = c->n_tokens / P;
        int32_t k = pages_in_common(rc, c, rest, total_pages - done);
        c->last_used = rc->now;
        if (k < c_pages) {
            /* The key diverges (or ends) inside c: split so a node ends there. */
            radix_node *upper = node_split(rc, c, k);
            if (!upper) return error_set(err, ERR_NOMEM, "radix cache: out of memory splitting a node");
            c = upper;
        }
        done += k;
        node = c;
    }
    /* The partial last page, as node's tail (not the root's: a key shorter
     * than a page is not worth a page), unless a longer or equal one that
     * agrees is there; a disagreeing one is replaced (the newer is likelier
     * to be asked for again). */
    int32_t m = n_tokens - total_pages * P, tail = 0;
    if (m > 0 && node != &rc->root && tail_want) {
        const int32_t *rest = tokens + (size_t)total_pages * P;
        if (node->n_tail >= m && tail_in_common(node, rest, m) == m) {
            tail = m;
        } else if (node->tail_tokens || (node->tail_tokens = malloc((size_t)P * sizeof *node->tail_tokens))) {
            tail_drop(rc, node);
            memcpy(node->tail_tokens, rest, (size_t)m * sizeof *rest);
            node->tail_page = pages[total_pages];
            node->n_tail = tail = m;
            rc->hooks.page_ref(rc->hooks.ctx, node->tail_page);
        }
    }
    for (radix_node *a = node; a && a != &rc->root; a = a->parent) a->last_used = rc->now;
    if (node_out) *node_out = node;
    return total_pages * P + tail;
}

void radix_cache_pin(radix_cache *rc, radix_node *node) {
    for (radix_node *a = node; a && a != &rc->root; a = a->parent) a->pin_count++;
}

void radix_cache_unpin(radix_cache *rc, radix_node *node) {
    for (radix_node *a = node; a && a != &rc->root; a = a->parent)
        if (a->pin_count > 0) a->pin_count--;
}

/* Removes leaf n (unpinned, childless) and returns pages freed. */
static int64_t leaf_evict(radix_cache *rc, radix_node *n) {
    int64_t freed = node_drop_pages(rc, n);
    rc->evicted_leaves++;
    rc->evicted_pages += freed;
    child_remove(n->parent, n);
    all_remove(rc, n);
    node_free(n);
    return freed;
}

static radix_node *lru_unpinned_leaf(const radix_cache *rc) {
    radix_node *best = NULL;
    for (int64_t i = 0; i < rc->n_all; i++) {
        radix_node *n = rc->all[i];
        if (n->n_children || n->pin_count) continue;
        if (!best || n->last_used < best->last_used) best = n;
    }
    return best;
}

int64_t radix_cache_evict_one(radix_cache *rc) {
    radix_node *n = lru_unpinned_leaf(rc);
    return n ? leaf_evict(rc, n) : -1;
}

int64_t radix_cache_evict_pages(radix_cache *rc, int64_t pages_wanted) {
    int64_t freed = 0;
    while (freed < pages_wanted) {
        int64_t f = radix_cache_evict_one(rc);
        if (f < 0) break;
        freed += f;
    }
    return freed;
}

/* Leaves no running sequence pins: the cached conversations kept idle. */
static int64_t count_idle_leaves(const radix_cache *rc) {
    int64_t leaves = 0;
    for (int64_t i = 0; i < rc->n_all; i++) leaves += rc->all[i]->n_children == 0 && rc->all[i]->pin_count == 0;
    return leaves;
}

int64_t radix_cache_trim_leaves(radix_cache *rc, int64_t max_leaves) {
    int64_t freed = 0;
    if (max_leaves < 0) max_leaves = 0;
    while (count_idle_leaves(rc) > max_leaves) {
        radix_node *n = lru_unpinned_leaf(rc);
        if (!n) break;
        /* Evicting a leaf whose parent has no other child turns the parent into
         * a leaf: the count stays; the loop goes on (the conversation's whole
         * private chain goes). */
        freed += leaf_evict(rc, n);
    }
    return freed;
}

int64_t radix_cache_evict_older_than(radix_cache *rc, uint64_t older_than) {
    int64_t freed = 0;
    for (;;) {
        radix_node *n = lru_unpinned_leaf(rc);
        if (!n || n->last_used >= older_than) break;
        freed += leaf_evict(rc, n);
    }
    return freed;
}

int64_t radix_cache_clear_idle(radix_cache *rc) {
    int64_t freed = 0;
    for (;;) {
        radix_node *n = lru_unpinned_leaf(rc);
        if (!n) break;
        freed += leaf_evict(rc, n);
    }
    return freed;
}

void radix_cache_set_now(radix_cache *rc, uint64_t now) { rc->now = now; }
uint64_t radix_cache_now(const radix_cache *rc) { return rc->now; }

radix_cache_stats radix_cache_get_stats(const radix_cache *rc) {
    radix_cache_stats s = {0};
    for (int64_t i = 0; i < rc->n_all; i++) {
        const radix_node *n = rc->all[i];
        int64_t pages = n->n_tokens / rc->page_tokens + (n->n_tail > 0);
        s.nodes++;
        s.leaves += n->n_children == 0;
        s.idle_leaves += n->n_children == 0 && n->pin_count == 0;
        s.pinned_nodes += n->pin_count > 0;
        s.pages += pages;
        if (!n->pin_count) s.idle_pages += pages;
    }
    s.evicted_leaves = rc->evicted_leaves;
    s.evicted_pages = rc->evicted_pages;
    s.lookups = rc->lookups;
    s.hit_tokens = rc->hit_tokens;
    s.lookup_tokens = rc->lookup_tokens;
    return s;
}

static int check_node(const radix_cache *rc, const radix_node *n, int64_t *seen, larder_error *err) {
    int32_t P = rc->page_tokens;
    int32_t pin_sum = 0;
    for (int32_t i = 0; i < n->n_children; i++) {
        const radix_node *c = n->children[i];
        if (c->parent != n) return error_set(err, ERR_INVALID, "radix check: bad parent link");
        if (c->n_tokens <= 0 || c->n_tokens % P) return error_set(err, ERR_INVALID, "radix check: run of %d tokens is not whole pages", c->n_tokens);
        if (c->all_index < 0 || c->all_index >= rc->n_all || rc->all[c->all_index] != c)
            return error_set(err, ERR_INVALID, "radix check: node missing from the dense array");
        for (int32_t j = i + 1; j < n->n_children; j++)
            if (!memcmp(c->tokens, n->children[j]->tokens, (size_t)P * sizeof(int32_t)))
                return error_set(err, ERR_INVALID, "radix check: siblings share a first page");
        if (c->n_tail < 0 || c->n_tail >= P) return error_set(err, ERR_INVALID, "radix check: tail of %d tokens", c->n_tail);
        pin_sum += c->pin_count;
        (*seen)++;
        if (check_node(rc, c, seen, err)) return -1;
    }
    if (n != &rc->root && n->pin_count < pin_sum)
        return error_set(err, ERR_INVALID, "radix check: pin count %d below its children's %d", n->pin_count, pin_sum);
    return 0;
}

int radix_cache_check(const radix_cache *rc, larder_error *err) {
    int64_t seen = 0;
    if (check_node(rc, &rc->root, &seen, err)) return -1;
    if (seen != rc->n_all) return error_set(err, ERR_INVALID, "radix check: %lld nodes reachable, %lld listed", (long long)seen, (long long)rc->n_all);
    return 0;
}
