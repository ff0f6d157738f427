/*
 * kv_disk.c — the prompt cache's disk tier (see kv_disk.h): the page-file
 * format, the index of the model's folder, the writer thread, and the
 * checked restore into the pool.
 *
 * The index is an open-addressing hash table (linear probing, backward-shift
 * deletion) from a page's 128-bit key to its file's state: on disk, or
 * queued for the writer. One mutex guards it, the queue and the counters;
 * file I/O of the writer happens outside it, restore reads happen on the
 * engine thread outside it too.
 */
#include "kv/kv_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/timing.h"

static const char FILE_MAGIC[8] = {'L', 'A', 'R', 'D', 'K', 'V', 'P', 0};

/* The header of a page file (native byte order: the files belong to this
 * machine's process; a foreign one fails the checks). */
typedef struct file_header {
    char magic[8];
    uint32_t version;
    uint32_t header_bytes;
    uint64_t fingerprint;
    uint32_t kv_type;
    uint32_t page_tokens;
    uint64_t page_bytes;
    uint64_t key[2];
    uint64_t parent[2];
    uint32_t page_index;
    uint32_t reserved;
    uint64_t payload_checksum;      /* tokens then page bytes */
    uint64_t header_checksum;       /* every byte above */
} file_header;
_Static_assert(sizeof(file_header) == 96, "file_header has no padding");

enum { ENTRY_EMPTY = 0, ENTRY_ON_DISK = 1, ENTRY_QUEUED = 2 };

typedef struct entry {
    uint64_t key[2];
    uint64_t used_ns;               /* LRU clock: last save or restore (mtime after open) */
    uint8_t state;
} entry;

typedef struct write_job {
    struct write_job *next;
    uint8_t *file;                  /* (file_bytes) header (checksums filled by the writer), tokens, page */
} write_job;

struct kv_disk {
    char *sub;                      /* the model's folder */
    int lock_fd;
    kv_pool *pool;
    uint64_t fingerprint;
    uint32_t kv_type;
    int32_t page_tokens;
    size_t page_bytes, file_bytes;
    uint64_t budget_bytes;
    uint64_t seed[2];               /* the key of the empty prefix */
    pthread_mutex_t lock;
    pthread_cond_t wake, idle;
    entry *tab;
    size_t cap, count;              /* entries in use (on disk or queued) */
    int64_t files;                  /* on disk, or reserved by the writer */
    uint64_t bytes;
    write_job *head, *tail;
    int64_t queued;
    bool writing, stop, thread_started;
    pthread_t thread;
    kv_disk_stats st;               /* counters (files/bytes/queued filled on read) */
    uint8_t *read_buf;              /* (file_bytes + 1) engine thread */
};

/* ---- hashing */

/* A fast 64-bit checksum (4 independent lanes of 8-byte words, each step a
 * bijection of the lane, so any change of one word changes its lane). */
static uint64_t checksum(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h[4] = {0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL, 0x082EFA98EC4E6C89ULL};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * l, 8);
            h[l] = (h[l] ^ w) * 0x9E3779B97F4A7C15ULL;
            h[l] ^= h[l] >> 29;
        }
    }
    uint64_t r = hash_combine((uint64_t)n, hash_bytes(p + i, n - i));
    for (int l = 0; l < 4; l++) r = hash_combine(r, h[l]);
    return r;
}

/* The key of a prefix one page longer than the one keyed by prev. */
static void chain_next(const uint64_t prev[2], const int32_t *tokens, int32_t P, uint64_t out[2]) {
    uint64_t a = hash_combine(prev[0], hash_bytes(tokens, (size_t)P * sizeof *tokens));
    uint64_t b = prev[1] ^ 0x6A09E667F3BCC909ULL;
    for (int32_t i = 0; i < P; i++) {
        b = (b + (uint32_t)tokens[i] + 1) * 0xFF51AFD7ED558CCDULL;
        b ^= b >> 33;
    }
    out[0] = a;
    out[1] = hash_combine(b, (uint64_t)P);
}

