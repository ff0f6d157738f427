/*
 * engine.c — the engine thread (see engine.h for the step-by-step contract).
 *
 * Data: `job` is one submitted request (prompt, parameters, channel); `seq`
 * is one choice of a job: its tokens (prompt, then generated), its page
 * table (kv: kv.n_tokens of its tokens have K/V in the pages) and the cache
 * node it pins. A seq always has at least one token to compute
 * (kv.n_tokens < n_tokens):
 * prefill is computing many, decode is computing the one just sampled; when
 * the last token is computed its logits give the next one.
 *
 * Lists: waiting jobs (FIFO, bounded by --max-queue), parked sequences
 * (preempted; they resume before new jobs), running sequences (--parallel
 * slots). Fairness: while a request waits for its first slot, no other
 * request holds more than one slot — the one holding the most parks its
 * youngest choice (fair_share), and extra choices start only when no
 * newcomer waits — so n = 16 cannot starve a small request.
 *
 * Memory: every K/V byte is a page of the pool; a sequence's page table is
 * a kv_seq (src/kv/kv_seq.h), whose n_tokens counts the tokens with K/V in
 * its pages. A page table holds one reference per page; the radix cache
 * holds its own. A sequence writes only pages of its own: a cached prefix
 * may end inside a page (shared with the cache or another sequence), which
 * kv_seq_prepare copies before the first write into it. Growth makes room
 * first (make_room: evict idle cache pages, then preempt younger
 * sequences), so kv_seq_prepare then finds the pages it needs. With a
 * rotating window, entries for dropped pages are KV_SEQ_NO_PAGE.
 *
 * Pre-warming jobs (prefill_only) wait in their own list (warm_head) and run
 * only when nothing else does (prewarm_admit, prewarm_stop_all); the pages
 * they compute are marked (page_prewarmed, reset whenever a page is written
 * by someone else) so later hits on them are counted.
 */
#include "engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/platform.h"
#include "base/timing.h"
#include "kv/kv_disk.h"
#include "kv/kv_seq.h"
#include "kv/radix_cache.h"

typedef struct job {
    int32_t *prompt;                /* (n_prompt) */
    int32_t n_prompt;
    engine_job params;              /* params.sampling.bias points at bias */
    sample_bias *bias;              /* owned copy */
    channel *ch;
    int32_t choices_started;
    int32_t choices_alive;          /* started and not finished */
    bool prompt_ready;              /* choice 0 computed the whole prompt */
    bool failed;                    /* an error was sent; start no more choices */
    struct job *next;
} job;

typedef struct seq {
    job *job;
    int32_t choice;
    int32_t *tokens;                /* (cap_tokens) prompt then generated */
    int32_t n_tokens, cap_tokens;   /* kv.n_tokens of them have K/V in the pages */
    int32_t n_generated;
    int32_t n_cached;               /* prompt tokens served by the cache at first start */
    int32_t dropped_end;            /* rotating window: pages [first droppable, dropped_end)
                                     * are dropped (KV_SEQ_NO_PAGE); 0: none */
    bool started_once;
    kv_seq kv;                      /* page table, window, computed tokens */
    radix_node *pinned;
    sampler smp;
    int64_t admitted_step;          /* the youngest is preempted first */
    int32_t batch_first;            /* this step: first item index, count, logits row */
    int32_t batch_count;
    int32_t logits_row;
    struct seq *next;               /* parked list link */
} seq;

struct engine {
    engine_config cfg;              /* cfg.eog_tokens points at eog */
    int32_t eog[ENGINE_MAX_EOG_TOKENS];
    int32_t page_tokens;            /* the pool's */
    radix_cache *cache;
    int32_t n_vocab;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;           /* inbox, stop, clear, published stats */
    pthread_cond_t wake;
    pthread_cond_t cleared;
    job *inbox_head, *inbox_tail;
    int32_t n_inbox;
    bool stop;
    int64_t clear_asked, clear_done;
    engine_stats published;
    atomic_int n_pending;           /* jobs submitted, not yet started or dropped */
    atomic_int n_running_shared;    /* n_running, readable from HTTP threads */
    /* engine-thread state */
    job *wait_head, *wait_tail;
    int32_t n_waiting;
    seq *parked_head, *parked_tail;
    seq **running;                  /* (cfg.parallel) */
    int32_t n_running;
    int64_t step;
    int64_t preemptions;
    double busy_s, cache_s;
    forward_token *items;           /* (batch_tokens + parallel) */
    float *logits;                  /* (parallel, n_vocab) */
    /* pre-warming (engine-thread state) */
    job *warm_head;                 /* newest first */
    int32_t n_warm;
    uint8_t *page_prewarmed;        /* (pages_total) 1: a pre-warming job wrote this page */
    int64_t prewarm_jobs, prewarm_stopped, prewarm_dropped, prewarm_tokens, prewarm_hit_tokens;
    double prefill_s_per_token;     /* measured over forward passes of >= 32 tokens (disk tier's yardstick) */
};

/* Events a sequence may have waiting in its channel before it pauses (a
 * stalled reader; each event is sizeof(channel_event), ~0.4 KB). */
#define ENGINE_MAX_BACKLOG_EVENTS 256

/* ---- helpers */

static double now_s(void) { return (double)timing_now_us() / 1e6; }

static void push_error(channel *ch, int status, const char *msg) {
    channel_event ev = {.kind = CHANNEL_EVENT_ERROR, .http_status = status};
    size_t n = strlen(msg);
    if (n >= sizeof ev.message) n = sizeof ev.message - 1; /* messages are one bounded line */
    memcpy(ev.message, msg, n);
    channel_push(ch, &ev);
}

static void job_free(job *j) {
    free(j->prompt);
    free(j->bias);
    channel_release(j->ch);
    free(j);
}

/* A job is done when every choice has finished, or it failed and none runs. */
static void job_maybe_free(job *j) {
    bool all_started = j->choices_started == j->params.n_choices || j->failed;
    if (all_started && j->choices_alive == 0) job_free(j);
}

