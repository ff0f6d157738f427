/*
 * http_checks.c — request-head rules (see http_checks.h).
 */
#include "server/http_checks.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* [s, s+n) without surrounding spaces and tabs. */
static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

int http_check_framing(const char *const *cl, int n_cl, const char *const *te, int n_te, char *msg, size_t msg_cap) {
    int chunked = 0;
    for (int i = 0; i < n_te; i++) {
        const char *p = te[i];
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            const char *item = p;
            trim(&item, &n);
            if (n == 7 && !strncasecmp(item, "chunked", 7)) {
                chunked++;
            } else {
                snprintf(msg, msg_cap, "Transfer-Encoding '%.*s' is not supported (only chunked)", (int)(n > 32 ? 32 : n), item);
                return 501;
            }
            if (!comma) break;
            p = comma + 1;
        }
    }
    if (chunked > 1) {
        snprintf(msg, msg_cap, "Transfer-Encoding lists chunked more than once");
        return 400;
    }
    if (chunked && n_cl) {
        snprintf(msg, msg_cap, "both Content-Length and Transfer-Encoding are given");
        return 400;
    }
    const char *first = NULL;
    size_t first_n = 0;
    for (int i = 0; i < n_cl; i++) {
        const char *p = cl[i];
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            const char *item = p;
            trim(&item, &n);
            bool digits = n > 0 && n <= 19;
            for (size_t k = 0; k < n && digits; k++) digits = isdigit((unsigned char)item[k]) != 0;
            if (!digits) {
                snprintf(msg, msg_cap, "Content-Length is not a number");
                return 400;
            }
            if (!first) {
                first = item;
                first_n = n;
            } else if (n != first_n || memcmp(item, first, n) != 0) {
                snprintf(msg, msg_cap, "conflicting Content-Length values");
                return 400;
            }
            if (!comma) break;
            p = comma + 1;
        }
    }
    return 0;
}

bool http_bind_is_loopback(const char *host) {
    if (!host) return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return !strcasecmp(host, "localhost");
}

/* True when name[0, n) is in the comma-separated list (or the list has "*"). */
static bool in_list(const char *list, const char *name, size_t n) {
    if (!list) return false;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t k = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &k);
        if ((k == 1 && item[0] == '*') || (k == n && !strncasecmp(item, name, n))) return true;
        if (!comma) return false;
        p = comma + 1;
    }
}

bool http_check_host(const char *host_header, bool loopback_bind, const char *allowed_hosts) {
    if (!loopback_bind && !allowed_hosts) return true;
    if (!host_header) return true; /* HTTP/1.0 without Host: no browser sends that */
    const char *h = host_header;
    size_t n = strlen(h);
    trim(&h, &n);
    char name[256];
    if (n == 0 || n >= sizeof name) return false;
    if (h[0] == '[') { /* [v6]:port */
        const char *close = memchr(h, ']', n);
        if (!close) return false;
        size_t k = (size_t)(close - h - 1);
        if (k >= sizeof name) return false;
        memcpy(name, h + 1, k);
        name[k] = 0;
        const char *rest = close + 1;
        if (rest < h + n && *rest != ':') return false;
        struct in6_addr a6;
        return inet_pton(AF_INET6, name, &a6) == 1;
    }
    /* name[:port] */
    size_t k = n;
    const char *colon = memchr(h, ':', n);
    if (colon) {
        k = (size_t)(colon - h);
        for (const char *p = colon + 1; p < h + n; p++)
            if (!isdigit((unsigned char)*p)) return false;
    }
    memcpy(name, h, k);
    name[k] = 0;
    while (k && name[k - 1] == '.') name[--k] = 0; /* "localhost." is the same name */
    if (k == 0) return false;
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1) return true;
    if (in_list(allowed_hosts, name, k)) return true;
    if (!loopback_bind) return false;
    if (!strcasecmp(name, "localhost")) return true;
    return k > 10 && !strcasecmp(name + k - 10, ".localhost");
}

bool http_content_type_is_json(const char *ct) {
    if (!ct) return false;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    trim(&ct, &n);
    return n == 16 && !strncasecmp(ct, "application/json", 16);
}

/* Headers the official SDKs send from a browser (openai-node, anthropic-sdk). */
static bool cors_header_allowed(const char *h, size_t n) {
    static const char *const names[] = {
        "authorization", "content-type", "accept", "x-api-key", "openai-organization", "openai-project",
        "openai-beta", "idempotency-key", "anthropic-version", "anthropic-beta",
        "anthropic-dangerous-direct-browser-access", "user-agent",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !strncasecmp(names[i], h, n)) return true;
    return n > 12 && !strncasecmp(h, "x-stainless-", 12);
}

bool http_cors_allowed_headers(const char *requested, char *out, size_t out_cap) {
    if (!out_cap) return false;
    out[0] = 0;
    if (!requested) return true;
    size_t w = 0;
    const char *p = requested;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &n);
        if (n) {
            for (size_t k = 0; k < n; k++) {
                unsigned char c = (unsigned char)item[k];
                if (!(isalnum(c) || c == '-' || c == '_')) return false;
            }
            if (!cors_header_allowed(item, n)) return false;
            if (w + n + 3 > out_cap) return false;
            if (w) out[w++] = ',', out[w++] = ' ';
            memcpy(out + w, item, n);
            w += n;
            out[w] = 0;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return true;
}