static uint64_t now_ns(void) { return (uint64_t)timing_now_us() * 1000; }

/* ---- the index (callers hold d->lock) */

static size_t slot_of(const kv_disk *d, const uint64_t key[2]) { return (size_t)(key[0] ^ (key[1] >> 7)) & (d->cap - 1); }

static entry *index_find(kv_disk *d, const uint64_t key[2]) {
    for (size_t i = slot_of(d, key);; i = (i + 1) & (d->cap - 1)) {
        entry *e = &d->tab[i];
        if (e->state == ENTRY_EMPTY) return NULL;
        if (e->key[0] == key[0] && e->key[1] == key[1]) return e;
    }
}

static int index_grow(kv_disk *d) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    entry *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    entry *old = d->tab;
    size_t old_cap = d->cap;
    d->tab = t;
    d->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].state == ENTRY_EMPTY) continue;
        size_t j = slot_of(d, old[i].key);
        while (d->tab[j].state != ENTRY_EMPTY) j = (j + 1) & (cap - 1);
        d->tab[j] = old[i];
    }
    free(old);
    return 0;
}

/* A new entry for key (absent), or NULL when out of memory. */
static entry *index_add(kv_disk *d, const uint64_t key[2], uint8_t state) {
    if ((d->count + 1) * 2 > d->cap && index_grow(d)) return NULL;
    size_t i = slot_of(d, key);
    while (d->tab[i].state != ENTRY_EMPTY) i = (i + 1) & (d->cap - 1);
    d->tab[i] = (entry){{key[0], key[1]}, now_ns(), state};
    d->count++;
    return &d->tab[i];
}

/* Removes e (backward-shift deletion keeps every probe chain unbroken). */
static void index_remove(kv_disk *d, entry *e) {
    size_t i = (size_t)(e - d->tab), mask = d->cap - 1;
    d->tab[i].state = ENTRY_EMPTY;
    d->count--;
    for (size_t j = (i + 1) & mask; d->tab[j].state != ENTRY_EMPTY; j = (j + 1) & mask) {
        size_t home = slot_of(d, d->tab[j].key);
        /* j's entry may move to i when i lies on its probe path home..j */
        bool on_path = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (on_path) {
            d->tab[i] = d->tab[j];
            d->tab[j].state = ENTRY_EMPTY;
            i = j;
        }
    }
}

/* ---- files */

static void file_name(const kv_disk *d, const uint64_t key[2], const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "%s/%016" PRIx64 "%016" PRIx64 "%s", d->sub, key[0], key[1], suffix);
}

/* Removes the file of an on-disk entry, and the entry (d->lock held). */
static void drop_file_locked(kv_disk *d, entry *e) {
    char path[4096];
    file_name(d, e->key, ".kvp", path, sizeof path);
    unlink(path);
    if (e->state == ENTRY_ON_DISK) {
        d->files--;
        d->bytes -= d->file_bytes;
    }
    index_remove(d, e);
}

/* Evicts the least recently used file; -1 when none is on disk. */
static int evict_lru_locked(kv_disk *d) {
    entry *victim = NULL;
    for (size_t i = 0; i < d->cap; i++)
        if (d->tab[i].state == ENTRY_ON_DISK && (!victim || d->tab[i].used_ns < victim->used_ns)) victim = &d->tab[i];
    if (!victim) return -1;
    drop_file_locked(d, victim);
    d->st.evicted_files++;
    return 0;
}