static int seq_reserve_tokens(seq *s, int32_t need) {
    if (need <= s->cap_tokens) return 0;
    int32_t cap = s->cap_tokens ? s->cap_tokens : 64;
    while (cap < need) cap *= 2;
    int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
    if (!t) return -1;
    s->tokens = t;
    s->cap_tokens = cap;
    return 0;
}

/* ---- the cache references pool pages through these */

static void hook_ref(void *ctx, uint32_t page) { kv_pool_ref(ctx, page); }
static void hook_unref(void *ctx, uint32_t page) { kv_pool_unref(ctx, page); }
static int hook_count(void *ctx, uint32_t page) { return kv_pool_refcount(ctx, page); }

static void cache_clock(engine *e) { radix_cache_set_now(e->cache, (uint64_t)(timing_now_us() / 1000)); }

/* --prompt-cache-size / -bytes / -ttl, applied to idle entries. */
static void cache_enforce_limits(engine *e) {
    double t0 = now_s();
    cache_clock(e);
    if (e->cfg.cache_ttl_s > 0) {
        uint64_t now = radix_cache_now(e->cache), ttl_ms = (uint64_t)(e->cfg.cache_ttl_s * 1000);
        if (now > ttl_ms) radix_cache_evict_older_than(e->cache, now - ttl_ms);
    }
    radix_cache_trim_leaves(e->cache, e->cfg.cache_max_entries);
    if (e->cfg.cache_max_bytes > 0) {
        size_t page_bytes = kv_pool_page_bytes(e->cfg.pool);
        while ((size_t)radix_cache_get_stats(e->cache).idle_pages * page_bytes > e->cfg.cache_max_bytes)
            if (radix_cache_evict_one(e->cache) < 0) break;
    }
    e->cache_s += now_s() - t0;
}

/* Evicts one idle cache leaf; -1 when none is left. */
static int evict_one(engine *e) {
    double t0 = now_s();
    int64_t freed = radix_cache_evict_one(e->cache);
    e->cache_s += now_s() - t0;
    return freed < 0 ? -1 : 0;
}

static int preempt_one(engine *e, const struct seq *keep);

/* Makes the pool hold `pages` free pages: evicts idle cache entries first,
 * then (when keep is not NULL) preempts running sequences other than keep,
 * youngest first. -1 when even that cannot. */
static int make_room(engine *e, const seq *keep, int32_t pages) {
    while (kv_pool_pages_free(e->cfg.pool) < pages)
        if (evict_one(e) && (!keep || preempt_one(e, keep))) return -1;
    return 0;
}

/* Rotating window: the first page that holds no kept token. */
static int32_t window_first_droppable_page(const engine *e) {
    return (e->cfg.keep_tokens + e->page_tokens - 1) / e->page_tokens;
}

/* Puts the computed pages of s into the cache and pins them (a prefill
 * checkpoint, or the end of the sequence). */
static void seq_checkpoint(engine *e, seq *s, bool with_tail) {
    double t0 = now_s();
    int32_t P = e->page_tokens;
    int32_t n = with_tail && e->cfg.max_kv_tokens <= 0 ? s->kv.n_tokens : (s->kv.n_tokens / P) * P;
    if (e->cfg.max_kv_tokens > 0) { /* windowed: at most N tokens, none past a dropped page */
        int32_t cap = s->dropped_end > 0 ? window_first_droppable_page(e) * P : (e->cfg.max_kv_tokens / P) * P;
        if (n > cap) n = cap;
    }
    if (n > 0) {
        radix_node *node = NULL;
        cache_clock(e);
        if (radix_cache_insert(e->cache, s->tokens, n, s->kv.pages, with_tail, &node, NULL) >= 0) {
            radix_cache_pin(e->cache, node);
            if (s->pinned) radix_cache_unpin(e->cache, s->pinned);
            s->pinned = node;
        }
    } else if (e->cfg.max_kv_tokens > 0 && s->pinned) { /* windowed, --keep 0: nothing of it stays shareable */
        radix_cache_unpin(e->cache, s->pinned);
        s->pinned = NULL;
    }
    e->cache_s += now_s() - t0;
}

/* Drops every page reference and pin of s (after caching its work). */
static void seq_release_pages(engine *e, seq *s, bool cache_it) {
    if (cache_it) seq_checkpoint(e, s, true);
    if (s->pinned) radix_cache_unpin(e->cache, s->pinned);
    s->pinned = NULL;
    kv_seq_release(&s->kv, e->cfg.pool);
    s->dropped_end = 0;
}

/*
 * Rotating window. Token p sees j < K and j > p - W (W = N - K). Page i
 * (tokens [iP, (i+1)P)) can go once it holds no kept token (iP >= K) and no
 * token the next computed position, or any later one, still sees:
 * (i+1)P <= kv.n_tokens - W + 1.
 */
static void seq_drop_window_pages(engine *e, seq *s) {
    if (e->cfg.max_kv_tokens <= 0) return;
    int32_t P = e->page_tokens, W = e->cfg.max_kv_tokens - e->cfg.keep_tokens;
    int32_t first = window_first_droppable_page(e), from = s->dropped_end > first ? s->dropped_end : first;
    int32_t end = (s->kv.n_tokens - W + 1) / P; /* pages [.., end) are wholly unseen */
    if (end > s->kv.n_pages) end = s->kv.n_pages;
    if (end <= from) return;
    bool first_drop = s->dropped_end == 0;
    kv_seq_drop_pages(&s->kv, e->cfg.pool, from, end);
    s->dropped_end = end;
    /* The cache entry this sequence pins may cover the dropped pages: pin
     * only what stays valid to share, so the rest can be evicted. */
    if (first_drop && s->pinned) seq_checkpoint(e, s, false);
}

/* The tokens whose pages s needs now: all of them, or with a window only
 * those the next step can compute (the pool holds about N per sequence). */
