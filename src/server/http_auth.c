/*
 * http_auth.c — key comparison and the per-address lockout table (see
 * http_auth.h).
 */
#include "server/http_auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Constant-time in the given text: every byte of key is compared. */
static bool key_equal(const char *key, const char *given) {
    size_t gl = strlen(given), kl = strlen(key);
    unsigned char diff = gl != kl;
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static const char *skip_spaces(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

bool http_auth_key_matches(const char *key, const char *authorization, const char *x_api_key) {
    if (!key) return true;
    bool ok = false;
    if (authorization) {
        const char *h = skip_spaces(authorization);
        if (!strncasecmp(h, "Bearer", 6) && (h[6] == ' ' || h[6] == '\t')) {
            /* trailing whitespace is not part of the key (RFC 9110 strips it) */
            const char *v = skip_spaces(h + 6);
            size_t n = strlen(v);
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
            char *copy = malloc(n + 1);
            if (copy) {
                memcpy(copy, v, n);
                copy[n] = 0;
                ok |= key_equal(key, copy);
                free(copy);
            }
        }
    }
    if (x_api_key) ok |= key_equal(key, skip_spaces(x_api_key));
    return ok;
}

typedef struct addr_record {
    unsigned char addr[16];
    size_t addr_bytes;       /* 0: free slot */
    int failures;
    int64_t last_ms;         /* last failure */
    int64_t locked_until_ms;
} addr_record;

struct http_auth_throttle {
    pthread_mutex_t mu;
    addr_record rec[HTTP_AUTH_TRACKED_ADDRESSES];
};

http_auth_throttle *http_auth_throttle_create(void) {
    http_auth_throttle *t = calloc(1, sizeof *t);
    if (t) pthread_mutex_init(&t->mu, NULL);
    return t;
}

void http_auth_throttle_free(http_auth_throttle *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The address's record, or NULL (find only) / a fresh one (create). */
static addr_record *lookup(http_auth_throttle *t, const void *addr, size_t n, bool create, int64_t now_ms) {
    if (n > sizeof t->rec[0].addr) n = sizeof t->rec[0].addr;
    addr_record *oldest = &t->rec[0];
    for (size_t i = 0; i < HTTP_AUTH_TRACKED_ADDRESSES; i++) {
        addr_record *r = &t->rec[i];
        if (r->addr_bytes && now_ms - r->last_ms > HTTP_AUTH_FORGET_S * 1000 && now_ms >= r->locked_until_ms)
            r->addr_bytes = 0;
        if (r->addr_bytes == n && !memcmp(r->addr, addr, n)) return r;
        if (!r->addr_bytes) oldest = r;
        else if (oldest->addr_bytes && r->last_ms < oldest->last_ms) oldest = r;
    }
    if (!create) return NULL;
    memset(oldest, 0, sizeof *oldest);
    memcpy(oldest->addr, addr, n);
    oldest->addr_bytes = n;
    oldest->last_ms = now_ms;
    return oldest;
}

int64_t http_auth_throttle_wait_ms(http_auth_throttle *t, const void *addr, size_t addr_bytes, int64_t now_ms) {
    pthread_mutex_lock(&t->mu);
    addr_record *r = lookup(t, addr, addr_bytes, false, now_ms);
    int64_t wait = r && r->locked_until_ms > now_ms ? r->locked_until_ms - now_ms : 0;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void http_auth_throttle_record(http_auth_throttle *t, const void *addr, size_t addr_bytes, bool ok, int64_t now_ms) {
    pthread_mutex_lock(&t->mu);
    addr_record *r = lookup(t, addr, addr_bytes, !ok, now_ms);
    if (r && ok) {
        r->addr_bytes = 0;
    } else if (r) {
        r->failures++;
        r->last_ms = now_ms;
        if (r->failures >= HTTP_AUTH_FREE_FAILURES) {
            /* FIRST << (failures - FREE), capped; the shift stays small */
            int shift = r->failures - HTTP_AUTH_FREE_FAILURES;
            int64_t lock_ms = HTTP_AUTH_MAX_LOCKOUT_S * 1000;
            if (shift < 16 && ((int64_t)HTTP_AUTH_FIRST_LOCKOUT_MS << shift) < lock_ms)
                lock_ms = (int64_t)HTTP_AUTH_FIRST_LOCKOUT_MS << shift;
            r->locked_until_ms = now_ms + lock_ms;
        }
    }
    pthread_mutex_unlock(&t->mu);
}