/* Why a header is not one of this folder's page files (NULL: it is). */
static const char *header_problem(const kv_disk *d, const file_header *h) {
    if (memcmp(h->magic, FILE_MAGIC, sizeof FILE_MAGIC)) return "not a larder page file";
    /* the version first: another version may lay out (and check) its header otherwise */
    if (h->version != KV_DISK_VERSION || h->header_bytes != sizeof *h) return "of another format version";
    if (h->header_checksum != checksum(h, offsetof(file_header, header_checksum))) return "corrupt (header checksum)";
    if (h->fingerprint != d->fingerprint) return "of another model";
    if (h->kv_type != d->kv_type || h->page_tokens != (uint32_t)d->page_tokens || h->page_bytes != d->page_bytes)
        return "of another KV geometry";
    return NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to cap bytes; the count read, or -1. */
static ssize_t read_up_to(int fd, uint8_t *p, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, p + got, cap - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Writes one page file crash-safe: temporary name, fsync, rename, fsync of
 * the folder. 0, or -1 with errno's text in why. */
static int write_page_file(kv_disk *d, const uint8_t *file, char *why, size_t why_cap) {
    const file_header *h = (const file_header *)file;
    char tmp[4096], final[4096];
    file_name(d, h->key, ".tmp", tmp, sizeof tmp);
    file_name(d, h->key, ".kvp", final, sizeof final);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) goto fail;
    if (write_all(fd, file, d->file_bytes) || fsync(fd)) {
        int saved = errno;
        close(fd);
        errno = saved;
        goto fail;
    }
    if (close(fd) || rename(tmp, final)) goto fail;
    int dfd = open(d->sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    snprintf(why, why_cap, "%s", strerror(errno));
    unlink(tmp);
    return -1;
}

/* ---- the writer */

static void *writer_main(void *arg) {
    kv_disk *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->head && !d->stop) pthread_cond_wait(&d->wake, &d->lock);
        if (!d->head) break;
        write_job *j = d->head;
        d->head = j->next;
        if (!d->head) d->tail = NULL;
        d->writing = true;
        file_header *h = (file_header *)j->file;
        /* Room in the budget first: least recently used files go. */
        bool room = true;
        while (d->bytes + d->file_bytes > d->budget_bytes)
            if (evict_lru_locked(d)) {
                room = false;
                break;
            }
        if (room) {
            d->bytes += d->file_bytes; /* reserved while it is written */
            d->files++;
        }
        pthread_mutex_unlock(&d->lock);
        char why[256] = "";
        int rc = -1;
        if (room) {
            h->payload_checksum = checksum(j->file + sizeof *h, d->file_bytes - sizeof *h);
            h->header_checksum = checksum(h, offsetof(file_header, header_checksum));
            rc = write_page_file(d, j->file, why, sizeof why);
        }
        pthread_mutex_lock(&d->lock);
        entry *e = index_find(d, h->key);
        if (rc == 0) {
            if (e) {
                e->state = ENTRY_ON_DISK;
                e->used_ns = now_ns();
            }
            d->st.written_pages++;
        } else {
            if (room) {
                d->bytes -= d->file_bytes;
                d->files--;
                d->st.write_errors++;
                if (d->st.write_errors <= 3 || d->st.write_errors % 1000 == 0)
                    log_warn("disk cache: cannot write a page file in %s (%s); serving from memory (%lld failed writes)",
                             d->sub, why, (long long)d->st.write_errors);
            } else {
                d->st.dropped_pages++;
            }
            if (e) index_remove(d, e);
        }
        d->queued--;
        d->writing = false;
        free(j->file);
        free(j);
        pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* ---- open / close */

/* Checks one file found on open: 0 when it is a good page file of this
 * folder (its header, size and name agree), else -1 with why. */
static int check_found_file(kv_disk *d, const char *path, const char *name, uint64_t key[2], uint64_t *mtime_ns,
                            const char **why) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "unreadable";
        return -1;
    }
    struct stat sb;
    file_header h;
    ssize_t n = fstat(fd, &sb) == 0 ? read_up_to(fd, (uint8_t *)&h, sizeof h) : -1;
    close(fd);
    if (n != (ssize_t)sizeof h) {
        *why = "truncated";
        return -1;
    }
    if ((*why = header_problem(d, &h))) return -1;
    if ((uint64_t)sb.st_size != d->file_bytes) {
        *why = (uint64_t)sb.st_size < d->file_bytes ? "truncated" : "of the wrong size";
        return -1;
    }
    char want[40];
    snprintf(want, sizeof want, "%016" PRIx64 "%016" PRIx64 ".kvp", h.key[0], h.key[1]);
    if (strcmp(want, name)) {
        *why = "named for another key";
        return -1;
    }
    key[0] = h.key[0];
    key[1] = h.key[1];
    *mtime_ns = (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec;
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Builds the index from the folder: unfinished writes and bad files go. */
static int scan_folder(kv_disk *d, larder_error *err) {
    DIR *dir = opendir(d->sub);
    if (!dir) return error_set(err, ERR_IO, "cannot read %s: %s", d->sub, strerror(errno));
    struct dirent *de;
    char path[4096];
    int rc = 0;
    uint64_t newest = 0;
    while ((de = readdir(dir)) && rc == 0) {
        const char *name = de->d_name;
        snprintf(path, sizeof path, "%s/%s", d->sub, name);
        if (ends_with(name, ".tmp")) {
            log_info("disk cache: removed an unfinished write %s", path);
            unlink(path);
            continue;
        }
        if (!ends_with(name, ".kvp")) continue; /* not ours */
        uint64_t key[2], mtime;
        const char *why = NULL;
        pthread_mutex_lock(&d->lock);
        bool known = false;
        if (check_found_file(d, path, name, key, &mtime, &why) == 0 && !(known = index_find(d, key) != NULL)) {
            entry *e = index_add(d, key, ENTRY_ON_DISK);
            if (!e) rc = error_set(err, ERR_NOMEM, "out of memory indexing %s", d->sub);
            else {
                e->used_ns = mtime;
                d->files++;
                d->bytes += d->file_bytes;
                if (mtime > newest) newest = mtime;
            }
        } else if (!known) {
            log_warn("disk cache: %s is %s; removed (never served)", path, why);
            unlink(path);
            d->st.removed_bad_files++;
        }
        pthread_mutex_unlock(&d->lock);
    }
    closedir(dir);
    pthread_mutex_lock(&d->lock);
    while (d->bytes > d->budget_bytes && evict_lru_locked(d) == 0) {}
    pthread_mutex_unlock(&d->lock);
    return rc;
}

kv_disk *kv_disk_open(const kv_disk_config *cfg, kv_pool *pool, larder_error *err) {
    const kv_pool_config *pc = kv_pool_get_config(pool);
    size_t file_bytes = sizeof(file_header) + (size_t)pc->page_tokens * sizeof(int32_t) + kv_pool_page_bytes(pool);
    if (!cfg->dir || !*cfg->dir) {
        error_set(err, ERR_INVALID, "--cache-dir is empty");
        return NULL;
    }
    if (cfg->budget_bytes < file_bytes) {
        error_set(err, ERR_INVALID, "--cache-disk-bytes %llu is smaller than one page file (%zu bytes)",
                  (unsigned long long)cfg->budget_bytes, file_bytes);
        return NULL;
    }
    if (mkdir(cfg->dir, 0700) && errno != EEXIST) {
        error_set(err, ERR_IO, "cannot create %s: %s", cfg->dir, strerror(errno));
        return NULL;
    }
    kv_disk *d = calloc(1, sizeof *d);
    if (!d) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    d->lock_fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->pool = pool;
    d->fingerprint = cfg->model_fingerprint;
    d->kv_type = pc->kv_type;
    d->page_tokens = pc->page_tokens;
    d->page_bytes = kv_pool_page_bytes(pool);
    d->file_bytes = file_bytes;
    d->budget_bytes = cfg->budget_bytes;
    d->seed[0] = hash_combine(hash_combine(cfg->model_fingerprint, d->kv_type), ((uint64_t)d->page_tokens << 32) ^ d->page_bytes);
    d->seed[1] = hash_combine(cfg->model_fingerprint ^ 0xA5A5A5A5A5A5A5A5ULL, d->page_bytes ^ ((uint64_t)d->kv_type << 40) ^ (uint64_t)d->page_tokens);
    size_t n = strlen(cfg->dir) + 96;
    char *lock_path = malloc(n);
    d->sub = malloc(n);
    d->read_buf = malloc(file_bytes + 1);
    if (!lock_path || !d->sub || !d->read_buf || index_grow(d)) {
        free(lock_path);
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(lock_path, n, "%s/lock", cfg->dir);
    snprintf(d->sub, n, "%s/%016" PRIx64 "-t%u-p%d-b%zu", cfg->dir, d->fingerprint, d->kv_type, d->page_tokens, d->page_bytes);
    d->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock_path);
    if (d->lock_fd < 0) {
        error_set(err, ERR_IO, "cannot open the lock of %s: %s", cfg->dir, strerror(errno));
        goto fail;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK) error_set(err, ERR_LIMIT, "the cache directory %s is in use by another larder process", cfg->dir);
        else error_set(err, ERR_IO, "cannot lock %s: %s", cfg->dir, strerror(errno));
        goto fail;
    }
    if (mkdir(d->sub, 0700) && errno != EEXIST) {
        error_set(err, ERR_IO, "cannot create %s: %s", d->sub, strerror(errno));
        goto fail;
    }
    if (scan_folder(d, err)) goto fail;
    if (pthread_create(&d->thread, NULL, writer_main, d)) {
        error_set(err, ERR_NOMEM, "cannot start the disk cache writer");
        goto fail;
    }
    d->thread_started = true;
    return d;
fail:
    kv_disk_close(d);
    return NULL;
}

void kv_disk_close(kv_disk *d) {
    if (!d) return;
    if (d->thread_started) {
        pthread_mutex_lock(&d->lock);
        d->stop = true; /* the writer finishes the queue first */
        pthread_cond_broadcast(&d->wake);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
    }
    while (d->head) {
        write_job *j = d->head;
        d->head = j->next;
        free(j->file);
        free(j);
    }
    if (d->lock_fd >= 0) close(d->lock_fd); /* releases the flock */
    pthread_cond_destroy(&d->wake);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->lock);
    free(d->tab);
    free(d->sub);
    free(d->read_buf);
    free(d);
}