static int32_t seq_pages_target(const engine *e, const seq *s) {
    if (e->cfg.max_kv_tokens <= 0) return s->n_tokens;
    int32_t t = s->kv.n_tokens + e->cfg.batch_tokens;
    return t < s->n_tokens ? t : s->n_tokens;
}

/* Pages for s's first n_tokens tokens (copy-on-write of a shared page the
 * next token goes into included), making room first: idle cache pages go,
 * and with `preempt` younger running sequences too (not at admission).
 * -1 if the pool cannot. */
static int seq_grow_pages(engine *e, seq *s, int32_t n_tokens, bool preempt) {
    int32_t n_new = n_tokens - s->kv.n_tokens;
    if (n_new <= 0) return 0;
    if (make_room(e, preempt ? s : NULL, kv_seq_pages_needed(&s->kv, e->cfg.pool, n_new))) return -1;
    if (kv_seq_prepare(&s->kv, e->cfg.pool, n_new, NULL)) return -1;
    /* The pages from the first new position on are s's own now (fresh or
     * copied): mark who writes them. */
    uint8_t mark = s->job->params.prefill_only;
    for (int32_t i = s->kv.n_tokens / e->page_tokens; i < s->kv.n_pages; i++)
        if (s->kv.pages[i] != KV_SEQ_NO_PAGE) e->page_prewarmed[s->kv.pages[i]] = mark;
    return 0;
}

static void seq_free(seq *s) {
    free(s->kv.pages); /* its references were dropped by seq_release_pages */
    sampler_free(&s->smp);
    free(s->tokens);
    free(s);
}

static void running_remove(engine *e, seq *s) {
    for (int i = 0; i < e->cfg.parallel; i++)
        if (e->running[i] == s) e->running[i] = NULL;
    e->n_running--;
    atomic_store(&e->n_running_shared, e->n_running);
}

static void seq_finish(engine *e, seq *s, channel_finish why) {
    if (e->cfg.disk && e->cfg.max_kv_tokens <= 0) /* the disk tier keeps its whole pages (written in the background) */
        kv_disk_save(e->cfg.disk, s->tokens, s->kv.n_tokens / e->page_tokens, s->kv.pages);
    channel_event ev = {.kind = CHANNEL_EVENT_DONE, .choice = s->choice, .finish = why,
                        .prompt_tokens = s->job->n_prompt, .cached_tokens = s->n_cached};
    channel_push(s->job->ch, &ev);
    running_remove(e, s);
    seq_release_pages(e, s, true);
    job *j = s->job;
    j->choices_alive--;
    seq_free(s);
    job_maybe_free(j);
    cache_enforce_limits(e);
}

/* ---- admission */

/*
 * Attaches pages to s for all its tokens: the longest cached prefix (shared,
 * referenced) and fresh pages for the rest. The last token is always
 * computed (its logits are needed). Returns 0, or -1 if the pool has no room
 * (s then holds nothing).
 */
static int disk_make_room(void *ctx, int32_t pages) { return make_room(ctx, NULL, pages); }

static int seq_attach(engine *e, seq *s) {
    int32_t P = e->page_tokens;
    int32_t disk_first = 0, disk_tokens = 0;
    if (e->cfg.disk && !s->started_once && e->cfg.max_kv_tokens <= 0) /* pages on disk join the cache first */
        disk_tokens = kv_disk_restore(e->cfg.disk, e->cache, s->tokens, s->n_tokens, e->prefill_s_per_token,
                                      disk_make_room, e, &disk_first);
    int32_t max_pages = (s->n_tokens - 1 + P - 1) / P; /* the last token is computed */
    int32_t hit = 0;
    if (max_pages > 0) {
        uint32_t *pages = malloc((size_t)max_pages * sizeof *pages);
        if (!pages) return -1;
        double t0 = now_s();
        cache_clock(e);
        radix_node *node = NULL;
        hit = radix_cache_match(e->cache, s->tokens, s->n_tokens - 1, pages, max_pages, &node);
        if (hit > 0 && kv_seq_attach(&s->kv, e->cfg.pool, pages, (hit + P - 1) / P, hit, NULL) == 0) {
            radix_cache_pin(e->cache, node);
            s->pinned = node;
            for (int32_t i = disk_first; i < disk_first + disk_tokens / P && i < (hit + P - 1) / P; i++)
                e->page_prewarmed[pages[i]] = 0; /* read from disk now, whoever used the page before */
            if (!s->started_once && !s->job->params.prefill_only)
                for (int32_t i = 0; i < (hit + P - 1) / P; i++)
                    if (e->page_prewarmed[pages[i]]) e->prewarm_hit_tokens += hit - i * P < P ? hit - i * P : P;
        } else {
            hit = 0;
        }
        free(pages);
        e->cache_s += now_s() - t0;
    }
    if (seq_grow_pages(e, s, seq_pages_target(e, s), false)) {
        seq_release_pages(e, s, false);
        return -1;
    }
    if (!s->started_once) {
        s->n_cached = hit;
        s->started_once = true;
    }
    return 0;
}

static seq *seq_create(engine *e, job *j) {
    seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->job = j;
    s->choice = j->choices_started;
    if (seq_reserve_tokens(s, j->n_prompt + 16) ||
        sampler_init(&s->smp, &j->params.sampling, j->params.seed + (uint64_t)s->choice, (size_t)e->n_vocab, NULL)) {
        free(s->tokens);
        free(s);
        return NULL;
    }
    memcpy(s->tokens, j->prompt, (size_t)j->n_prompt * sizeof *s->tokens);
    s->n_tokens = j->n_prompt;
    kv_seq_init(&s->kv);
    if (e->cfg.max_kv_tokens > 0) {
        s->kv.keep_tokens = e->cfg.keep_tokens;
        s->kv.window_tokens = e->cfg.max_kv_tokens - e->cfg.keep_tokens;
    }
    return s;
}

static int free_slot(engine *e) {
    for (int i = 0; i < e->cfg.parallel; i++)
        if (!e->running[i]) return i;
    return -1;
}

