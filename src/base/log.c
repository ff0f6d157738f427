/*
 * log.c — timestamped leveled lines on stderr (see log.h).
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_now = LOG_INFO;
static atomic_int log_fd = 2;

void log_set_level(log_level level) { atomic_store(&log_level_now, (int)level); }
log_level log_get_level(void) { return (log_level)atomic_load(&log_level_now); }
void log_set_fd(int fd) { atomic_store(&log_fd, fd); }

void log_msg(log_level level, const char *fmt, ...) {
    if ((int)level < atomic_load(&log_level_now) || level >= LOG_OFF) return;
    static const char LEVEL_CHAR[] = {'D', 'I', 'W', 'E'};
    char line[LOG_LINE_MAX_BYTES];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, LEVEL_CHAR[level]);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2) len = sizeof line - 2; /* truncated: keep room for the newline */
    line[len++] = '\n';
    size_t off = 0;
    int fd = atomic_load(&log_fd);
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w <= 0) return; /* nothing sensible to do if stderr is gone */
        off += (size_t)w;
    }
}