/* ---- save */

int32_t kv_disk_save(kv_disk *d, const int32_t *tokens, int32_t n_pages, const uint32_t *pages) {
    int32_t P = d->page_tokens, queued = 0;
    uint64_t key[2] = {d->seed[0], d->seed[1]}, parent[2];
    backend *be = kv_pool_backend(d->pool);
    pthread_mutex_lock(&d->lock);
    for (int32_t i = 0; i < n_pages; i++) {
        parent[0] = key[0];
        parent[1] = key[1];
        chain_next(parent, tokens + (size_t)i * P, P, key);
        entry *e = index_find(d, key);
        if (e) {
            if (e->state == ENTRY_ON_DISK) e->used_ns = now_ns();
            continue;
        }
        if ((size_t)(d->queued + 1) * d->file_bytes > KV_DISK_QUEUE_BYTES && d->queued > 0) {
            d->st.dropped_pages += n_pages - i;
            break;
        }
        write_job *j = malloc(sizeof *j);
        uint8_t *file = malloc(d->file_bytes);
        if (!j || !file || !(e = index_add(d, key, ENTRY_QUEUED))) {
            free(j);
            free(file);
            d->st.dropped_pages += n_pages - i;
            break;
        }
        file_header *h = (file_header *)file;
        memset(h, 0, sizeof *h);
        memcpy(h->magic, FILE_MAGIC, sizeof FILE_MAGIC);
        h->version = KV_DISK_VERSION;
        h->header_bytes = sizeof *h;
        h->fingerprint = d->fingerprint;
        h->kv_type = d->kv_type;
        h->page_tokens = (uint32_t)P;
        h->page_bytes = d->page_bytes;
        memcpy(h->key, key, sizeof h->key);
        memcpy(h->parent, parent, sizeof h->parent);
        h->page_index = (uint32_t)i;
        memcpy(file + sizeof *h, tokens + (size_t)i * P, (size_t)P * sizeof *tokens);
        if (backend_kv_page_read(be, kv_pool_memory(d->pool), pages[i], file + sizeof *h + (size_t)P * sizeof *tokens, NULL)) {
            index_remove(d, e);
            free(j);
            free(file);
            d->st.dropped_pages += n_pages - i;
            break;
        }
        j->file = file;
        j->next = NULL;
        if (d->tail) d->tail->next = j;
        else d->head = j;
        d->tail = j;
        d->queued++;
        queued++;
    }
    if (queued) pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    return queued;
}

