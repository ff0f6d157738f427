/*
 * test_kv_disk.c — the disk tier (src/kv/kv_disk.c) over a real pool and
 * radix cache: pages saved by one process come back byte for byte in the
 * next (a fresh pool, cache and kv_disk on the same folder); a truncated,
 * corrupt, foreign-model, foreign-version or unfinished file is detected,
 * removed and never served; the folder is locked to one opener; the byte
 * budget is never exceeded; a restore measured slower than computing is
 * skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/kv_disk.h"
#include "kv/kv_pool.h"
#include "kv/radix_cache.h"
#include "tensor/dtype.h"
#include "test_backend.h"

enum { P = 16, N_PAGES = 10, N_TOKENS = N_PAGES * P + 5 };
static const uint64_t FP = 0x1234567890ABCDEFULL;

static backend *g_be;
static char g_dir[256];

/* One "process": a pool, a cache over it and the disk tier. */
typedef struct proc {
    kv_pool *pool;
    radix_cache *rc;
    kv_disk *disk;
} proc;

static void hook_ref(void *ctx, uint32_t page) { kv_pool_ref(ctx, page); }
static void hook_unref(void *ctx, uint32_t page) { kv_pool_unref(ctx, page); }
static int hook_count(void *ctx, uint32_t page) { return kv_pool_refcount(ctx, page); }

static kv_pool *make_pool(void) {
    kv_pool_config c = {.n_layers = 2, .n_kv_heads = 2, .head_dim = 8, .page_tokens = P, .kv_type = TYPE_F16,
                        .budget_bytes = 64 * 4096, .low_water_pages = -1};
    larder_error err = {0};
    kv_pool *p = kv_pool_create(&c, g_be, &err);
    if (!p) fail_msg("%s", err.message);
    return p;
}

static size_t file_bytes(const kv_pool *pool) { return 96 + P * sizeof(int32_t) + kv_pool_page_bytes(pool); }

static int proc_open(proc *pr, uint64_t fp, uint64_t budget, larder_error *err) {
    pr->pool = make_pool();
    pr->rc = radix_cache_create(P, (radix_cache_hooks){hook_ref, hook_unref, hook_count, pr->pool}, err);
    assert_non_null(pr->rc);
    kv_disk_config dc = {g_dir, budget ? budget : (uint64_t)1 << 30, fp};
    pr->disk = kv_disk_open(&dc, pr->pool, err);
    return pr->disk ? 0 : -1;
}

static void proc_close(proc *pr) {
    kv_disk_close(pr->disk);
    radix_cache_destroy(pr->rc);
    kv_pool_free(pr->pool);
    memset(pr, 0, sizeof *pr);
}

/* The byte pattern of page i of a conversation. */
static uint8_t pattern(int32_t page, size_t off) { return (uint8_t)(page * 37 + off * 11 + 1); }

static void fill_tokens(int32_t *t, int32_t n, uint32_t seed) {
    for (int32_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (int32_t)((seed >> 8) % 50000);
    }
}

/* Computes (fills) N_PAGES pages of tokens in pr's pool and saves them
 * (expect_queued of them new; -1: any); the pool pages are released after
 * (only the disk keeps them). */
static void save_pages(proc *pr, const int32_t *tokens, int32_t expect_queued) {
    uint32_t pages[N_PAGES];
    size_t pb = kv_pool_page_bytes(pr->pool);
    uint8_t *buf = malloc(pb);
    for (int32_t i = 0; i < N_PAGES; i++) {
        assert_int_equal(kv_pool_alloc(pr->pool, &pages[i], NULL), 0);
        for (size_t o = 0; o < pb; o++) buf[o] = pattern(i, o);
        assert_int_equal(backend_kv_page_write(g_be, kv_pool_memory(pr->pool), pages[i], buf, NULL), 0);
    }
    int32_t queued = kv_disk_save(pr->disk, tokens, N_PAGES, pages);
    if (expect_queued >= 0) assert_int_equal(queued, expect_queued);
    assert_int_equal(kv_disk_save(pr->disk, tokens, N_PAGES, pages), 0); /* queued or written already */
    kv_disk_flush(pr->disk);
    for (int32_t i = 0; i < N_PAGES; i++) kv_pool_unref(pr->pool, pages[i]);
    free(buf);
}

