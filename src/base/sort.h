/*
 * sort.h — sorting with a context pointer for the comparison, the same on
 * every system (glibc's qsort_r and macOS's take their arguments in
 * different orders; C11 has none).
 */
#ifndef LARDER_BASE_SORT_H
#define LARDER_BASE_SORT_H

#include <stddef.h>

/* Sorts n elements of `size` bytes at base into ascending order of
 * cmp(a, b, ctx) (negative, zero, positive as qsort's). In place, O(n log n)
 * (heapsort: no allocation), not stable. */
void sort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx);

#endif