/* ---- restore */

/* Reads the page file of key into page pg, checking everything: 0, or -1
 * (the file was missing, or bad: then logged and removed). */
static int read_page_file(kv_disk *d, const uint64_t key[2], const uint64_t parent[2], int32_t index,
                          const int32_t *tokens, uint32_t pg) {
    char path[4096];
    file_name(d, key, ".kvp", path, sizeof path);
    const char *why = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read_up_to(fd, d->read_buf, d->file_bytes + 1) : -1;
    if (fd >= 0) close(fd);
    const file_header *h = (const file_header *)d->read_buf;
    const uint8_t *payload = d->read_buf + sizeof *h;
    size_t tokens_bytes = (size_t)d->page_tokens * sizeof *tokens;
    if (fd < 0) why = "missing";
    else if (n < 0) why = "unreadable";
    else if ((size_t)n != d->file_bytes) why = (size_t)n < d->file_bytes ? "truncated" : "of the wrong size";
    else if ((why = header_problem(d, h))) {}
    else if (memcmp(h->key, key, sizeof h->key) || memcmp(h->parent, parent, sizeof h->parent) || h->page_index != (uint32_t)index)
        why = "of another prefix";
    else if (h->payload_checksum != checksum(payload, d->file_bytes - sizeof *h)) why = "corrupt (payload checksum)";
    else if (memcmp(payload, tokens, tokens_bytes)) why = "of other tokens";
    if (!why) {
        backend *be = kv_pool_backend(d->pool);
        if (backend_kv_page_write(be, kv_pool_memory(d->pool), pg, payload + tokens_bytes, NULL) == 0) return 0;
        why = "not writable to the pool";
    }
    pthread_mutex_lock(&d->lock);
    entry *e = index_find(d, key);
    if (e && e->state == ENTRY_ON_DISK) {
        if (strcmp(why, "missing")) {
            log_warn("disk cache: %s is %s; removed (never served)", path, why);
            d->st.removed_bad_files++;
        }
        drop_file_locked(d, e);
    }
    pthread_mutex_unlock(&d->lock);
    return -1;
}

