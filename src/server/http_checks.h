/*
 * http_checks.h — what the HTTP layer checks on a request's head before it
 * reads any body, as pure functions of header values (no sockets), so each
 * rule is tested and fuzzed alone.
 *
 *   framing      Content-Length and Transfer-Encoding must say one thing:
 *                several different lengths, a length that is not digits,
 *                both headers at once (request smuggling shapes) → 400; a
 *                transfer coding other than "chunked" → 501.
 *   host         DNS rebinding: a web page whose name resolves to 127.0.0.1
 *                sends its own name as Host. On a loopback bind only IP
 *                literals, "localhost" and "*.localhost" are accepted, plus
 *                the names of --allowed-hosts; on another bind with
 *                --allowed-hosts given, IP literals and those names; "*"
 *                in the list accepts any name.
 *   content type A browser page may POST text/plain anywhere without a
 *                preflight; JSON routes take only application/json (415).
 *   CORS         which request headers a preflight may ask for: those the
 *                official OpenAI and Anthropic SDKs send.
 */
#ifndef LARDER_SERVER_HTTP_CHECKS_H
#define LARDER_SERVER_HTTP_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

/* 0 when the framing headers agree; else 400 or 501 with a message in msg.
 * cl/te: every Content-Length / Transfer-Encoding header value received. */
int http_check_framing(const char *const *cl, int n_cl, const char *const *te, int n_te, char *msg, size_t msg_cap);

/* True when host (e.g. "127.0.0.1"; "::1") is a loopback address or name. */
bool http_bind_is_loopback(const char *host);

/* True when a request whose Host header is host_header (NULL: absent) may
 * be served. allowed_hosts: comma-separated names (NULL: none). */
bool http_check_host(const char *host_header, bool loopback_bind, const char *allowed_hosts);

/* True for "application/json" (any letter case, parameters allowed). */
bool http_content_type_is_json(const char *content_type);

/* Writes to out the requested headers (Access-Control-Request-Headers, a
 * comma-separated list) that a preflight allows, comma-separated. False
 * when one is not allowed or out is too small (answer the preflight 403). */
bool http_cors_allowed_headers(const char *requested, char *out, size_t out_cap);

#endif
