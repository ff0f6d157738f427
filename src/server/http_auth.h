/*
 * http_auth.h — API key checks and the slow-down of wrong keys.
 *
 * A request carries the key as `Authorization: <scheme> KEY` with the
 * scheme "Bearer" in any letter case (RFC 9110: schemes are
 * case-insensitive), or as `x-api-key: KEY` (the Anthropic clients' header).
 * Comparison takes the same time whatever the key's prefix.
 *
 * Wrong keys (a key presented that is not the key; a request without any
 * key guesses nothing and is not counted) are counted per client address (a fixed table of
 * HTTP_AUTH_TRACKED_ADDRESSES, least recently seen replaced): after
 * HTTP_AUTH_FREE_FAILURES wrong keys, the address is locked out for
 * HTTP_AUTH_FIRST_LOCKOUT_MS, a time that doubles with every further failure
 * (up to HTTP_AUTH_MAX_LOCKOUT_S). Times are milliseconds of a monotonic
 * clock: a lockout of 2 s lasts 2 s, whenever in a second it starts;
 * while locked out, its requests get 429 with Retry-After and no key is
 * compared at all, so guessing runs at a few tries a minute. A right key
 * clears the address's record.
 */
#ifndef LARDER_SERVER_HTTP_AUTH_H
#define LARDER_SERVER_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_AUTH_FREE_FAILURES 5
#define HTTP_AUTH_FIRST_LOCKOUT_MS 2000
#define HTTP_AUTH_MAX_LOCKOUT_S 60
#define HTTP_AUTH_TRACKED_ADDRESSES 256
/* A record with no failure for this long is forgotten. */
#define HTTP_AUTH_FORGET_S 600

/* The key in one request's headers: the Authorization header value and the
 * x-api-key value (either may be NULL). True when one of them holds key. */
bool http_auth_key_matches(const char *key, const char *authorization, const char *x_api_key);

typedef struct http_auth_throttle http_auth_throttle;

http_auth_throttle *http_auth_throttle_create(void);
void http_auth_throttle_free(http_auth_throttle *t);

/* Milliseconds the address (addr_bytes of a sockaddr's address part) must
 * still wait; 0 when it may try a key now. now_ms: a monotonic clock. */
int64_t http_auth_throttle_wait_ms(http_auth_throttle *t, const void *addr, size_t addr_bytes, int64_t now_ms);

/* Records the outcome of a key comparison for the address. */
void http_auth_throttle_record(http_auth_throttle *t, const void *addr, size_t addr_bytes, bool ok, int64_t now_ms);

#endif
