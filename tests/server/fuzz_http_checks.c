/*
 * fuzz_http_checks.c — libFuzzer target for the checks on a request head
 * (http_checks.h): the input is split at newlines into header values —
 * Content-Length values, Transfer-Encoding values, a Host, a Content-Type,
 * an Access-Control-Request-Headers list — and every check runs on them.
 * Properties: no crash; the framing check answers 0, 400 or 501 with a
 * message; the CORS list written fits its buffer and is NUL-terminated.
 *
 * FUZZ_SOURCES: src/server/http_checks.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *fields[12];
    int n = 0;
    char *p = copy;
    while (n < 12) {
        fields[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    int n_cl = n > 0 ? (fields[0][0] % 4) : 0, n_te = n > 1 ? (fields[1][0] % 3) : 0;
    const char *cl[4] = {0}, *te[3] = {0};
    for (int i = 0; i < n_cl; i++) cl[i] = i + 2 < n ? fields[i + 2] : "";
    for (int i = 0; i < n_te; i++) te[i] = i + 6 < n ? fields[i + 6] : "";
    char msg[128];
    msg[0] = 0;
    int st = http_check_framing(cl, n_cl, te, n_te, msg, sizeof msg);
    if (st != 0 && st != 400 && st != 501) abort();
    if (st && !msg[0]) abort();
    const char *host = n > 9 ? fields[9] : NULL;
    http_check_host(host, true, n > 10 ? fields[10] : NULL);
    http_check_host(host, false, n > 10 ? fields[10] : NULL);
    http_bind_is_loopback(host ? host : "127.0.0.1");
    http_content_type_is_json(n > 11 ? fields[11] : NULL);
    char out[64];
    if (http_cors_allowed_headers(n > 8 ? fields[8] : NULL, out, sizeof out) && strlen(out) >= sizeof out) abort();
    free(copy);
    return 0;
}