static void run_seq(engine *e, seq *s) {
    s->admitted_step = e->step;
    e->running[free_slot(e)] = s;
    e->n_running++;
    atomic_store(&e->n_running_shared, e->n_running);
}

/* Takes j (whose predecessor in the wait list is prev, NULL at the head) out
 * of the wait list. */
static void wait_unlink(engine *e, job *prev, job *j) {
    atomic_fetch_sub(&e->n_pending, 1);
    if (prev) prev->next = j->next;
    else e->wait_head = j->next;
    if (e->wait_tail == j) e->wait_tail = prev;
    j->next = NULL;
    e->n_waiting--;
}

/* Least shared prefix, in tokens, worth waiting for (see below). */
#define ENGINE_WAIT_FOR_PREFIX_PAGES 2

/*
 * True when a running sequence is still computing a prefix that j's prompt
 * shares (by at least ENGINE_WAIT_FOR_PREFIX_PAGES pages beyond what it has
 * computed): j then waits, and finds that prefix in the cache once the
 * sequence's prefill checkpoints reach it, instead of computing it a second
 * time in parallel (agents send several requests with one long system prompt
 * at once). The running sequence advances every step, so the wait ends.
 */
static bool job_should_wait_for_prefix(const engine *e, const job *j) {
    int32_t margin = ENGINE_WAIT_FOR_PREFIX_PAGES * e->page_tokens;
    for (int i = 0; i < e->cfg.parallel; i++) {
        const seq *s = e->running[i];
        if (!s || s->n_tokens - s->kv.n_tokens <= 1) continue; /* decoding: its prefix is cached already */
        int32_t n = s->n_tokens < j->n_prompt ? s->n_tokens : j->n_prompt, lcp = 0;
        while (lcp < n && s->tokens[lcp] == j->prompt[lcp]) lcp++;
        if (lcp - s->kv.n_tokens >= margin) return true;
    }
    return false;
}

static void job_fail(engine *e, job *j, int status, const char *msg) {
    push_error(j->ch, status, msg);
    j->failed = true;
    job_maybe_free(j);
}

/* ---- fairness: one request's choices (n > 1) may not hold every slot
 * while another request waits for its first */

static int32_t job_running(const engine *e, const job *j) {
    int32_t n = 0;
    for (int i = 0; i < e->cfg.parallel; i++) n += e->running[i] && e->running[i]->job == j;
    return n;
}

/* A waiting request that has no choice running yet (and is still wanted). */
static bool newcomer_waiting(engine *e) {
    for (job *j = e->wait_head; j; j = j->next)
        if (j->choices_started == 0 && channel_cancelled(j->ch, 0) == FINISH_NONE) return true;
    return false;
}

static void preempt_seq(engine *e, seq *victim);

/* Every slot taken and a newcomer waiting: the request holding the most
 * slots (at least 2) gives back its youngest choice, which resumes from
 * the cache once the newcomer is in. */
static void fair_share(engine *e) {
    if (e->n_running < e->cfg.parallel || !newcomer_waiting(e)) return;
    seq *victim = NULL;
    int32_t most = 1;
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (!s) continue;
        int32_t held = job_running(e, s->job);
        if (held < 2) continue;
        if (held > most || (held == most && victim && s->admitted_step > victim->admitted_step)) {
            most = held;
            victim = s;
        }
    }
    if (!victim) return;
    preempt_seq(e, victim);
    log_debug("parked a choice of a request holding %d slots for a waiting request", most);
}

static void admit(engine *e) {
    fair_share(e);
    bool newcomer = newcomer_waiting(e);
    /* Preempted sequences first: they already hold a place in line (but a
     * choice of a request already running waits for a newcomer). */
    while (e->parked_head && e->n_running < e->cfg.parallel) {
        seq *s = e->parked_head;
        if (newcomer && job_running(e, s->job) > 0) break;
        if (seq_attach(e, s)) {
            if (e->n_running > 0) return; /* wait for pages */
            /* Alone and still no room: it cannot continue at all. */
            e->parked_head = s->next;
            if (!e->parked_head) e->parked_tail = NULL;
            s->next = NULL;
            e->n_running++; /* seq_finish counts it out */
            e->running[free_slot(e)] = s;
            seq_finish(e, s, FINISH_LENGTH);
            continue;
        }
        e->parked_head = s->next;
        if (!e->parked_head) e->parked_tail = NULL;
        s->next = NULL;
        run_seq(e, s);
    }
    job *prev = NULL, *next;
    for (job *j = e->wait_head; j && e->n_running < e->cfg.parallel; j = next) {
        next = j->next;
        if (j->choices_started == 0 && channel_cancelled(j->ch, 0) != FINISH_NONE) {
            wait_unlink(e, prev, j);
            j->failed = true;
            for (int32_t c = 0; c < j->params.n_choices; c++) {
                channel_event ev = {.kind = CHANNEL_EVENT_DONE, .choice = c, .finish = FINISH_CANCELLED,
                                    .prompt_tokens = j->n_prompt};
                channel_push(j->ch, &ev);
            }
            job_maybe_free(j);
            continue;
        }
        /* Later choices share the prompt's pages once it is computed; a job
         * whose prefix another sequence is computing waits for it. Either way
         * the jobs behind it may go first. */
        if ((j->choices_started > 0 && (!j->prompt_ready || newcomer)) ||
            (j->choices_started == 0 && job_should_wait_for_prefix(e, j))) {
            prev = j;
            continue;
        }
        seq *s = seq_create(e, j);
        if (!s) {
            wait_unlink(e, prev, j);
            job_fail(e, j, 500, "out of memory starting a sequence");
            continue;
        }
        if (seq_attach(e, s)) {
            seq_free(s);
            if (e->n_running > 0) return; /* pages come back when others finish */
            wait_unlink(e, prev, j);
            job_fail(e, j, 503, "the KV pool cannot hold this prompt (raise --kv-memory)");
            continue;
        }
        j->choices_started++;
        j->choices_alive++;
        run_seq(e, s);
        if (j->choices_started == j->params.n_choices) wait_unlink(e, prev, j);
        else prev = j;
    }
}