static void save_conversation(proc *pr, const int32_t *tokens) { save_pages(pr, tokens, N_PAGES); }

/* Restores tokens into pr's cache and checks what came back: the count, and
 * every restored page's bytes. Returns the tokens restored. */
static int32_t restore_and_check(proc *pr, const int32_t *tokens, int32_t n_tokens) {
    int32_t got = kv_disk_restore(pr->disk, pr->rc, tokens, n_tokens, 0, NULL, NULL, NULL);
    assert_int_equal(got % P, 0);
    uint32_t pages[N_PAGES + 1];
    int32_t hit = radix_cache_match(pr->rc, tokens, n_tokens - 1, pages, N_PAGES + 1, NULL);
    assert_true(hit >= got);
    size_t pb = kv_pool_page_bytes(pr->pool);
    uint8_t *buf = malloc(pb);
    for (int32_t i = 0; i < got / P; i++) {
        assert_int_equal(backend_kv_page_read(g_be, kv_pool_memory(pr->pool), pages[i], buf, NULL), 0);
        for (size_t o = 0; o < pb; o++)
            if (buf[o] != pattern(i, o)) fail_msg("page %d byte %zu differs", i, o);
    }
    free(buf);
    larder_error err = {0};
    assert_int_equal(radix_cache_check(pr->rc, &err), 0);
    return got;
}

/* The model's folder (the one subfolder of g_dir) and its page files. */
static void model_folder(char *out, size_t cap) {
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && strcmp(de->d_name, "lock")) snprintf(out, cap, "%s/%s", g_dir, de->d_name);
    closedir(d);
    assert_true(out[0]);
}

static int list_files(const char *folder, const char *suffix, char names[][300], int max) {
    DIR *d = opendir(folder);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), m = strlen(suffix);
        if (l > m && !strcmp(de->d_name + l - m, suffix) && n < max) snprintf(names[n++], 300, "%s/%s", folder, de->d_name);
    }
    closedir(d);
    return n;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
    (void)state;
    g_be = test_backend_create(1);
    return 0;
}
static int teardown(void **state) {
    (void)state;
    backend_free(g_be);
    return 0;
}
static int fresh_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/larder-kvdisk-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(g_dir));
    return 0;
}
static int remove_dir(void **state) {
    (void)state;
    rm_rf(g_dir);
    return 0;
}

/* Saved by one process, restored by the next, byte for byte; a cache that
 * already holds the first pages gets only the rest from disk. */
static void test_pages_survive_a_restart(void **state) {
    (void)state;
    int32_t tokens[N_TOKENS];
    fill_tokens(tokens, N_TOKENS, 1);
    proc a, b;
    larder_error err = {0};
    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    save_conversation(&a, tokens);
    kv_disk_stats st = kv_disk_get_stats(a.disk);
    assert_int_equal(st.files, N_PAGES);
    assert_int_equal(st.written_pages, N_PAGES);
    assert_int_equal(st.bytes, (int64_t)(N_PAGES * file_bytes(a.pool)));
    proc_close(&a);
    assert_int_equal(proc_open(&b, FP, 0, &err), 0);
    assert_int_equal(kv_disk_get_stats(b.disk).files, N_PAGES);
    /* a prompt that shares 7 pages and then differs: 7 pages restored */
    int32_t other[N_TOKENS];
    memcpy(other, tokens, sizeof other);
    other[7 * P + 3] ^= 1;
    assert_int_equal(restore_and_check(&b, other, N_TOKENS), 7 * P);
    /* the whole prompt: the 3 pages after the 7 in memory come from disk */
    assert_int_equal(kv_disk_restore(b.disk, b.rc, tokens, N_TOKENS, 0, NULL, NULL, NULL), 3 * P);
    assert_int_equal(restore_and_check(&b, tokens, N_TOKENS), 0); /* all in memory now */
    uint32_t pages[N_PAGES + 1];
    assert_int_equal(radix_cache_match(b.rc, tokens, N_TOKENS - 1, pages, N_PAGES + 1, NULL), N_PAGES * P);
    st = kv_disk_get_stats(b.disk);
    assert_int_equal(st.restored_pages, 10);
    assert_int_equal(st.removed_bad_files, 0);
    /* another model's process finds nothing */
    proc_close(&b);
    assert_int_equal(proc_open(&b, FP + 1, 0, &err), 0);
    assert_int_equal(kv_disk_restore(b.disk, b.rc, tokens, N_TOKENS, 0, NULL, NULL, NULL), 0);
    proc_close(&b);
}

