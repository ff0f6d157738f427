/*
 * chat_prompt.h — chat messages (and tools) turned into the model's prompt
 * text by the model's own chat template (tokenizer.chat_template, Jinja).
 * The input half of the chat protocol; its output half is toolcall_parser.h.
 * It knows the message shapes (OpenAI's, which are Hugging Face's) but not
 * the HTTP request they came in: the caller passes plain cJSON trees.
 *
 * The template is parsed once at start-up. Rendering builds the context the
 * way Hugging Face does: `messages` (text-part arrays joined into one string,
 * tool-call arguments given as JSON strings parsed into objects, as templates
 * expect), `tools`, `add_generation_prompt` = true, `bos_token`,
 * `eos_token`, and every chat_template_kwargs entry as a variable
 * (chat_template_kwargs may not set messages, tools, add_generation_prompt
 * or the special-token variables: ERR_INVALID).
 *
 * Special tokens are not user input: given the vocabulary's control-token
 * texts (chat_prompt_set_control_texts), chat_prompt_render_spans reports
 * where such text in the prompt came from message content (every role but
 * the assistant's), so the tokenizer reads it there as plain text and only
 * the template's own markup becomes control tokens. For content without
 * such text the prompt is byte-identical and no span is reported.
 */
#ifndef LARDER_CHAT_CHAT_PROMPT_H
#define LARDER_CHAT_CHAT_PROMPT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"

typedef struct chat_prompt chat_prompt;

/* Parses the template. bos/eos texts are the model's special tokens' texts
 * ("" when absent). NULL with err (ERR_FORMAT) when the template does not parse. */
chat_prompt *chat_prompt_create(const char *template_text, const char *bos_text, const char *eos_text,
                                larder_error *err);
void chat_prompt_free(chat_prompt *cp);

/* The template's source (for choosing the tool-call format). */
const char *chat_prompt_source(const chat_prompt *cp);

/* What one rendering takes; every field but messages may be NULL. Nothing is
 * taken over: the trees are copied into the template's context. */
typedef struct chat_prompt_input {
    const cJSON *messages;             /* array of {role, content, tool_calls, ...} */
    const cJSON *tools;                /* array of tool definitions; NULL or [] = none */
    const char *reasoning_effort;      /* the `reasoning_effort` variable */
    const cJSON *template_kwargs;      /* object: each entry a top-level variable (reasoning_effort wins over the above) */
} chat_prompt_input;

/* The texts that content may not turn into control tokens (copied; the
 * vocabulary's control tokens). 0, or -1 with err (ERR_NOMEM). */
int chat_prompt_set_control_texts(chat_prompt *cp, const char *const *texts, size_t n, larder_error *err);

/* A byte range [start, end) of a rendered prompt. */
typedef size_t chat_prompt_span[2];

/* chat_prompt_render, and where control-token text in the result came from
 * message content: *spans (malloc'd, sorted; free it) holds *n_spans ranges
 * that the tokenizer must read as plain text (tokenize_options.text_spans).
 * spans == NULL: no such marking (content's control text stays parsable,
 * --parse-special-in-content). */
char *chat_prompt_render_spans(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes,
                               chat_prompt_span **spans, size_t *n_spans, larder_error *err);

/* Renders in->messages; returns malloc'd text (length in *len_bytes) or NULL
 * with err (ERR_INVALID: the template raised or the context is bad — HTTP 400;
 * ERR_NOMEM). */
char *chat_prompt_render(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes, larder_error *err);

#endif
