/*
 * chat_prompt_tokens.c — a chat request's prompt as token ids (see
 * chat_prompt_tokens.h): render, cut, force, BOS, tokenize.
 */
#include "chat/chat_prompt_tokens.h"

#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"

/* The last occurrence of needle in hay[0, len), or NULL. */
static const char *find_last(const char *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return NULL;
    for (size_t i = len - n + 1; i-- > 0;)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, n)) return hay + i;
    return NULL;
}

/* Tokenizer flags for text[0, len): the template writes BOS itself when the
 * model wants it; it is added only when the model adds BOS and the text
 * does not start with it. */
static int prompt_flags(const tokenizer *tok, const char *text, size_t len) {
    int flags = TOKENIZE_PARSE_SPECIAL;
    int32_t bos = tokenizer_bos(tok);
    if (tokenizer_add_bos(tok) && bos != TOKEN_NONE) {
        size_t bl;
        const char *bt = tokenizer_piece(tok, bos, true, &bl);
        if (!(bl && len >= bl && !memcmp(text, bt, bl))) flags |= TOKENIZE_ADD_SPECIAL;
    }
    return flags;
}

int chat_prompt_tokens(const chat_prompt *cp, const tokenizer *tok, const chat_prompt_input *in,
                       const chat_prompt_tokens_options *o, token_list *out, chat_prompt_tokens_result *res,
                       larder_error *err) {
    static const chat_prompt_tokens_options defaults = {.mark_content = true};
    if (!o) o = &defaults;
    chat_prompt_tokens_result r = {0};
    size_t len = 0;
    chat_prompt_span *spans = NULL;
    size_t n_spans = 0;
    char *text = chat_prompt_render_spans(cp, in, &len, o->mark_content ? &spans : NULL, &n_spans, err);
    if (!text) return -1;
    int rc = -1;
    strbuf full = STRBUF_INIT;
    if (o->cut_before_last) {
        const char *at = find_last(text, len, o->cut_before_last);
        if (!at) {
            error_set(err, ERR_INVALID, "the template does not render the next message's content");
            goto done;
        }
        len = (size_t)(at - text);
        size_t k = 0;
        while (k < n_spans && spans[k][0] < len) {
            if (spans[k][1] > len) spans[k][1] = len;
            k++;
        }
        n_spans = k;
    }
    if (o->after_render && o->after_render(o->ctx, err)) goto done;
    r.opens_reasoning = toolcall_prompt_opens_reasoning(o->fmt, text, len);
    const char *prompt = text;
    size_t prompt_len = len;
    if (o->force_call) {
        r.forced_prefix = toolcall_force_prefix(o->fmt, o->force_name, r.opens_reasoning, err);
        if (!r.forced_prefix) goto done;
        strbuf_append(&full, text, len);
        strbuf_puts(&full, r.forced_prefix);
        if (full.failed) {
            error_set(err, ERR_NOMEM, "out of memory");
            goto done;
        }
        prompt = full.data;
        prompt_len = full.len;
    }
    tokenize_options topt = {.flags = prompt_flags(tok, prompt, prompt_len), .text_spans = (const size_t (*)[2])spans,
                             .n_text_spans = n_spans, .max_tokens = o->max_tokens};
    rc = tokenizer_encode_opts(tok, prompt, prompt_len, &topt, out, err);
done:
    strbuf_free(&full);
    free(spans);
    free(text);
    if (rc == 0 && res) *res = r;
    else free(r.forced_prefix);
    return rc;
}
