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

#include <stdlib.h>
#include <string.h>

#include "jinja/jinja.h"

struct chat_prompt {
    jinja_template *tmpl;
    char *source;
    char *bos_text, *eos_text;
};

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

void chat_prompt_free(chat_prompt *cp) {
    if (!cp) return;
    jinja_template_free(cp->tmpl);
    free(cp->source);
    free(cp->bos_text);
    free(cp->eos_text);
    free(cp);
}

const char *chat_prompt_source(const chat_prompt *cp) { return cp->source; }

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
        cJSON_ReplaceItemInObjectCaseSensitive(out, "content", cJSON_CreateString(joined));
        free(joined);
    }
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(out, "tool_calls");
    cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (!cJSON_IsString(args)) continue;
        cJSON *parsed = cJSON_Parse(args->valuestring);
        if (parsed && cJSON_IsObject(parsed)) cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
        else cJSON_Delete(parsed); /* not an object: templates get the string as sent */
    }
    return out;
}

char *chat_prompt_render(const chat_prompt *cp, const chat_prompt_input *in, size_t *len_bytes, larder_error *err) {
    cJSON *ctx = cJSON_CreateObject();
    cJSON *messages = ctx ? cJSON_AddArrayToObject(ctx, "messages") : NULL;
    if (!messages) goto nomem;
    const cJSON *m;
    cJSON_ArrayForEach(m, in->messages) {
        cJSON *n = normalise_message(m);
        if (!n) goto nomem;
        cJSON_AddItemToArray(messages, n);
    }
    if (in->tools && cJSON_GetArraySize(in->tools) > 0) {
        cJSON *tools = cJSON_Duplicate(in->tools, true);
        if (!tools) goto nomem;
        cJSON_AddItemToObject(ctx, "tools", tools);
    }
    cJSON_AddBoolToObject(ctx, "add_generation_prompt", true);
    cJSON_AddStringToObject(ctx, "bos_token", cp->bos_text);
    cJSON_AddStringToObject(ctx, "eos_token", cp->eos_text);
    if (in->reasoning_effort) cJSON_AddStringToObject(ctx, "reasoning_effort", in->reasoning_effort);
    const cJSON *kw;
    cJSON_ArrayForEach(kw, in->template_kwargs) {
        cJSON *v = cJSON_Duplicate(kw, true);
        if (!v) goto nomem;
        if (cJSON_GetObjectItemCaseSensitive(ctx, kw->string)) cJSON_ReplaceItemInObjectCaseSensitive(ctx, kw->string, v);
        else cJSON_AddItemToObject(ctx, kw->string, v);
    }
    jinja_render_options opt = {0};
    char *text = jinja_render_json(cp->tmpl, ctx, &opt, len_bytes, err);
    cJSON_Delete(ctx);
    if (!text && err && err->code != ERR_NOMEM) {
        err->code = ERR_INVALID;
        error_prefix(err, "chat template");
    }
    return text;
nomem:
    cJSON_Delete(ctx); /* messages, when made, is inside it */
    error_set(err, ERR_NOMEM, "out of memory building the chat template context");
    return NULL;
}
