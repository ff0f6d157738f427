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
 * `eos_token`, and every chat_template_kwargs entry as a variable.
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
    const cJSON *template_kwargs;      /* object: each entry a top-level variable (wins over the above) */
} chat_prompt_input;

/* Renders in->messages; returns malloc'd text (length in *len_bytes) or NULL
 * with err (ERR_INVALID: the template raised or the context is bad — HTTP 400;
 * ERR_NOMEM). */
char *chat_prompt_render(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes, larder_error *err);

#endif
