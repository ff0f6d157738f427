/*
 * error.h — how library code reports failure.
 *
 * Library functions never print and never exit. A function that can fail
 * takes a `larder_error *err` (may be NULL) as its last argument, fills it
 * with one human-readable line, and returns -1 (int functions) or NULL
 * (pointer functions). Only src/cli decides to print the message and exit.
 *
 * The message buffer is fixed-size; error_set truncates (vsnprintf), so no
 * input can overflow it.
 */
#ifndef LARDER_BASE_ERROR_H
#define LARDER_BASE_ERROR_H

#include <stddef.h>

/* Longest error message kept, in bytes including the NUL. */
#define LARDER_ERROR_MESSAGE_BYTES 512

typedef struct larder_error {
    int code;                                   /* 0: no error; else an ERR_* kind */
    char message[LARDER_ERROR_MESSAGE_BYTES];   /* one line, no trailing newline */
} larder_error;

/* Kinds of failure, so callers (e.g. the HTTP layer) can map them to statuses. */
enum {
    ERR_NONE = 0,
    ERR_IO,          /* open/read/mmap failed */
    ERR_FORMAT,      /* malformed input file or data */
    ERR_INVALID,     /* bad argument / parameter from a caller or client */
    ERR_NOMEM,       /* allocation failed or a memory budget was exceeded */
    ERR_UNSUPPORTED, /* valid but not supported (unknown arch, type, ...) */
    ERR_LIMIT,       /* a documented resource limit was hit */
};

/* Sets err (if non-NULL) to code and the printf-formatted message. Returns -1
 * so that `return error_set(err, ...)` reads naturally in int functions. */
int error_set(larder_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "prefix: old message". Returns -1. */
int error_prefix(larder_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err to ERR_NONE with an empty message. */
void error_clear(larder_error *err);

#endif
