/*
 * chat_prompt.c — chat messages and tools → the model's prompt text through
 * its Jinja chat template (see chat_prompt.h).
 *
 * The context is built as Hugging Face's apply_chat_template builds it, so the
 * prompt is byte-for-byte what the model saw in training: content given as
 * text parts is joined into one string; tool-call arguments sent as JSON
 * strings (the OpenAI wire format) become objects (what templates iterate
 * and `tojson`); `tools`, `add_generation_prompt`, `bos_token`, `eos_token`,
 * and every chat_template_kwargs entry are top-level variables.
 */
#include "chat/chat_prompt.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/json_syntax.h"
#include "base/strbuf.h"
#include "jinja/jinja.h"

struct chat_prompt {
    jinja_template *tmpl;
    char *source;
    char *bos_text, *eos_text;
    char **control_texts;     /* (n_control) texts content may not turn into control tokens */
    size_t n_control;
    bool control_first_byte[256]; /* a control text starts with this byte */
};

/* chat_template_kwargs may not set these: the conversation, the tools, the
 * generation switch and the special tokens' texts are the server's. */
static const char *const reserved_variables[] = {
    "messages", "tools", "add_generation_prompt", "bos_token", "eos_token", "unk_token", "pad_token",
    "sep_token", "cls_token", "mask_token",
};

/* A content marker: PUA U+E000, a per-render nonce (hex), the control
 * text's index (decimal), U+E001. Content cannot forge one (the nonce is
 * random per render) and templates pass private-use characters through. */
#define MARK_OPEN "\xEE\x80\x80"
#define MARK_CLOSE "\xEE\x80\x81"
#define MARK_BYTES 3
#define NONCE_HEX 16

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

chat_prompt *chat_prompt_create(const char *template_text, const char *bos_text, const char *eos_text,
                                larder_error *err) {
    chat_prompt *cp = calloc(1, sizeof *cp);
    if (!cp) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    cp->source = dup_str(template_text);
    cp->bos_text = dup_str(bos_text ? bos_text : "");
    cp->eos_text = dup_str(eos_text ? eos_text : "");
    if (!cp->source || !cp->bos_text || !cp->eos_text) {
        error_set(err, ERR_NOMEM, "out of memory");
        chat_prompt_free(cp);
        return NULL;
    }
    cp->tmpl = jinja_template_parse(cp->source, strlen(cp->source), err);
    if (!cp->tmpl) {
        error_prefix(err, "chat template");
        chat_prompt_free(cp);
        return NULL;
    }
    return cp;
}

int chat_prompt_set_control_texts(chat_prompt *cp, const char *const *texts, size_t n, larder_error *err) {
    for (size_t i = 0; i < cp->n_control; i++) free(cp->control_texts[i]);
    free(cp->control_texts);
    cp->control_texts = NULL;
    cp->n_control = 0;
    memset(cp->control_first_byte, 0, sizeof cp->control_first_byte);
    if (!n) return 0;
    cp->control_texts = calloc(n, sizeof *cp->control_texts);
    if (!cp->control_texts) return error_set(err, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!texts[i] || !texts[i][0]) continue;
        char *d = dup_str(texts[i]);
        if (!d) return error_set(err, ERR_NOMEM, "out of memory");
        cp->control_texts[cp->n_control++] = d;
        cp->control_first_byte[(unsigned char)d[0]] = true;
    }
    return 0;
}

void chat_prompt_free(chat_prompt *cp) {
    if (!cp) return;
    for (size_t i = 0; i < cp->n_control; i++) free(cp->control_texts[i]);
    free(cp->control_texts);
    jinja_template_free(cp->tmpl);
    free(cp->source);
    free(cp->bos_text);
    free(cp->eos_text);
    free(cp);
}

const char *chat_prompt_source(const chat_prompt *cp) { return cp->source; }

/* Replaces obj[key] with item (taken). cJSON 1.7.15 reports success even
 * when copying the key ran out of memory (the item is then in the object
 * without a name), so the name is checked. False: out of memory (item is
 * freed unless it is already in obj, whose deletion frees it). */
static bool replace_in_object(cJSON *obj, const char *key, cJSON *item) {
    if (!item) return false;
    if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return item->string != NULL;
}

