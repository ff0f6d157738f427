/*
 * chat_prompt_tokens.h — a chat request's prompt as token ids: the one path
 * from messages (and tools) through the chat template and the tokenizer,
 * shared by the chat completions route, the Messages/Responses sessions and
 * next-turn pre-warming, so that all of them give the engine the same ids
 * for the same conversation (the prefix cache depends on it).
 *
 * Steps: render (chat_prompt_render_spans, content's control-token text
 * marked as plain text unless told otherwise) → optionally cut before the
 * last occurrence of a text (pre-warming's placeholder) → note whether the
 * prompt left a reasoning block open → optionally start the answer with a
 * forced tool call's opener (toolcall_force_prefix; it is template markup:
 * its special tokens are tokens) → BOS when the model adds it and the
 * template did not write it → tokenize.
 */
#ifndef LARDER_CHAT_CHAT_PROMPT_TOKENS_H
#define LARDER_CHAT_CHAT_PROMPT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "chat/chat_prompt.h"
#include "chat/toolcall_format.h"
#include "tokenizer/tokenizer.h"

typedef struct chat_prompt_tokens_options {
    bool mark_content;            /* content's control-token text is plain text (false: --parse-special-in-content) */
    size_t max_tokens;            /* > 0: ERR_LIMIT once the prompt needs more ids (tokenize_options.max_tokens) */
    const char *cut_before_last;  /* non-NULL: the prompt ends where this text last occurs in the rendering
                                     (ERR_INVALID when it does not) */
    const toolcall_format *fmt;   /* the model's format: reasoning detection and forced calls; NULL: none */
    bool force_call;              /* start the answer with a tool call (needs fmt) */
    const char *force_name;       /* with force_call: of this tool; NULL: of any tool */
    /* Called once the text is rendered, before tokenizing (the costly
     * part); non-zero (with err set) stops there. NULL: none. */
    int (*after_render)(void *ctx, larder_error *err);
    void *ctx;
} chat_prompt_tokens_options;

typedef struct chat_prompt_tokens_result {
    bool opens_reasoning;         /* the rendered prompt left fmt's reasoning block open */
    char *forced_prefix;          /* malloc'd: the answer's forced start, which the output parser must
                                     see before the generated text; NULL when not forcing */
} chat_prompt_tokens_result;

/* Appends the prompt's ids to out. 0, or -1 with err: the template's and
 * tokenizer's errors (ERR_INVALID, ERR_LIMIT past max_tokens, ERR_NOMEM),
 * toolcall_force_prefix's, and after_render's. res may be NULL; on success
 * the caller frees res->forced_prefix. */
int chat_prompt_tokens(const chat_prompt *cp, const tokenizer *tok, const chat_prompt_input *in,
                       const chat_prompt_tokens_options *o, token_list *out, chat_prompt_tokens_result *res,
                       larder_error *err);

#endif
