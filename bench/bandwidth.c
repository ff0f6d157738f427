/*
 * bandwidth.c — memory read bandwidth with N threads: the ceiling that decode
 * (bound by reading every weight once per token) is measured against.
 *
 * Each thread sums its own slice of a buffer much larger than the caches
 * (default 1 GiB in all). One core reading one sequential stream does not
 * reach the memory system's ceiling (its hardware prefetcher keeps too few
 * lines in flight), so each slice is read as S streams in lockstep (S
 * sub-slices, 64 bytes of each per step), for S = 1, 2, 4, 8, 16; the result
 * is the best pass (of PASSES) over all S, in GB/s (1e9 bytes), with the
 * best of each S alongside. Compiled with -O3 -march=native by bench/run.sh.
 *
 * usage: bandwidth [threads] [MiB]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256
#define MAX_STREAMS 16
#define LINE_WORDS 8 /* uint64 words per 64-byte cache line */
#define PASSES 4

typedef struct {
    const uint64_t *p; /* the slice: n words */
    size_t n;
    int streams;
    uint64_t sum;
} slice;

static void *reader(void *arg) {
    slice *s = arg;
    int S = s->streams;
    /* words per stream, whole lines */
    size_t m = s->n / (size_t)S / LINE_WORDS * LINE_WORDS;
    uint64_t acc[MAX_STREAMS][LINE_WORDS];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < m; i += LINE_WORDS)
        for (int k = 0; k < S; k++) {
            const uint64_t *q = s->p + (size_t)k * m + i;
            for (int j = 0; j < LINE_WORDS; j++) acc[k][j] += q[j]; /* one line of stream k */
        }
    uint64_t t = 0;
    for (int k = 0; k < S; k++)
        for (int j = 0; j < LINE_WORDS; j++) t += acc[k][j];
    s->sum = t;
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One pass: every thread reads its slice as `streams` streams; GB/s, or -1
 * when a thread cannot start. */
static double pass_gb_s(const uint64_t *buf, size_t n, int threads, int streams, uint64_t *check) {
    pthread_t t[MAX_THREADS];
    slice s[MAX_THREADS];
    size_t per = n / (size_t)threads;
    double t0 = now_s();
    for (int k = 0; k < threads; k++) {
        s[k] = (slice){buf + per * (size_t)k, per, streams, 0};
        if (pthread_create(&t[k], NULL, reader, &s[k]) != 0) {
            for (int j = 0; j < k; j++) pthread_join(t[j], NULL);
            return -1;
        }
    }
    for (int k = 0; k < threads; k++) {
        pthread_join(t[k], NULL);
        *check += s[k].sum;
    }
    size_t read = per / (size_t)streams / LINE_WORDS * LINE_WORDS * (size_t)streams * (size_t)threads * 8;
    return (double)read / (now_s() - t0) / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    if (threads < 1 || threads > MAX_THREADS || mib < 64 || mib > (1L << 20)) {
        fprintf(stderr, "usage: bandwidth [threads 1-%d] [MiB 64-1048576]\n", MAX_THREADS);
        return 1;
    }
    size_t bytes = (size_t)mib << 20, n = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) {
        fprintf(stderr, "bandwidth: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = i; /* touch every page */
    double best = 0;
    uint64_t check = 0;
    char per_streams[256] = "";
    size_t used = 0;
    for (int streams = 1; streams <= MAX_STREAMS; streams *= 2) {
        double best_s = 0;
        for (int p = 0; p < PASSES; p++) {
            double g = pass_gb_s(buf, n, threads, streams, &check);
            if (g < 0) {
                fprintf(stderr, "bandwidth: cannot start threads\n");
                free(buf);
                return 1;
            }
            if (g > best_s) best_s = g;
        }
        if (best_s > best) best = best_s;
        int w = snprintf(per_streams + used, sizeof per_streams - used, "%s\"%d\":%.2f", used ? "," : "", streams, best_s);
        if (w > 0 && (size_t)w < sizeof per_streams - used) used += (size_t)w;
    }
    printf("{\"threads\":%d,\"bytes\":%zu,\"read_gb_s\":%.2f,\"by_streams\":{%s},\"checksum\":%llu}\n", threads, bytes,
           best, per_streams, (unsigned long long)(check & 0xffff));
    free(buf);
    return 0;
}
