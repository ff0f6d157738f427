/*
 * error.c — filling larder_error values (see error.h).
 */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int error_set(larder_error *err, int code, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return -1;
}

int error_prefix(larder_error *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[LARDER_ERROR_MESSAGE_BYTES];
    char old[LARDER_ERROR_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is intended: the message stays one bounded line. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    err->message[n++] = ':';
    err->message[n++] = ' ';
    size_t rest = sizeof err->message - 1 - n;
    size_t old_len = strnlen(old, sizeof old - 1);
    if (old_len > rest) old_len = rest;
    memcpy(err->message + n, old, old_len);
    err->message[n + old_len] = '\0';
    return -1;
}

void error_clear(larder_error *err) {
    if (!err) return;
    err->code = ERR_NONE;
    err->message[0] = '\0';
}