static void write_bytes_at(const char *path, long off, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* Every kind of bad file is removed and never served: each is the file of
 * one page of the conversation, so the restore must stop right before it. */
static void test_bad_files_are_removed_never_served(void **state) {
    (void)state;
    int32_t tokens[N_TOKENS];
    fill_tokens(tokens, N_TOKENS, 2);
    proc a;
    larder_error err = {0};
    /* another model's file, with a valid checksum, for the foreign case */
    assert_int_equal(proc_open(&a, FP ^ 0xFF, 0, &err), 0);
    save_conversation(&a, tokens);
    proc_close(&a);
    char foreign_folder[600], foreign[4][300];
    model_folder(foreign_folder, sizeof foreign_folder);
    assert_int_equal(list_files(foreign_folder, ".kvp", foreign, 4), 4);
    char foreign_copy[300];
    snprintf(foreign_copy, sizeof foreign_copy, "%s", foreign[0]);
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "mv '%s' /tmp/larder-kvdisk-foreign-%d.kvp && rm -rf '%s'", foreign_copy, (int)getpid(), foreign_folder);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    save_conversation(&a, tokens);
    proc_close(&a);
    char folder[600], names[N_PAGES + 2][300];
    model_folder(folder, sizeof folder);
    assert_int_equal(list_files(folder, ".kvp", names, N_PAGES + 2), N_PAGES);
    /* Damage one file in each way in turn (a different one each time), restart,
     * and see it removed and the restore stop before its page. */
    const char *kinds[] = {"truncated", "header", "version", "payload", "foreign", "extended"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        assert_int_equal(proc_open(&a, FP, 0, &err), 0);
        save_pages(&a, tokens, k == 0 ? 0 : 1); /* rewrites the one removed last time */
        int n = list_files(folder, ".kvp", names, N_PAGES + 2);
        assert_int_equal(n, N_PAGES);
        proc_close(&a);
        /* which page the damaged file holds varies with its name */
        const char *victim = names[k % N_PAGES];
        struct stat sb;
        assert_int_equal(stat(victim, &sb), 0);
        if (!strcmp(kinds[k], "truncated")) {
            assert_int_equal(truncate(victim, sb.st_size - 100), 0);
        } else if (!strcmp(kinds[k], "extended")) {
            FILE *f = fopen(victim, "ab");
            fputc('x', f);
            fclose(f);
        } else if (!strcmp(kinds[k], "header")) {
            uint64_t junk = 0x5555;
            write_bytes_at(victim, 16, &junk, sizeof junk); /* the fingerprint, without fixing the checksum */
        } else if (!strcmp(kinds[k], "version")) {
            uint32_t v = KV_DISK_VERSION + 1;
            write_bytes_at(victim, 8, &v, sizeof v);
        } else if (!strcmp(kinds[k], "payload")) {
            uint8_t x = 0xEE;
            write_bytes_at(victim, sb.st_size - 7, &x, 1); /* found only when read back */
        } else { /* foreign: another model's valid file under this file's name */
            snprintf(cmd, sizeof cmd, "cp /tmp/larder-kvdisk-foreign-%d.kvp '%s'", (int)getpid(), victim);
            assert_int_equal(system(cmd), 0);
        }
        assert_int_equal(proc_open(&a, FP, 0, &err), 0);
        kv_disk_stats st = kv_disk_get_stats(a.disk);
        bool at_open = strcmp(kinds[k], "payload") != 0;
        assert_int_equal(st.removed_bad_files, at_open ? 1 : 0);
        assert_int_equal(st.files, at_open ? N_PAGES - 1 : N_PAGES);
        /* the restore gives exactly the pages before the bad one, all correct */
        int32_t got = restore_and_check(&a, tokens, N_TOKENS);
        assert_true(got < N_PAGES * P);
        st = kv_disk_get_stats(a.disk);
        assert_int_equal(st.removed_bad_files, 1);
        assert_int_equal(access(victim, F_OK), -1); /* removed */
        assert_int_equal(st.files, N_PAGES - 1);
        proc_close(&a);
    }
    /* an unfinished write is removed on open */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/00000000000000000000000000000001.tmp", folder);
    FILE *f = fopen(tmp, "wb");
    fputs("half a page", f);
    fclose(f);
    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    proc_close(&a);
    snprintf(cmd, sizeof cmd, "rm -f /tmp/larder-kvdisk-foreign-%d.kvp", (int)getpid());
    assert_int_equal(system(cmd), 0);
}

