/*
 * cpu_kv_memory.c — KV page memory on the host, for src/kv's page pool.
 *
 * The region is address space reserved once for every page
 * (MAP_NORESERVE: nothing committed); a page's memory is committed by the
 * OS when it is first written. A page released by the pool goes back to the
 * OS at once (platform_release_pages: madvise MADV_DONTNEED on Linux, a
 * fresh mapping over it elsewhere), so the process's resident size tells
 * the truth about what the pool holds; the pool decides which freed pages
 * stay warm (it does not release those). Each page is rounded up to the OS
 * page size, so one page can be handed back on its own.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/platform.h"

#ifndef MAP_NORESERVE /* a hint; systems without it reserve lazily anyway */
#define MAP_NORESERVE 0
#endif
#include <stdlib.h>

#include "backend/cpu/cpu_backend_internal.h"

size_t cpu_kv_page_stride(const backend *b, size_t page_bytes) {
    (void)b;
    long os_page = sysconf(_SC_PAGESIZE);
    size_t osp = os_page > 0 ? (size_t)os_page : 4096u;
    return (page_bytes + osp - 1) / osp * osp;
}

backend_kv *cpu_kv_create(backend *b, const backend_kv_layout *layout, uint32_t n_pages, larder_error *err) {
    size_t stride = cpu_kv_page_stride(b, layout->page_bytes);
    if (n_pages == 0 || stride == 0 || (size_t)n_pages > SIZE_MAX / stride) {
        error_set(err, ERR_INVALID, "kv memory: %u pages of %zu bytes", n_pages, stride);
        return NULL;
    }
    backend_kv *m = calloc(1, sizeof *m);
    if (!m) {
        error_set(err, ERR_NOMEM, "kv memory: out of memory");
        return NULL;
    }
    void *base = mmap(NULL, (size_t)n_pages * stride, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(m);
        error_set(err, ERR_NOMEM, "kv memory: cannot reserve %zu bytes", (size_t)n_pages * stride);
        return NULL;
    }
    m->layout = *layout;
    m->base = base;
    m->stride_bytes = stride;
    m->head_bytes = (size_t)layout->page_tokens * layout->row_bytes;
    m->n_pages = n_pages;
    return m;
}

void cpu_kv_free(backend *b, backend_kv *m) {
    (void)b;
    munmap(m->base, (size_t)m->n_pages * m->stride_bytes);
    free(m);
}

void cpu_kv_page_release(backend *b, backend_kv *m, uint32_t page) {
    (void)b;
    if (page < m->n_pages) platform_release_pages(m->base + (size_t)page * m->stride_bytes, m->stride_bytes);
}

int cpu_kv_page_copy(backend *b, backend_kv *m, uint32_t dst, uint32_t src, larder_error *err) {
    (void)b;
    if (dst >= m->n_pages || src >= m->n_pages)
        return error_set(err, ERR_INVALID, "kv memory: page copy %u <- %u out of %u pages", dst, src, m->n_pages);
    if (dst != src)
        memcpy(m->base + (size_t)dst * m->stride_bytes, m->base + (size_t)src * m->stride_bytes, m->layout.page_bytes);
    return 0;
}

int cpu_kv_page_read(backend *b, const backend_kv *m, uint32_t page, void *host_dst, larder_error *err) {
    (void)b;
    if (page >= m->n_pages) return error_set(err, ERR_INVALID, "kv memory: page %u out of %u", page, m->n_pages);
    memcpy(host_dst, m->base + (size_t)page * m->stride_bytes, m->layout.page_bytes);
    return 0;
}

int cpu_kv_page_write(backend *b, backend_kv *m, uint32_t page, const void *host_src, larder_error *err) {
    (void)b;
    if (page >= m->n_pages) return error_set(err, ERR_INVALID, "kv memory: page %u out of %u", page, m->n_pages);
    memcpy(m->base + (size_t)page * m->stride_bytes, host_src, m->layout.page_bytes);
    return 0;
}
