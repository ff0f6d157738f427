/*
 * sort.c — heapsort with a context pointer (see sort.h).
 */
#include "base/sort.h"

#include <stdint.h>

static void swap_bytes(uint8_t *a, uint8_t *b, size_t size) {
    for (size_t i = 0; i < size; i++) {
        uint8_t t = a[i];
        a[i] = b[i], b[i] = t;
    }
}

/* Moves element i down the max-heap of the first n elements. */
static void sift_down(uint8_t *p, size_t i, size_t n, size_t size, int (*cmp)(const void *, const void *, void *),
                      void *ctx) {
    for (;;) {
        size_t big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cmp(p + l * size, p + big * size, ctx) > 0) big = l;
        if (r < n && cmp(p + r * size, p + big * size, ctx) > 0) big = r;
        if (big == i) return;
        swap_bytes(p + i * size, p + big * size, size);
        i = big;
    }
}

void sort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx) {
    uint8_t *p = base;
    if (n < 2 || size == 0) return;
    for (size_t i = n / 2; i-- > 0;) sift_down(p, i, n, size, cmp, ctx);
    for (size_t end = n - 1; end > 0; end--) {
        swap_bytes(p, p + end * size, size);
        sift_down(p, 0, end, size, cmp, ctx);
    }
}