/* Preempts the youngest running sequence other than `keep`; its computed
 * tokens go to the cache, and it resumes from there later. 0 if one was. */
static void preempt_seq(engine *e, seq *victim);

static int preempt_one(engine *e, const struct seq *keep) {
    seq *victim = NULL;
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (s && s != keep && (!victim || s->admitted_step > victim->admitted_step)) victim = s;
    }
    if (!victim) return -1;
    preempt_seq(e, victim);
    log_info("preempted a sequence of %d tokens for lack of KV pages", victim->n_tokens);
    return 0;
}

/* Parks a running sequence: its computed tokens go to the cache, and it
 * resumes from there later. */
static void preempt_seq(engine *e, seq *victim) {
    running_remove(e, victim);
    seq_release_pages(e, victim, true);
    victim->next = NULL;
    if (e->parked_tail) e->parked_tail->next = victim;
    else e->parked_head = victim;
    e->parked_tail = victim;
    e->preemptions++;
}

/* ---- pre-warming */

/* Ends a pre-warming job that holds no sequence: its one DONE event, then
 * the job is freed. */
static void prewarm_end(job *j, channel_finish why, int32_t cached) {
    channel_event ev = {.kind = CHANNEL_EVENT_DONE, .finish = why, .prompt_tokens = j->n_prompt, .cached_tokens = cached};
    channel_push(j->ch, &ev);
    job_free(j);
}

/* Puts j at the head of the pre-warming list (newest first); beyond
 * ENGINE_MAX_PREWARM_JOBS the oldest is dropped. */
static void prewarm_push(engine *e, job *j) {
    j->next = e->warm_head;
    e->warm_head = j;
    if (++e->n_warm <= ENGINE_MAX_PREWARM_JOBS) return;
    job **pp = &e->warm_head;
    while ((*pp)->next) pp = &(*pp)->next;
    job *oldest = *pp;
    *pp = NULL;
    e->n_warm--;
    e->prewarm_dropped++;
    prewarm_end(oldest, FINISH_CANCELLED, 0);
}

/* Stops every running pre-warming sequence for a real request: what it
 * computed goes to the cache, its job back to the head of the list. */
static void prewarm_stop_all(engine *e) {
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (!s || !s->job->params.prefill_only) continue;
        job *j = s->job;
        running_remove(e, s);
        seq_release_pages(e, s, true);
        seq_free(s);
        j->choices_started = j->choices_alive = 0;
        e->prewarm_stopped++;
        prewarm_push(e, j);
    }
}

/* Tokens of j's prompt the cache holds now (0 when out of memory). */
static int32_t prewarm_cached_tokens(engine *e, const job *j) {
    int32_t max_pages = (j->n_prompt + e->page_tokens - 1) / e->page_tokens;
    uint32_t *pages = malloc((size_t)max_pages * sizeof *pages);
    if (!pages) return 0;
    cache_clock(e);
    int32_t hit = radix_cache_match(e->cache, j->prompt, j->n_prompt, pages, max_pages, NULL);
    free(pages);
    return hit;
}

/* With nothing else to do, starts the newest pre-warming job whose prompt
 * the cache does not already hold. */
static void prewarm_admit(engine *e) {
    while (e->warm_head && e->n_running == 0) {
        job *j = e->warm_head;
        e->warm_head = j->next;
        j->next = NULL;
        e->n_warm--;
        if (channel_cancelled(j->ch, 0) != FINISH_NONE) {
            prewarm_end(j, FINISH_CANCELLED, 0);
            continue;
        }
        int32_t have = prewarm_cached_tokens(e, j);
        if (have >= j->n_prompt - 1) { /* the conversation went on, or another job warmed it */
            e->prewarm_dropped++;
            prewarm_end(j, FINISH_STOP, have);
            continue;
        }
        seq *s = seq_create(e, j);
        if (!s || seq_attach(e, s)) { /* alone and no room: the pool cannot hold it */
            if (s) seq_free(s);
            e->prewarm_dropped++;
            prewarm_end(j, FINISH_CANCELLED, 0);
            continue;
        }
        j->choices_started = j->choices_alive = 1;
        run_seq(e, s);
    }
}

/* ---- one step */

static void step_cancellations(engine *e) {
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (!s) continue;
        channel_finish why = channel_cancelled(s->job->ch, s->choice);
        if (why != FINISH_NONE) seq_finish(e, s, why);
    }
    for (seq **pp = &e->parked_head; *pp;) {
        seq *s = *pp;
        channel_finish why = channel_cancelled(s->job->ch, s->choice);
        if (why == FINISH_NONE) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        if (e->parked_tail == s) {
            e->parked_tail = NULL;
            for (seq *t = e->parked_head; t; t = t->next) e->parked_tail = t;
        }
        channel_event ev = {.kind = CHANNEL_EVENT_DONE, .choice = s->choice, .finish = why,
                            .prompt_tokens = s->job->n_prompt, .cached_tokens = s->n_cached};
        channel_push(s->job->ch, &ev);
        job *j = s->job;
        j->choices_alive--;
        seq_free(s);
        job_maybe_free(j);
    }
}

/* Builds the batch: decode tokens first (latency), then prefill chunks. */
static int32_t step_build_batch(engine *e, int32_t *n_logits) {
    int32_t n = 0, budget = e->cfg.batch_tokens, rows = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < e->cfg.parallel; i++) {
            seq *s = e->running[i];
            if (!s) continue;
            int32_t pending = s->n_tokens - s->kv.n_tokens;
            bool decoding = pending == 1;
            if ((pass == 0) != decoding) continue;
            int32_t take = pending;
            if (take > budget) take = budget;
            if (pass == 0 && take == 0) take = 1; /* decode always gets its token */
            /* ... unless its reader stalls (a stream nobody reads): it waits,
             * so what is buffered for a stalled client stays bounded */
            if (decoding && channel_backlog(s->job->ch) >= ENGINE_MAX_BACKLOG_EVENTS) take = 0;
            s->batch_first = n;
            s->batch_count = take;
            s->logits_row = -1;
            if (take == 0) continue;
            for (int32_t k = 0; k < take; k++) {
                int32_t pos = s->kv.n_tokens + k;
                bool last = pos == s->n_tokens - 1 && !s->job->params.prefill_only;
                e->items[n++] = (forward_token){.token = s->tokens[pos], .kv = {&s->kv, pos}, .want_logits = last};
                if (last) s->logits_row = rows++;
            }
            budget -= take;
            if (budget < 0) budget = 0;
        }
    }
    *n_logits = rows;
    return n;
}

