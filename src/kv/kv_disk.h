/*
 * kv_disk.h — the prompt cache's disk tier: KV pages kept in files, so the
 * cache outlives a restart (even kill -9) and an eviction.
 *
 * Layout: DIR/lock (flock: one process per directory) and one folder per
 * model identity, DIR/<fingerprint>-<kv type>-p<page_tokens>-b<page_bytes>/,
 * holding one file per KV page, named by the page's key: a 128-bit chained
 * hash of every token block up to and including the page's, seeded with the
 * model's fingerprint, the KV type and the page geometry. So a file serves
 * exactly one token prefix of one model; nothing else can find it.
 *
 * A file: a header (magic, format version, fingerprint, geometry, its key,
 * its parent's key, its page index, a checksum of the payload, a checksum of
 * the header), then the page's token ids, then the page's bytes as the
 * backend stores them. Written crash-safe: to a temporary name, fsync,
 * rename, fsync of the folder. On open, leftover temporary files are
 * removed, and every page file's header and size are checked; a truncated,
 * corrupt, foreign-model or foreign-version file is logged and removed. On
 * restore, the payload checksum and the tokens are checked again before a
 * single byte reaches the pool; a bad file is logged, removed, and the rest
 * of the prompt is computed instead. So a file is never served unless it is
 * exactly the page of exactly this token prefix.
 *
 * Budget: the page files never take more than budget_bytes; a new file
 * first evicts the least recently used ones. A failed write (ENOSPC, EIO)
 * is logged and counted, the file dropped; serving goes on from memory.
 *
 * Writing happens on a writer thread: kv_disk_save (engine thread) copies a
 * finished sequence's whole pages that no file holds yet into a bounded
 * queue (KV_DISK_QUEUE_BYTES; beyond it pages are not written, and a later
 * turn of the conversation queues them again), and the writer writes them.
 * Pages are written when a sequence ends, not when they are evicted
 * (DESIGN.md spoke of spilling evicted pages): only then does a kill -9
 * leave the conversation on disk, and an eviction then costs nothing. Restoring happens on the engine thread at admission
 * (kv_disk_restore), and only when reading is cheaper than recomputing:
 * measured seconds per restored page against the engine's measured prefill
 * seconds per token.
 *
 * Thread-safety: kv_disk_save, kv_disk_restore run on the engine thread;
 * kv_disk_get_stats and kv_disk_flush from any thread.
 */
#ifndef LARDER_KV_KV_DISK_H
#define LARDER_KV_KV_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "kv/kv_pool.h"
#include "kv/radix_cache.h"

/* The file format's version: a file of another version is removed. */
#define KV_DISK_VERSION 1
/* Most bytes of pages waiting for the writer. */
#define KV_DISK_QUEUE_BYTES ((size_t)256 << 20)

typedef struct kv_disk kv_disk;

typedef struct kv_disk_config {
    const char *dir;             /* created when absent */
    uint64_t budget_bytes;       /* most bytes of page files; >= one file */
    uint64_t model_fingerprint;  /* the model's identity (weights, vocabulary) */
} kv_disk_config;

typedef struct kv_disk_stats {
    int64_t files, bytes, budget_bytes;     /* page files now, and their bytes */
    int64_t queued_pages;                   /* waiting for the writer */
    int64_t written_pages, write_errors;    /* since open */
    int64_t dropped_pages;                  /* not written: queue full, or larger than the budget */
    int64_t evicted_files;                  /* removed for the budget */
    int64_t removed_bad_files;              /* truncated, corrupt, foreign: removed, never served */
    int64_t restored_pages, restores;       /* pages read back into the pool, and requests served so */
    int64_t restore_skipped;                /* times recomputing was measured cheaper */
    double read_s_per_page;                 /* measured (0: not yet) */
} kv_disk_stats;

/* Opens (creating) the directory, takes its lock, removes leftover
 * temporary and bad files, builds the index, and starts the writer. The
 * pool gives the geometry and the page bytes. NULL with err: ERR_IO (cannot
 * create or read it), ERR_LIMIT (another process holds the lock),
 * ERR_INVALID (budget smaller than one file). */
kv_disk *kv_disk_open(const kv_disk_config *cfg, kv_pool *pool, larder_error *err);

/* Writes what is queued, stops the writer, releases the lock. */
void kv_disk_close(kv_disk *d);

/* Engine thread: queues the whole pages [0, n_pages) of a sequence whose
 * tokens are tokens[0, n_pages · page_tokens) and whose page table is
 * pages, those no file holds yet. Returns the pages queued. */
int32_t kv_disk_save(kv_disk *d, const int32_t *tokens, int32_t n_pages, const uint32_t *pages);

/* How restore makes room in the pool: frees `pages` pages (evicting idle
 * cache entries) or returns -1. */
typedef int (*kv_disk_make_room_fn)(void *ctx, int32_t pages);

/*
 * Engine thread: extends the cache's match of tokens[0, n_tokens) with the
 * whole pages on disk that follow it, when reading them is cheaper than
 * computing them at prefill_s_per_token (0: unknown, then it reads). The
 * restored pages go into rc (as if a sequence had computed them; the tree
 * holds them, nothing else). Returns the tokens restored (0: none); then
 * *first_page (may be NULL) is the index, in the prompt's pages, of the
 * first page restored.
 */
int32_t kv_disk_restore(kv_disk *d, radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                        double prefill_s_per_token, kv_disk_make_room_fn make_room, void *make_room_ctx,
                        int32_t *first_page);

/* Waits until the writer's queue is empty. */
void kv_disk_flush(kv_disk *d);

kv_disk_stats kv_disk_get_stats(kv_disk *d);

#endif
