/*
 * platform.h — the few things larder needs that operating systems provide
 * differently (Linux, macOS, other POSIX systems), each with a portable
 * fallback, so that no Linux-only call is made without one.
 *
 *   Linux     /proc/self/status, /proc/self/exe, madvise(MADV_DONTNEED),
 *             condition variables on CLOCK_MONOTONIC
 *   macOS     mach task_info, _NSGetExecutablePath, anonymous memory
 *             remapped in place, condition variables on CLOCK_REALTIME
 *             (no pthread_condattr_setclock there)
 *   other     getrusage, no executable path, remapping, CLOCK_REALTIME
 *
 * Building with -DLARDER_PLATFORM_FALLBACK selects the "other" branch on
 * any system, so the fallbacks can be tested on Linux.
 */
#ifndef LARDER_BASE_PLATFORM_H
#define LARDER_BASE_PLATFORM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Initialises c for timed waits against platform_cond_deadline (a steady
 * clock where the system allows it). Returns pthread_cond_init's result. */
int platform_cond_init(pthread_cond_t *c);

/* *ts = now + timeout_ms in the clock of platform_cond_init's condition
 * variables (timeout_ms >= 0). */
void platform_cond_deadline(struct timespec *ts, int64_t timeout_ms);

/* The process's resident size and its peak, in bytes; 0 where the system
 * does not tell. */
void platform_resident_bytes(int64_t *rss_bytes, int64_t *peak_bytes);

/* The running executable's absolute path into buf (cap bytes, NUL
 * terminated). Returns its length, or -1 when unknown or longer than cap-1. */
int64_t platform_executable_path(char *buf, size_t cap);

/* Gives the memory of [addr, addr + bytes) back to the OS (it reads as
 * zero afterwards) while keeping the range mapped read-write. addr and
 * bytes are multiples of the OS page size, inside a private anonymous
 * mapping. Returns 0, or -1 if the OS refused (the memory stays as it was). */
int platform_release_pages(void *addr, size_t bytes);

#endif