/* One message as templates expect it (a deep copy, normalised). */
static cJSON *normalise_message(const cJSON *m) {
    cJSON *out = cJSON_Duplicate(m, true);
    if (!out) return NULL;
    cJSON *content = cJSON_GetObjectItemCaseSensitive(out, "content");
    if (cJSON_IsArray(content)) {
        /* [{type:"text", text:...}, ...] → one string, parts joined as HF's
         * servers do for text-only models. */
        size_t total = 0;
        const cJSON *part;
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) total += strlen(t->valuestring);
        }
        char *joined = malloc(total + 1);
        if (!joined) {
            cJSON_Delete(out);
            return NULL;
        }
        size_t at = 0;
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(t)) continue;
            size_t n = strlen(t->valuestring);
            memcpy(joined + at, t->valuestring, n);
            at += n;
        }
        joined[at] = 0;
        cJSON *str = cJSON_CreateString(joined);
        free(joined);
        if (!replace_in_object(out, "content", str)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(out, "tool_calls");
    cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (!cJSON_IsString(args)) continue;
        cJSON *parsed = cJSON_Parse(args->valuestring);
        if (!parsed && json_syntax_ok(args->valuestring, strlen(args->valuestring), CJSON_NESTING_LIMIT)) {
            cJSON_Delete(out); /* valid JSON that did not parse: out of memory */
            return NULL;
        }
        if (parsed && cJSON_IsObject(parsed)) {
            if (!replace_in_object(fn, "arguments", parsed)) {
                cJSON_Delete(out);
                return NULL;
            }
        } else {
            cJSON_Delete(parsed); /* not an object: templates get the string as sent */
        }
    }
    return out;
}

/* The control text (index) that starts at p (of at most n bytes), or -1;
 * the longest wins. */
static long control_at(const chat_prompt *cp, const char *p, size_t n) {
    long best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < cp->n_control; k++) {
        size_t l = strlen(cp->control_texts[k]);
        if (l <= n && l > best_len && !memcmp(p, cp->control_texts[k], l)) {
            best = (long)k;
            best_len = l;
        }
    }
    return best;
}

/* When the string item (parent's "content") holds control-token text, it is replaced by a copy
 * where each such text is a marker; *marked counts them. 0, or -1 when out
 * of memory. */
static int mark_content(const chat_prompt *cp, cJSON *parent, const cJSON *item, const char *nonce, size_t *marked) {
    if (!cJSON_IsString(item) || !item->valuestring) return 0;
    const char *s = item->valuestring;
    size_t n = strlen(s);
    strbuf b = STRBUF_INIT;
    size_t copied = 0, found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!cp->control_first_byte[(unsigned char)s[i]]) continue;
        long k = control_at(cp, s + i, n - i);
        if (k < 0) continue;
        strbuf_append(&b, s + copied, i - copied);
        strbuf_printf(&b, MARK_OPEN "%s%ld" MARK_CLOSE, nonce, k);
        i += strlen(cp->control_texts[k]) - 1;
        copied = i + 1;
        found++;
    }
    if (!found) return 0;
    strbuf_append(&b, s + copied, n - copied);
    cJSON *repl = b.failed ? NULL : cJSON_CreateString(b.data);
    strbuf_free(&b);
    if (!replace_in_object(parent, "content", repl)) return -1;
    *marked += found;
    return 0;
}

/* The markers in text back to their control texts, each recorded as a
 * plain-text span. Returns the new text (text is freed) or NULL. */
static char *unmark(const chat_prompt *cp, char *text, size_t *len, const char *nonce, chat_prompt_span **spans,
                    size_t *n_spans) {
    strbuf b = STRBUF_INIT;
    size_t cap = 0;
    *spans = NULL;
    *n_spans = 0;
    size_t i = 0, copied = 0;
    while (i < *len) {
        const char *m = memmem(text + i, *len - i, MARK_OPEN, MARK_BYTES);
        if (!m) break;
        size_t at = (size_t)(m - text);
        size_t p = at + MARK_BYTES;
        if (p + NONCE_HEX > *len || memcmp(text + p, nonce, NONCE_HEX) != 0) {
            i = at + 1;
            continue;
        }
        p += NONCE_HEX;
        size_t k = 0, digits = 0;
        while (p < *len && text[p] >= '0' && text[p] <= '9' && digits < 9) k = k * 10 + (size_t)(text[p++] - '0'), digits++;
        if (!digits || k >= cp->n_control || p + MARK_BYTES > *len || memcmp(text + p, MARK_CLOSE, MARK_BYTES) != 0) {
            i = at + 1;
            continue;
        }
        strbuf_append(&b, text + copied, at - copied);
        if (*n_spans == cap) {
            size_t nc = cap ? 2 * cap : 8;
            chat_prompt_span *ns = realloc(*spans, nc * sizeof *ns);
            if (!ns) goto nomem;
            *spans = ns;
            cap = nc;
        }
        size_t tl = strlen(cp->control_texts[k]);
        (*spans)[*n_spans][0] = b.len;
        (*spans)[*n_spans][1] = b.len + tl;
        (*n_spans)++;
        strbuf_append(&b, cp->control_texts[k], tl);
        i = copied = p + MARK_BYTES;
    }
    strbuf_append(&b, text + copied, *len - copied);
    if (b.failed) goto nomem;
    free(text);
    *len = b.len;
    return strbuf_take(&b);
nomem:
    strbuf_free(&b);
    free(*spans);
    *spans = NULL;
    *n_spans = 0;
    free(text);
    return NULL;
}

