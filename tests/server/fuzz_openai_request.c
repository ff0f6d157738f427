/*
 * fuzz_openai_request.c — libFuzzer target for the request path before the
 * engine: the input's first byte picks the route (chat or completions), the
 * rest is the body. It is parsed and validated (openai_request, with the
 * strict JSON checks); a chat request that passes is rendered through a
 * small chat template with control-token marking (chat_prompt_render_spans),
 * and the spans are checked to lie inside the text and hold a control text.
 * Any crash, sanitizer report or leak is a bug: every failure must come
 * back as an error.
 *
 * FUZZ_SOURCES: src/server/openai_request.c src/server/json_strict.c src/base/json_syntax.c src/chat/chat_prompt.c src/jinja/jinja_*.c src/base/error.c src/base/strbuf.c src/base/utf8.c src/base/hash.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_prompt.h"
#include "server/openai_request.h"

static const char TEMPLATE[] =
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content if m.content is string else '' }}"
    "{%- if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} {{ c.function.arguments | tojson }}"
    "</tool_call>{% endfor %}{% endif %}<|im_end|>\n{%- endfor %}"
    "{%- if tools %}{% for t in tools %}{{ t | tojson }}{% endfor %}{% endif %}"
    "{{ enable_thinking | default('') }}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

static chat_prompt *cp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!cp) {
        larder_error err = {0};
        cp = chat_prompt_create(TEMPLATE, "<s>", "<|im_end|>", &err);
        if (!cp) abort();
        const char *texts[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "<"};
        if (chat_prompt_set_control_texts(cp, texts, 5, &err)) abort();
    }
    if (size < 1) return 0;
    openai_kind kind = data[0] & 1 ? OPENAI_COMPLETION : OPENAI_CHAT;
    openai_request req;
    larder_error err = {0};
    if (openai_request_parse((const char *)data + 1, size - 1, kind, &req, &err)) {
        if (!err.message[0]) abort(); /* a failure always says why */
        return 0;
    }
    if (kind == OPENAI_CHAT) {
        chat_prompt_input in = {req.messages, req.tools, req.reasoning_effort, req.chat_template_kwargs};
        size_t len = 0, n_spans = 0;
        chat_prompt_span *spans = NULL;
        char *text = chat_prompt_render_spans(cp, &in, &len, &spans, &n_spans, &err);
        if (text) {
            size_t last_end = 0;
            for (size_t i = 0; i < n_spans; i++) {
                if (spans[i][0] < last_end || spans[i][1] <= spans[i][0] || spans[i][1] > len) abort();
                last_end = spans[i][1];
            }
        } else if (!err.message[0]) {
            abort();
        }
        free(spans);
        free(text);
    }
    openai_request_free(&req);
    return 0;
}