int32_t kv_disk_restore(kv_disk *d, radix_cache *rc, const int32_t *tokens, int32_t n_tokens,
                        double prefill_s_per_token, kv_disk_make_room_fn make_room, void *make_room_ctx,
                        int32_t *first_page) {
    int32_t P = d->page_tokens;
    int32_t limit = (n_tokens - 1) / P; /* whole pages before the last token (always computed) */
    if (limit <= 0) return 0;
    int32_t match_pages = (n_tokens - 1 + P - 1) / P;
    uint32_t *pages = malloc((size_t)match_pages * sizeof *pages);
    uint64_t (*keys)[2] = malloc((size_t)(limit + 1) * sizeof *keys);
    uint32_t *fresh = malloc((size_t)limit * sizeof *fresh);
    if (!pages || !keys || !fresh) {
        free(pages);
        free(keys);
        free(fresh);
        return 0;
    }
    radix_node *node = NULL;
    int32_t hit = radix_cache_match(rc, tokens, n_tokens - 1, pages, match_pages, &node);
    int32_t base = hit / P, k = 0, restored = 0;
    if (first_page) *first_page = base;
    keys[0][0] = d->seed[0];
    keys[0][1] = d->seed[1];
    for (int32_t i = 0; i < base; i++) chain_next(keys[0], tokens + (size_t)i * P, P, keys[0]);
    /* keys[j] is the key of the prefix of base + j pages */
    pthread_mutex_lock(&d->lock);
    for (int32_t i = base; i < limit; i++) {
        chain_next(keys[k], tokens + (size_t)i * P, P, keys[k + 1]);
        entry *e = index_find(d, keys[k + 1]);
        if (!e || e->state != ENTRY_ON_DISK) break;
        k++;
    }
    bool slower = k > 0 && prefill_s_per_token > 0 && d->st.read_s_per_page > 0 &&
                  d->st.read_s_per_page >= prefill_s_per_token * P;
    if (slower) d->st.restore_skipped++;
    pthread_mutex_unlock(&d->lock);
    if (k > 0 && !slower) {
        radix_cache_pin(rc, node); /* the matched prefix stays while room is made */
        kv_pool *pool = d->pool;
        if (kv_pool_pages_free(pool) < k && make_room) make_room(make_room_ctx, k);
        double t0 = (double)timing_now_us();
        for (int32_t j = 0; j < k; j++) {
            uint32_t pg;
            if (kv_pool_alloc(pool, &pg, NULL)) break;
            if (read_page_file(d, keys[j + 1], keys[j], base + j, tokens + (size_t)(base + j) * P, pg)) {
                kv_pool_unref(pool, pg);
                break;
            }
            fresh[restored++] = pg;
        }
        double dt_s = ((double)timing_now_us() - t0) / 1e6;
        int32_t n_read = restored;
        if (n_read > 0) {
            uint32_t *all = malloc((size_t)(base + n_read) * sizeof *all);
            bool cached = false;
            if (all) {
                memcpy(all, pages, (size_t)base * sizeof *all);
                memcpy(all + base, fresh, (size_t)n_read * sizeof *all);
                cached = radix_cache_insert(rc, tokens, (base + n_read) * P, all, false, NULL, NULL) >= 0;
                free(all);
            }
            /* the tree took its own references; ours go (freeing the pages if it did not) */
            for (int32_t j = 0; j < n_read; j++) kv_pool_unref(pool, fresh[j]);
            if (!cached) restored = 0;
        }
        radix_cache_unpin(rc, node);
        pthread_mutex_lock(&d->lock);
        if (restored > 0) {
            double per = dt_s / restored;
            d->st.read_s_per_page = d->st.read_s_per_page > 0 ? 0.7 * d->st.read_s_per_page + 0.3 * per : per;
            d->st.restored_pages += restored;
            d->st.restores++;
            uint64_t t = now_ns();
            for (int32_t j = 1; j <= restored; j++) {
                entry *e = index_find(d, keys[j]);
                if (e) e->used_ns = t;
            }
        }
        pthread_mutex_unlock(&d->lock);
    }
    free(pages);
    free(keys);
    free(fresh);
    return restored * P;
}

/* ---- queries */

void kv_disk_flush(kv_disk *d) {
    pthread_mutex_lock(&d->lock);
    while (d->head || d->writing) pthread_cond_wait(&d->idle, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

kv_disk_stats kv_disk_get_stats(kv_disk *d) {
    pthread_mutex_lock(&d->lock);
    kv_disk_stats st = d->st;
    st.files = d->files;
    st.bytes = (int64_t)d->bytes;
    st.budget_bytes = (int64_t)d->budget_bytes;
    st.queued_pages = d->queued;
    pthread_mutex_unlock(&d->lock);
    return st;
}
