/*
 * platform.c — the OS-specific calls behind platform.h, one #if branch per
 * system and the portable fallback.
 */
#include "base/platform.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(LARDER_PLATFORM_FALLBACK)
#define PLATFORM_LINUX 0
#define PLATFORM_MACOS 0
#elif defined(__linux__)
#define PLATFORM_LINUX 1
#define PLATFORM_MACOS 0
#elif defined(__APPLE__)
#define PLATFORM_LINUX 0
#define PLATFORM_MACOS 1
#else
#define PLATFORM_LINUX 0
#define PLATFORM_MACOS 0
#endif

#if PLATFORM_MACOS
#include <mach-o/dyld.h>
#include <mach/mach.h>
#include <stdlib.h>
#endif

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

/* The clock of the condition variables: steady where it can be chosen. */
#if PLATFORM_LINUX
#define COND_CLOCK CLOCK_MONOTONIC
#else
#define COND_CLOCK CLOCK_REALTIME
#endif

int platform_cond_init(pthread_cond_t *c) {
#if PLATFORM_LINUX
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, COND_CLOCK);
    int rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
#else
    return pthread_cond_init(c, NULL); /* CLOCK_REALTIME, the POSIX default */
#endif
}

void platform_cond_deadline(struct timespec *ts, int64_t timeout_ms) {
    clock_gettime(COND_CLOCK, ts);
    ts->tv_sec += (time_t)(timeout_ms / 1000);
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void platform_resident_bytes(int64_t *rss_bytes, int64_t *peak_bytes) {
    *rss_bytes = *peak_bytes = 0;
#if PLATFORM_LINUX
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    long long kb;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) *rss_bytes = kb * 1024;
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) *peak_bytes = kb * 1024;
    }
    fclose(f);
#elif PLATFORM_MACOS
    mach_task_basic_info_data_t info;
    mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
    if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, (task_info_t)&info, &count) == KERN_SUCCESS) {
        *rss_bytes = (int64_t)info.resident_size;
        *peak_bytes = (int64_t)info.resident_size_max;
    }
#else
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) *peak_bytes = (int64_t)ru.ru_maxrss * 1024; /* kB on Linux and the BSDs */
#endif
}

int64_t platform_executable_path(char *buf, size_t cap) {
    if (cap == 0) return -1;
#if PLATFORM_LINUX
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0 || (size_t)n >= cap - 1) return -1;
    buf[n] = 0;
    return n;
#elif PLATFORM_MACOS
    uint32_t size = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    char *raw = malloc(size);
    if (!raw) return -1;
    char *real = NULL;
    if (_NSGetExecutablePath(raw, &size) == 0) real = realpath(raw, NULL);
    free(raw);
    if (!real) return -1;
    size_t n = strlen(real);
    int64_t rc = -1;
    if (n < cap) memcpy(buf, real, n + 1), rc = (int64_t)n;
    free(real);
    return rc;
#else
    (void)buf;
    return -1;
#endif
}

int platform_release_pages(void *addr, size_t bytes) {
#if PLATFORM_LINUX
    return madvise(addr, bytes, MADV_DONTNEED) == 0 ? 0 : -1;
#else
    /* A fresh anonymous mapping over the range drops its pages at once on
     * every POSIX system (macOS's MADV_DONTNEED / MADV_FREE only mark them
     * reclaimable, so the resident size would not drop). */
    void *p = mmap(addr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    return p == addr ? 0 : -1;
#endif
}
