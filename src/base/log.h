/*
 * log.h — leveled logging to stderr with a timestamp.
 *
 * The only place outside src/cli that writes to stderr (used by the server
 * and engine threads). One line per call: "2024-05-01T12:00:00.123Z I message".
 * Thread-safe: each line is formatted into a local buffer and written with a
 * single write(2), so lines from different threads never interleave. Lines
 * longer than LOG_LINE_MAX_BYTES are truncated.
 */
#ifndef LARDER_BASE_LOG_H
#define LARDER_BASE_LOG_H

/* Longest log line in bytes, timestamp and newline included. */
#define LOG_LINE_MAX_BYTES 2048

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
    LOG_OFF = 4
} log_level;

/* Messages below level are dropped (default LOG_INFO). */
void log_set_level(log_level level);
log_level log_get_level(void);

/* Sends lines to fd instead of stderr (2); for tests. */
void log_set_fd(int fd);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
