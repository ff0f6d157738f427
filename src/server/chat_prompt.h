/*
 * chat_prompt.h — an OpenAI chat request turned into the model's prompt
 * text by the model's own chat template (tokenizer.chat_template, Jinja).
 *
 * The template is parsed once at start-up. Rendering builds the context the
 * way Hugging Face does: `messages` (text-part arrays joined into one string,
 * tool-call arguments given as JSON strings parsed into objects, as templates
 * expect), `tools`, `add_generation_prompt` = true, `bos_token`,
 * `eos_token`, and every chat_template_kwargs entry as a variable.
 */
#ifndef LARDER_SERVER_CHAT_PROMPT_H
#define LARDER_SERVER_CHAT_PROMPT_H

#include <stddef.h>

#include "base/error.h"
#include "server/openai_request.h"

typedef struct chat_prompt chat_prompt;

/* Parses the template. bos/eos texts are the model's special tokens' texts
 * ("" when absent). NULL with err (ERR_FORMAT) when the template does not parse. */
chat_prompt *chat_prompt_create(const char *template_text, const char *bos_text, const char *eos_text,
                                larder_error *err);
void chat_prompt_free(chat_prompt *cp);

/* The template's source (for choosing the tool-call format). */
const char *chat_prompt_source(const chat_prompt *cp);

/* Renders req's messages; returns malloc'd text (length in *len_bytes) or NULL
 * with err (ERR_INVALID: the template raised or the context is bad — HTTP 400). */
char *chat_prompt_render(const chat_prompt *cp, const openai_request *req, size_t *len_bytes, larder_error *err);

#endif