static void emit_token(engine *e, seq *s, int32_t token, float logprob, const sample_logprob *top, size_t n_top) {
    channel_event ev = {.kind = CHANNEL_EVENT_TOKEN, .choice = s->choice, .token = token, .logprob = logprob};
    ev.n_top = (int32_t)n_top;
    for (size_t i = 0; i < n_top && i < CHANNEL_MAX_TOP_LOGPROBS; i++) {
        ev.top_tokens[i] = top[i].id;
        ev.top_logprobs[i] = top[i].logprob;
    }
    if (channel_push(s->job->ch, &ev)) channel_cancel(s->job->ch, s->choice, FINISH_CANCELLED);
}

static bool is_eog(const engine *e, int32_t tok) {
    for (int32_t i = 0; i < e->cfg.n_eog_tokens; i++)
        if (e->eog[i] == tok) return true;
    return false;
}

static void step_sample(engine *e, seq *s) {
    job *j = s->job;
    const float *logits = e->logits + (size_t)s->logits_row * (size_t)e->n_vocab;
    sample_logprob top[CHANNEL_MAX_TOP_LOGPROBS];
    size_t n_top = 0;
    float lp = 0;
    bool want_lp = j->params.top_logprobs >= 0;
    int32_t tok = sampler_sample(&s->smp, logits, s->tokens, (size_t)s->n_tokens,
                                 want_lp ? &lp : NULL, top, want_lp ? (size_t)j->params.top_logprobs : 0, &n_top);
    if (s->choice == 0 && !j->prompt_ready) {
        j->prompt_ready = true;
        seq_checkpoint(e, s, true); /* later choices find the prompt here */
    }
    bool eog = !j->params.ignore_eos && is_eog(e, tok);
    if (eog) {
        seq_finish(e, s, FINISH_STOP);
        return;
    }
    emit_token(e, s, tok, lp, top, n_top);
    s->n_generated++;
    if (s->n_generated >= j->params.max_tokens || s->n_tokens + 1 > e->cfg.ctx_tokens) {
        seq_finish(e, s, FINISH_LENGTH);
        return;
    }
    if (seq_reserve_tokens(s, s->n_tokens + 1)) {
        push_error(j->ch, 500, "out of memory");
        seq_finish(e, s, FINISH_CANCELLED);
        return;
    }
    s->tokens[s->n_tokens++] = tok;
}

static void step_run(engine *e) {
    step_cancellations(e);
    if (e->wait_head || e->parked_head) prewarm_stop_all(e); /* a real request goes first, at once */
    admit(e);
    if (e->n_running == 0 && !e->wait_head && !e->parked_head) prewarm_admit(e);
    if (e->n_running == 0) return;

    /* Pages for what this step computes (the decode token may open a page). */
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (s && seq_grow_pages(e, s, seq_pages_target(e, s), true)) {
            /* Even alone it cannot grow: the pool is too small for it. */
            seq_finish(e, s, FINISH_LENGTH);
        }
    }
    int32_t n_logits = 0;
    int32_t n = step_build_batch(e, &n_logits);
    if (n == 0) { /* every running sequence waits for its reader: nap, do not spin (not a step) */
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
        return;
    }
    e->step++;
    larder_error err = {0};
    double t_fw = now_s();
    if (e->cfg.forward(e->cfg.forward_ctx, e->items, n, e->logits, &err)) {
        log_error("forward pass failed: %s", err.message);
        for (int i = 0; i < e->cfg.parallel; i++) {
            seq *s = e->running[i];
            if (!s) continue;
            push_error(s->job->ch, 500, err.message);
            seq_finish(e, s, FINISH_CANCELLED);
        }
        return;
    }
    if (n >= 32) {
        double per = (now_s() - t_fw) / n;
        e->prefill_s_per_token = e->prefill_s_per_token > 0 ? 0.8 * e->prefill_s_per_token + 0.2 * per : per;
    }
    for (int i = 0; i < e->cfg.parallel; i++) {
        seq *s = e->running[i];
        if (!s || s->batch_count == 0) continue;
        kv_seq_advance(&s->kv, s->batch_count);
        seq_drop_window_pages(e, s);
        if (s->job->params.prefill_only) {
            e->prewarm_tokens += s->batch_count;
            if (s->kv.n_tokens == s->n_tokens) {
                e->prewarm_jobs++;
                seq_finish(e, s, FINISH_STOP); /* caches every page it computed */
                continue;
            }
        }
        if (s->logits_row >= 0) {
            step_sample(e, s);
        } else if (s->choice == 0 && !s->job->prompt_ready) {
            seq_checkpoint(e, s, false); /* a long prompt is shared while it is computed */
        }
    }
}

/* One step, timed: engine time is everything a step does, cache work
 * included (cache_s counts the cache's share of it). */
static void step(engine *e) {
    double t0 = now_s();
    step_run(e);
    e->busy_s += now_s() - t0;
}

/* ---- thread and public API */

