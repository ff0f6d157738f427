/*
 * fuzz_messages_responses.c — libFuzzer target for the request parsers of
 * the Anthropic Messages and OpenAI Responses routes: the first byte picks
 * Messages, Messages count_tokens or Responses, the rest is the body. Both
 * convert into an OpenAI chat request and end in openai_request_parse (with
 * the strict JSON checks of request_json_parse first). Any crash, sanitizer
 * report or leak is a bug; a failure must say why.
 *
 * FUZZ_SOURCES: src/server/anthropic_request.c src/server/responses_request.c src/server/request_json.c src/server/openai_request.c src/server/json_strict.c src/base/json_syntax.c src/base/error.c src/base/strbuf.c src/base/utf8.c src/base/hash.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/anthropic_request.h"
#include "server/responses_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    larder_error err = {0};
    if (data[0] % 3 == 2) {
        responses_request r;
        if (responses_request_parse(body, len, &r, &err) == 0) responses_request_free(&r);
        else if (!err.message[0]) abort();
        return 0;
    }
    anthropic_parse_options o = {.count_tokens = data[0] % 3 == 1, .keep_billing_header = (data[0] & 4) != 0};
    anthropic_request a;
    if (anthropic_request_parse(body, len, &o, &a, &err) == 0) anthropic_request_free(&a);
    else if (!err.message[0]) abort();
    return 0;
}