static void make_nonce(char out[NONCE_HEX + 1]) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)out ^ (uint64_t)ts.tv_sec;
    }
    snprintf(out, NONCE_HEX + 1, "%016llx", (unsigned long long)v);
}

static bool is_reserved(const char *name) {
    for (size_t i = 0; i < sizeof reserved_variables / sizeof reserved_variables[0]; i++)
        if (!strcmp(name, reserved_variables[i])) return true;
    return false;
}

char *chat_prompt_render_spans(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes,
                               chat_prompt_span **spans, size_t *n_spans, larder_error *err) {
    if (spans) {
        *spans = NULL;
        *n_spans = 0;
    }
    /* chat_template_kwargs: no server variable, each name once (checked
     * here so that the loop below can append without looking names up). */
    const cJSON *kw;
    cJSON_ArrayForEach(kw, in->template_kwargs) {
        if (!kw->string) {
            error_set(err, ERR_INVALID, "'chat_template_kwargs' must be an object");
            return NULL;
        }
        if (is_reserved(kw->string)) {
            error_set(err, ERR_INVALID, "'chat_template_kwargs' may not set '%.64s' (the server sets it)", kw->string);
            return NULL;
        }
    }
    bool protect = spans && cp->n_control;
    char nonce[NONCE_HEX + 1];
    if (protect) make_nonce(nonce);
    size_t marked = 0;
    cJSON *ctx = cJSON_CreateObject();
    cJSON *messages = ctx ? cJSON_AddArrayToObject(ctx, "messages") : NULL;
    if (!messages) goto nomem;
    const cJSON *m;
    cJSON_ArrayForEach(m, in->messages) {
        cJSON *n = normalise_message(m);
        if (!n) goto nomem;
        cJSON_AddItemToArray(messages, n);
        /* content of every role but the assistant's (the model's own output,
         * whose control tokens are real) is plain text */
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(n, "role");
        if (protect && !(cJSON_IsString(role) && !strcmp(role->valuestring, "assistant")) &&
            mark_content(cp, n, cJSON_GetObjectItemCaseSensitive(n, "content"), nonce, &marked))
            goto nomem;
    }
    if (in->tools && cJSON_GetArraySize(in->tools) > 0) {
        cJSON *tools = cJSON_Duplicate(in->tools, true);
        if (!tools) goto nomem;
        if (!cJSON_AddItemToObject(ctx, "tools", tools)) {
            cJSON_Delete(tools);
            goto nomem;
        }
        if (!tools->string) goto nomem;
    }
    if (!cJSON_AddBoolToObject(ctx, "add_generation_prompt", true) ||
        !cJSON_AddStringToObject(ctx, "bos_token", cp->bos_text) ||
        !cJSON_AddStringToObject(ctx, "eos_token", cp->eos_text))
        goto nomem;
    bool kw_effort = false;
    cJSON_ArrayForEach(kw, in->template_kwargs) kw_effort |= !strcmp(kw->string, "reasoning_effort");
    if (in->reasoning_effort && !kw_effort && !cJSON_AddStringToObject(ctx, "reasoning_effort", in->reasoning_effort))
        goto nomem;
    cJSON_ArrayForEach(kw, in->template_kwargs) {
        cJSON *v = cJSON_Duplicate(kw, true);
        if (!v) goto nomem;
        if (!cJSON_AddItemToObject(ctx, kw->string, v)) {
            cJSON_Delete(v);
            goto nomem;
        }
        if (!v->string) goto nomem;
    }
    jinja_render_options opt = {.mutate_own_values = true}; /* as Jinja2's SandboxedEnvironment (Kimi K2) */
    char *text = jinja_render_json(cp->tmpl, ctx, &opt, len_bytes, err);
    cJSON_Delete(ctx);
    if (!text && err && err->code != ERR_NOMEM) {
        err->code = ERR_INVALID;
        error_prefix(err, "chat template");
    }
    if (text && marked) {
        text = unmark(cp, text, len_bytes, nonce, spans, n_spans);
        if (!text) error_set(err, ERR_NOMEM, "out of memory marking content");
    }
    return text;
nomem:
    cJSON_Delete(ctx); /* messages, when made, is inside it */
    error_set(err, ERR_NOMEM, "out of memory building the chat template context");
    return NULL;
}

char *chat_prompt_render(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes, larder_error *err) {
    return chat_prompt_render_spans(cp, in, len_bytes, NULL, NULL, err);
}