static void publish_stats(engine *e) {
    radix_cache_stats cs = radix_cache_get_stats(e->cache);
    engine_stats st = {0};
    st.page_bytes = (int64_t)kv_pool_page_bytes(e->cfg.pool);
    st.pages_total = kv_pool_pages_total(e->cfg.pool);
    st.pages_free = kv_pool_pages_free(e->cfg.pool);
    st.kv_bytes_total = st.pages_total * st.page_bytes;
    st.kv_bytes_free = st.pages_free * st.page_bytes;
    st.kv_bytes_cached_idle = cs.idle_pages * st.page_bytes;
    st.kv_bytes_running = st.kv_bytes_total - st.kv_bytes_free - st.kv_bytes_cached_idle;
    if (st.kv_bytes_running < 0) st.kv_bytes_running = 0;
    st.cache_entries = cs.idle_leaves;
    st.cache_nodes = cs.nodes;
    st.cache_pages = cs.pages;
    st.cache_evictions = cs.evicted_leaves;
    st.cache_evicted_pages = cs.evicted_pages;
    st.cache_lookups = cs.lookups;
    st.cache_hit_tokens = cs.hit_tokens;
    st.cache_lookup_tokens = cs.lookup_tokens;
    st.running = e->n_running;
    st.preemptions = e->preemptions;
    st.steps = e->step;
    st.engine_busy_s = e->busy_s;
    st.cache_bookkeeping_s = e->cache_s;
    st.waiting = e->n_waiting;
    st.prewarm_jobs = e->prewarm_jobs;
    st.prewarm_stopped = e->prewarm_stopped;
    st.prewarm_dropped = e->prewarm_dropped;
    st.prewarm_tokens = e->prewarm_tokens;
    st.prewarm_hit_tokens = e->prewarm_hit_tokens;
    pthread_mutex_lock(&e->lock);
    e->published = st;
    pthread_mutex_unlock(&e->lock);
}

static void *engine_main(void *arg) {
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->lock);
        if (!e->stop && !e->inbox_head && e->n_running == 0 && !e->parked_head && !e->wait_head && !e->warm_head &&
            e->clear_asked == e->clear_done) {
            /* Idle: sleep until a submission, waking once a second for the cache TTL. */
            struct timespec ts;
            platform_cond_deadline(&ts, 1000);
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        bool stop = e->stop;
        job *in = e->inbox_head;
        e->inbox_head = e->inbox_tail = NULL;
        e->n_inbox = 0;
        int64_t clear_to = e->clear_asked;
        pthread_mutex_unlock(&e->lock);
        if (stop) break;
        while (in) { /* real jobs to the wait list, pre-warming to its own */
            job *next = in->next;
            in->next = NULL;
            if (in->params.prefill_only) {
                prewarm_push(e, in);
            } else {
                if (e->wait_tail) e->wait_tail->next = in;
                else e->wait_head = in;
                e->wait_tail = in;
                e->n_waiting++;
            }
            in = next;
        }
        if (clear_to != e->clear_done) {
            radix_cache_clear_idle(e->cache);
            pthread_mutex_lock(&e->lock);
            e->clear_done = clear_to;
            pthread_cond_broadcast(&e->cleared);
            pthread_mutex_unlock(&e->lock);
        }
        step(e);
        if (e->n_running == 0) cache_enforce_limits(e);
        publish_stats(e);
    }
    return NULL;
}

engine *engine_start(const engine_config *cfg, larder_error *err) {
    if (cfg->parallel < 1 || cfg->batch_tokens < 1 || cfg->ctx_tokens < 2 || cfg->max_queue < 0) {
        error_set(err, ERR_INVALID, "engine: --parallel, --batch-tokens must be >= 1 and --ctx-size >= 2");
        return NULL;
    }
    if (!cfg->pool || !cfg->forward || cfg->n_vocab < 1 || cfg->n_eog_tokens < 0 ||
        cfg->n_eog_tokens > ENGINE_MAX_EOG_TOKENS) {
        error_set(err, ERR_INVALID, "engine: needs a KV pool, a forward pass, a vocabulary and at most %d end-of-generation ids",
                  ENGINE_MAX_EOG_TOKENS);
        return NULL;
    }
    if (cfg->max_kv_tokens < 0 || cfg->keep_tokens < 0 || (cfg->max_kv_tokens > 0 && cfg->keep_tokens >= cfg->max_kv_tokens)) {
        error_set(err, ERR_INVALID, "engine: --keep (%d) must be smaller than --max-kv-size (%d)", cfg->keep_tokens,
                  cfg->max_kv_tokens);
        return NULL;
    }
    engine *e = calloc(1, sizeof *e);
    if (!e) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    if (cfg->n_eog_tokens) memcpy(e->eog, cfg->eog_tokens, (size_t)cfg->n_eog_tokens * sizeof *e->eog);
    e->cfg.eog_tokens = e->eog;
    e->page_tokens = kv_pool_get_config(cfg->pool)->page_tokens;
    e->n_vocab = cfg->n_vocab;
    radix_cache_hooks hooks = {hook_ref, hook_unref, hook_count, e->cfg.pool};
    e->cache = radix_cache_create(e->page_tokens, hooks, err);
    e->running = calloc((size_t)cfg->parallel, sizeof *e->running);
    e->items = calloc((size_t)(cfg->batch_tokens + cfg->parallel), sizeof *e->items);
    e->logits = malloc((size_t)cfg->parallel * (size_t)e->n_vocab * sizeof *e->logits);
    e->page_prewarmed = calloc((size_t)kv_pool_pages_total(cfg->pool), 1);
    if (!e->cache || !e->running || !e->items || !e->logits || !e->page_prewarmed) {
        if (e->cache || !err || !err->code) error_set(err, ERR_NOMEM, "out of memory creating the engine");
        engine_stop(e);
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    platform_cond_init(&e->wake);
    platform_cond_init(&e->cleared);
    publish_stats(e);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        error_set(err, ERR_NOMEM, "cannot start the engine thread");
        engine_stop(e);
        return NULL;
    }
    e->thread_started = true;
    return e;
}

static void fail_all(engine *e, job *list) {
    while (list) {
        job *n = list->next;
        push_error(list->ch, 503, "the server is shutting down");
        job_free(list);
        list = n;
    }
}