static void test_folder_is_locked_to_one_process(void **state) {
    (void)state;
    proc a, b;
    larder_error err = {0};
    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    assert_int_equal(proc_open(&b, FP, 0, &err), -1);
    assert_int_equal(err.code, ERR_LIMIT);
    radix_cache_destroy(b.rc);
    kv_pool_free(b.pool);
    proc_close(&a);
    assert_int_equal(proc_open(&b, FP, 0, &err), 0);
    proc_close(&b);
    /* a budget smaller than one file is refused */
    assert_int_equal(proc_open(&b, FP, 100, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    radix_cache_destroy(b.rc);
    kv_pool_free(b.pool);
}

/* A budget of 4 files: three conversations of 10 pages leave at most 4
 * files, never more bytes than the budget, and the newest pages stay. */
static void test_budget_never_exceeded(void **state) {
    (void)state;
    proc a;
    larder_error err = {0};
    kv_pool *probe = make_pool();
    uint64_t budget = 4 * file_bytes(probe) + 10;
    kv_pool_free(probe);
    assert_int_equal(proc_open(&a, FP, budget, &err), 0);
    int32_t tokens[N_TOKENS];
    for (uint32_t c = 0; c < 3; c++) {
        fill_tokens(tokens, N_TOKENS, 10 + c);
        save_conversation(&a, tokens);
        kv_disk_stats st = kv_disk_get_stats(a.disk);
        assert_true((uint64_t)st.bytes <= budget);
        assert_int_equal(st.files, 4);
    }
    kv_disk_stats st = kv_disk_get_stats(a.disk);
    assert_int_equal(st.evicted_files, 30 - 4);
    char folder[600], names[40][300];
    model_folder(folder, sizeof folder);
    assert_int_equal(list_files(folder, ".kvp", names, 40), 4);
    proc_close(&a);
    /* reopened with a smaller budget: trimmed to it */
    assert_int_equal(proc_open(&a, FP, budget / 2, &err), 0);
    assert_int_equal(kv_disk_get_stats(a.disk).files, 2);
    assert_int_equal(list_files(folder, ".kvp", names, 40), 2);
    proc_close(&a);
}

/* Once reading has been measured, a prefill rate faster than it skips the
 * restore (recomputing is cheaper); a slow one restores. */
static void test_restore_only_when_cheaper(void **state) {
    (void)state;
    int32_t tokens[N_TOKENS];
    fill_tokens(tokens, N_TOKENS, 5);
    proc a;
    larder_error err = {0};
    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    save_conversation(&a, tokens);
    proc_close(&a);
    assert_int_equal(proc_open(&a, FP, 0, &err), 0);
    int32_t part[4 * P + 1];
    memcpy(part, tokens, sizeof part);
    assert_int_equal(kv_disk_restore(a.disk, a.rc, part, 4 * P + 1, 0, NULL, NULL, NULL), 4 * P); /* unknown rates: read */
    kv_disk_stats st = kv_disk_get_stats(a.disk);
    assert_true(st.read_s_per_page > 0);
    assert_int_equal(kv_disk_restore(a.disk, a.rc, tokens, N_TOKENS, 1e-15, NULL, NULL, NULL), 0); /* compute is faster */
    assert_int_equal(kv_disk_get_stats(a.disk).restore_skipped, 1);
    assert_int_equal(kv_disk_restore(a.disk, a.rc, tokens, N_TOKENS, 1.0, NULL, NULL, NULL), 6 * P); /* 1 s a token: read */
    proc_close(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pages_survive_a_restart, fresh_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_files_are_removed_never_served, fresh_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_folder_is_locked_to_one_process, fresh_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_budget_never_exceeded, fresh_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_restore_only_when_cheaper, fresh_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
