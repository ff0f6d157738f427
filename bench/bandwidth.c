/*
 * bandwidth.c — memory read bandwidth with N threads: the ceiling that decode
 * (bound by reading every weight once per token) is measured against.
 *
 * Each thread sums its own slice of a buffer much larger than the caches
 * (default 1 GiB in all), several passes; the best pass is reported in GB/s
 * (1e9 bytes). Compiled with -O3 -march=native by bench/run.sh.
 *
 * usage: bandwidth [threads] [MiB]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} slice;

static void *reader(void *arg) {
    slice *s = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= s->n; i += 4) { /* four independent chains keep loads in flight */
        a += s->p[i];
        b += s->p[i + 1];
        c += s->p[i + 2];
        d += s->p[i + 3];
    }
    s->sum = a + b + c + d;
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    if (threads < 1 || threads > 256 || mib < 64) {
        fprintf(stderr, "usage: bandwidth [threads] [MiB >= 64]\n");
        return 1;
    }
    size_t bytes = mib << 20, n = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = i; /* touch every page */
    double best = 0;
    uint64_t check = 0;
    for (int pass = 0; pass < 5; pass++) {
        pthread_t t[256];
        slice s[256];
        double t0 = now_s();
        for (int k = 0; k < threads; k++) {
            s[k] = (slice){buf + n / threads * k, n / threads, 0};
            pthread_create(&t[k], NULL, reader, &s[k]);
        }
        for (int k = 0; k < threads; k++) {
            pthread_join(t[k], NULL);
            check += s[k].sum;
        }
        double gbs = (double)bytes / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("{\"threads\":%d,\"bytes\":%zu,\"read_gb_s\":%.2f,\"checksum\":%llu}\n", threads, bytes, best,
           (unsigned long long)(check & 0xffff));
    free(buf);
    return 0;
}