void engine_stop(engine *e) {
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
        pthread_cond_destroy(&e->wake);
        pthread_cond_destroy(&e->cleared);
        pthread_mutex_destroy(&e->lock);
    }
    if (e->running) {
        for (int i = 0; i < e->cfg.parallel; i++) {
            seq *s = e->running[i];
            if (!s) continue;
            push_error(s->job->ch, 503, "the server is shutting down");
            seq_finish(e, s, FINISH_CANCELLED);
        }
    }
    while (e->parked_head) {
        seq *s = e->parked_head;
        e->parked_head = s->next;
        push_error(s->job->ch, 503, "the server is shutting down");
        job *j = s->job;
        j->choices_alive--;
        seq_free(s);
        job_maybe_free(j);
    }
    /* Waiting jobs: ones with running choices were freed with their last seq. */
    for (job *j = e->wait_head; j;) {
        job *n = j->next;
        j->next = NULL;
        if (j->choices_alive == 0) {
            push_error(j->ch, 503, "the server is shutting down");
            job_free(j);
        } else {
            j->failed = true;
        }
        j = n;
    }
    fail_all(e, e->inbox_head);
    while (e->warm_head) {
        job *j = e->warm_head;
        e->warm_head = j->next;
        prewarm_end(j, FINISH_CANCELLED, 0);
    }
    radix_cache_destroy(e->cache);
    free(e->page_prewarmed);
    free(e->running);
    free(e->items);
    free(e->logits);
    free(e);
}

int engine_submit(engine *e, const engine_job *jb, channel *ch, larder_error *err) {
    if (jb->n_prompt < 1) return error_set(err, ERR_INVALID, "the prompt is empty");
    if (jb->n_prompt >= e->cfg.ctx_tokens)
        return error_set(err, ERR_INVALID, "the prompt has %d tokens; the context holds %d (the prompt must leave room for at least one generated token)",
                         jb->n_prompt, e->cfg.ctx_tokens);
    int64_t held = jb->n_prompt; /* tokens of KV the prompt needs at once */
    if (e->cfg.max_kv_tokens > 0 && held > (int64_t)e->cfg.max_kv_tokens + e->cfg.batch_tokens)
        held = (int64_t)e->cfg.max_kv_tokens + e->cfg.batch_tokens + e->page_tokens;
    int64_t pages_needed = (held + e->page_tokens) / e->page_tokens;
    if (pages_needed > kv_pool_pages_total(e->cfg.pool))
        return error_set(err, ERR_INVALID, "the prompt has %d tokens; the KV pool (--kv-memory) holds %lld",
                         jb->n_prompt, (long long)(kv_pool_pages_total(e->cfg.pool) * e->page_tokens));
    if (jb->n_choices < 1 || jb->n_choices > CHANNEL_MAX_CHOICES || (jb->prefill_only && jb->n_choices != 1))
        return error_set(err, ERR_INVALID, "'n' must be between 1 and %d", CHANNEL_MAX_CHOICES);
    for (int32_t i = 0; i < jb->n_prompt; i++)
        if (jb->prompt[i] < 0 || jb->prompt[i] >= e->n_vocab)
            return error_set(err, ERR_INVALID, "token id %d is out of range (vocabulary of %d)", jb->prompt[i], e->n_vocab);
    job *j = calloc(1, sizeof *j);
    if (!j) return error_set(err, ERR_NOMEM, "out of memory");
    j->prompt = malloc((size_t)jb->n_prompt * sizeof *j->prompt);
    if (jb->sampling.n_bias) j->bias = malloc(jb->sampling.n_bias * sizeof *j->bias);
    if (!j->prompt || (jb->sampling.n_bias && !j->bias)) {
        free(j->prompt);
        free(j->bias);
        free(j);
        return error_set(err, ERR_NOMEM, "out of memory");
    }
    memcpy(j->prompt, jb->prompt, (size_t)jb->n_prompt * sizeof *j->prompt);
    if (jb->sampling.n_bias) memcpy(j->bias, jb->sampling.bias, jb->sampling.n_bias * sizeof *j->bias);
    j->n_prompt = jb->n_prompt;
    j->params = *jb;
    j->params.prompt = j->prompt;
    j->params.sampling.bias = j->bias;
    if (j->params.max_tokens < 0 || j->params.max_tokens > e->cfg.ctx_tokens - jb->n_prompt)
        j->params.max_tokens = e->cfg.ctx_tokens - jb->n_prompt;
    j->ch = ch;

    pthread_mutex_lock(&e->lock);
    /* Jobs not yet running beyond the free slots (which admit at once) wait;
     * at most --max-queue of them. Pre-warming has its own bounded list. */
    int free_slots = e->cfg.parallel - atomic_load(&e->n_running_shared);
    if (!jb->prefill_only && atomic_load(&e->n_pending) >= e->cfg.max_queue + (free_slots > 0 ? free_slots : 0)) {
        pthread_mutex_unlock(&e->lock);
        j->ch = NULL;
        free(j->prompt);
        free(j->bias);
        free(j);
        return error_set(err, ERR_LIMIT, "the server is busy: %d requests are waiting (--max-queue)", e->cfg.max_queue);
    }
    if (e->inbox_tail) e->inbox_tail->next = j;
    else e->inbox_head = j;
    e->inbox_tail = j;
    if (!jb->prefill_only) {
        e->n_inbox++;
        atomic_fetch_add(&e->n_pending, 1);
    }
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return 0;
}

engine_stats engine_get_stats(engine *e) {
    pthread_mutex_lock(&e->lock);
    engine_stats st = e->published;
    st.waiting += e->n_inbox;
    pthread_mutex_unlock(&e->lock);
    return st;
}

void engine_clear_cache(engine *e) {
    pthread_mutex_lock(&e->lock);
    int64_t want = ++e->clear_asked;
    pthread_cond_signal(&e->wake);
    while (e->clear_done < want && !e->stop) pthread_cond_wait(&e->cleared, &e->lock);
    pthread_mutex_unlock(&e->lock);
}

size_t engine_kv_bytes_per_token(const engine *e) { return kv_pool_bytes_per_token(e->cfg.pool); }
