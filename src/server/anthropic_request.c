/*
 * anthropic_request.c — an Anthropic Messages body checked and converted to
 * an OpenAI chat body (see anthropic_request.h). The conversion builds the
 * OpenAI JSON tree and hands it to openai_request_parse, so sampling fields
 * are validated by the same code as on /v1/chat/completions.
 */
#include "server/anthropic_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "server/request_json.h"

#define BILLING_PREFIX "x-anthropic-billing-header:"

size_t anthropic_billing_header_len(const char *text) {
    size_t pl = strlen(BILLING_PREFIX);
    if (strncmp(text, BILLING_PREFIX, pl) != 0) return 0;
    size_t i = pl;
    for (;;) {
        size_t j = i;
        while (text[j] == ' ') j++;
        size_t k = j;
        while ((text[k] >= 'a' && text[k] <= 'z') || (text[k] >= 'A' && text[k] <= 'Z') || (text[k] >= '0' && text[k] <= '9') ||
               text[k] == '_' || text[k] == '-')
            k++;
        if (k == j || text[k] != '=') break;
        const char *semi = strchr(text + k, ';');
        const char *nl = strchr(text + k, '\n');
        if (!semi || (nl && nl < semi)) break;
        i = (size_t)(semi - text) + 1;
    }
    while (text[i] == ' ' || text[i] == '\n') i++;
    return i;
}

/* ---- content blocks */

static cJSON *text_part(const char *text) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "text");
    cJSON_AddStringToObject(p, "text", text);
    return p;
}

/* A block's `type` (checked). */
static int block_type(const cJSON *b, const char *where, int i, const char **type, larder_error *err) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (!cJSON_IsObject(b) || !cJSON_IsString(t))
        return error_set(err, ERR_INVALID, "'%s[%d]' must be an object with a string 'type'", where, i);
    *type = t->valuestring;
    return 0;
}

/* A tool_result's content: a string or text blocks, joined. */
static int tool_result_text(const cJSON *content, const char *where, strbuf *out, larder_error *err) {
    if (!content) return 0;
    if (cJSON_IsString(content)) return strbuf_puts(out, content->valuestring) ? error_set(err, ERR_NOMEM, "out of memory") : 0;
    if (!cJSON_IsArray(content)) return error_set(err, ERR_INVALID, "'%s.content' must be a string or an array of blocks", where);
    int i = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        const char *type;
        char w[96];
        snprintf(w, sizeof w, "%s.content", where);
        if (block_type(b, w, i, &type, err)) return -1;
        if (strcmp(type, "text") != 0)
            return error_set(err, ERR_INVALID, "'%s.content[%d]': block type '%s' is not supported (text only)", where, i, type);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
        if (!cJSON_IsString(t)) return error_set(err, ERR_INVALID, "'%s.content[%d].text' must be a string", where, i);
        if (i && strbuf_puts(out, "\n")) return error_set(err, ERR_NOMEM, "out of memory");
        if (strbuf_puts(out, t->valuestring)) return error_set(err, ERR_NOMEM, "out of memory");
        i++;
    }
    return 0;
}

/* One Anthropic message (index mi) appended to the OpenAI messages array. */
static int convert_message(const cJSON *m, int mi, cJSON *out, larder_error *err) {
    if (!cJSON_IsObject(m)) return error_set(err, ERR_INVALID, "'messages[%d]' must be an object", mi);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role) ||
        (strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant") && strcmp(role->valuestring, "system")))
        return error_set(err, ERR_INVALID, "'messages[%d].role' must be \"user\", \"assistant\" or \"system\"", mi);
    bool assistant = !strcmp(role->valuestring, "assistant");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", role->valuestring);
        cJSON_AddStringToObject(msg, "content", content->valuestring);
        cJSON_AddItemToArray(out, msg);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return error_set(err, ERR_INVALID, "'messages[%d].content' must be a string or an array of content blocks", mi);
    cJSON *parts = cJSON_CreateArray(), *calls = cJSON_CreateArray(), *results = cJSON_CreateArray();
    strbuf reasoning = STRBUF_INIT, where = STRBUF_INIT, text = STRBUF_INIT;
    int rc = 0, i = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        const char *type;
        strbuf_reset(&where);
        strbuf_printf(&where, "messages[%d].content[%d]", mi, i);
        if ((rc = block_type(b, "messages.content", i, &type, err))) {
            error_set(err, ERR_INVALID, "'%s' must be an object with a string 'type'", where.data);
            break;
        }
        if (!strcmp(type, "text")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
            if (!cJSON_IsString(t)) { rc = error_set(err, ERR_INVALID, "'%s.text' must be a string", where.data); break; }
            cJSON_AddItemToArray(parts, text_part(t->valuestring));
        } else if (!strcmp(type, "thinking")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "thinking");
            if (!cJSON_IsString(t)) { rc = error_set(err, ERR_INVALID, "'%s.thinking' must be a string", where.data); break; }
            if (!assistant) { rc = error_set(err, ERR_INVALID, "'%s': thinking blocks belong to assistant messages", where.data); break; }
            strbuf_puts(&reasoning, t->valuestring);
        } else if (!strcmp(type, "redacted_thinking")) {
            /* encrypted by another server: nothing this model can read */
        } else if (!strcmp(type, "tool_use")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "id"), *name = cJSON_GetObjectItemCaseSensitive(b, "name");
            const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
            if (!assistant) { rc = error_set(err, ERR_INVALID, "'%s': tool_use blocks belong to assistant messages", where.data); break; }
            if (!cJSON_IsString(id) || !cJSON_IsString(name) || !name->valuestring[0]) {
                rc = error_set(err, ERR_INVALID, "'%s' must have a string 'id' and 'name'", where.data);
                break;
            }
            if (!cJSON_IsObject(input)) { rc = error_set(err, ERR_INVALID, "'%s.input' must be an object", where.data); break; }
            char *args = cJSON_PrintUnformatted(input);
            cJSON *call = cJSON_CreateObject(), *fn = cJSON_CreateObject();
            cJSON_AddStringToObject(call, "id", id->valuestring);
            cJSON_AddStringToObject(call, "type", "function");
            cJSON_AddStringToObject(fn, "name", name->valuestring);
            cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
            cJSON_free(args);
            cJSON_AddItemToObject(call, "function", fn);
            cJSON_AddItemToArray(calls, call);
        } else if (!strcmp(type, "tool_result")) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "tool_use_id");
            const cJSON *is_error = cJSON_GetObjectItemCaseSensitive(b, "is_error");
            if (strcmp(role->valuestring, "user")) { rc = error_set(err, ERR_INVALID, "'%s': tool_result blocks belong to user messages", where.data); break; }
            if (!cJSON_IsString(id)) { rc = error_set(err, ERR_INVALID, "'%s.tool_use_id' must be a string", where.data); break; }
            if (is_error && !cJSON_IsNull(is_error) && !cJSON_IsBool(is_error)) {
                rc = error_set(err, ERR_INVALID, "'%s.is_error' must be a boolean", where.data);
                break;
            }
            strbuf_reset(&text);
            if (cJSON_IsTrue(is_error)) strbuf_puts(&text, "Error: ");
            if ((rc = tool_result_text(request_json_field(b, "content"), where.data, &text, err))) break;
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", "tool");
            cJSON_AddStringToObject(msg, "tool_call_id", id->valuestring);
            cJSON_AddStringToObject(msg, "content", text.data ? text.data : "");
            cJSON_AddItemToArray(results, msg);
        } else {
            rc = error_set(err, ERR_INVALID, "'%s': content block type '%s' is not supported (text, thinking, tool_use, tool_result)",
                           where.data, type);
            break;
        }
        i++;
    }
    if (rc == 0 && (where.failed || reasoning.failed || text.failed)) rc = error_set(err, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        /* Tool results answer the previous assistant turn: they come first. */
        cJSON *r;
        while ((r = cJSON_DetachItemFromArray(results, 0))) cJSON_AddItemToArray(out, r);
        if (cJSON_GetArraySize(parts) || cJSON_GetArraySize(calls) || reasoning.len) {
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", role->valuestring);
            if (cJSON_GetArraySize(parts)) {
                cJSON_AddItemToObject(msg, "content", parts);
                parts = NULL;
            } else {
                cJSON_AddStringToObject(msg, "content", "");
            }
            if (cJSON_GetArraySize(calls)) {
                cJSON_AddItemToObject(msg, "tool_calls", calls);
                calls = NULL;
            }
            if (reasoning.len) cJSON_AddStringToObject(msg, "reasoning_content", reasoning.data);
            cJSON_AddItemToArray(out, msg);
        }
    }
    cJSON_Delete(parts);
    cJSON_Delete(calls);
    cJSON_Delete(results);
    strbuf_free(&reasoning);
    strbuf_free(&where);
    strbuf_free(&text);
    return rc;
}

/* ---- top-level fields */

static int convert_system(const cJSON *body, const anthropic_parse_options *o, anthropic_request *r, cJSON *messages,
                          larder_error *err) {
    const cJSON *sys = request_json_field(body, "system");
    if (!sys) return 0;
    strbuf text = STRBUF_INIT;
    if (cJSON_IsString(sys)) {
        strbuf_puts(&text, sys->valuestring);
    } else if (cJSON_IsArray(sys)) {
        int i = 0;
        const cJSON *b;
        cJSON_ArrayForEach(b, sys) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type"), *t = cJSON_GetObjectItemCaseSensitive(b, "text");
            if (!cJSON_IsObject(b) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(t)) {
                strbuf_free(&text);
                return error_set(err, ERR_INVALID, "'system[%d]' must be a text block {\"type\":\"text\",\"text\":...}", i);
            }
            size_t skip = o->keep_billing_header ? 0 : anthropic_billing_header_len(t->valuestring);
            if (skip) r->dropped_billing_header = true;
            strbuf_puts(&text, t->valuestring + skip);
            i++;
        }
    } else {
        return error_set(err, ERR_INVALID, "'system' must be a string or an array of text blocks");
    }
    const char *s = text.data ? text.data : "";
    if (cJSON_IsString(sys) && !o->keep_billing_header) {
        size_t skip = anthropic_billing_header_len(s);
        if (skip) r->dropped_billing_header = true;
        s += skip;
    }
    if (text.failed) {
        strbuf_free(&text);
        return error_set(err, ERR_NOMEM, "out of memory");
    }
    if (*s) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", "system");
        cJSON_AddStringToObject(msg, "content", s);
        cJSON_AddItemToArray(messages, msg);
    }
    strbuf_free(&text);
    return 0;
}

static int convert_tools(const cJSON *body, cJSON *chat, larder_error *err) {
    const cJSON *tools = request_json_field(body, "tools");
    if (!tools) return 0;
    if (!cJSON_IsArray(tools)) return error_set(err, ERR_INVALID, "'tools' must be an array");
    cJSON *out = cJSON_AddArrayToObject(chat, "tools");
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        if (!cJSON_IsObject(t)) return error_set(err, ERR_INVALID, "'tools[%d]' must be an object", i);
        const cJSON *type = request_json_field(t, "type"), *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (type && !cJSON_IsString(type)) return error_set(err, ERR_INVALID, "'tools[%d].type' must be a string", i);
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return error_set(err, ERR_INVALID, "'tools[%d].name' must be a non-empty string", i);
        if (type && strcmp(type->valuestring, "custom") != 0) { i++; continue; } /* a server tool: not the model's */
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
        if (!cJSON_IsObject(schema)) return error_set(err, ERR_INVALID, "'tools[%d].input_schema' must be an object", i);
        const char *desc;
        if (request_json_string(t, "description", "tools[].description", &desc, err)) return -1;
        cJSON *fn = cJSON_CreateObject(), *tool = cJSON_CreateObject();
        cJSON_AddStringToObject(fn, "name", name->valuestring);
        if (desc) cJSON_AddStringToObject(fn, "description", desc);
        cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(schema, true));
        cJSON_AddStringToObject(tool, "type", "function");
        cJSON_AddItemToObject(tool, "function", fn);
        cJSON_AddItemToArray(out, tool);
        i++;
    }
    return 0;
}

/* auto → nothing; none → "none"; any → "required"; tool → the named form
 * (openai_request.h: a forced call). */
static int convert_tool_choice(const cJSON *body, cJSON *chat, larder_error *err) {
    const cJSON *tc = request_json_field(body, "tool_choice");
    if (!tc) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
    if (!cJSON_IsObject(tc) || !cJSON_IsString(type))
        return error_set(err, ERR_INVALID, "'tool_choice' must be an object with a 'type' (auto, any, tool, none)");
    const char *t = type->valuestring;
    if (!strcmp(t, "auto")) return 0;
    if (!strcmp(t, "none") || !strcmp(t, "any")) {
        return cJSON_AddStringToObject(chat, "tool_choice", !strcmp(t, "none") ? "none" : "required")
                   ? 0
                   : error_set(err, ERR_NOMEM, "out of memory");
    }
    if (!strcmp(t, "tool")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return error_set(err, ERR_INVALID, "'tool_choice.name' must be a string when its type is \"tool\"");
        bool found = false;
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(chat, "tools"), *tool;
        cJSON_ArrayForEach(tool, tools) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
            found |= !strcmp(cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring, name->valuestring);
        }
        if (!found) return error_set(err, ERR_INVALID, "'tool_choice.name': no tool named '%.128s' in 'tools'", name->valuestring);
        return request_json_named_tool_choice(chat, name->valuestring) ? error_set(err, ERR_NOMEM, "out of memory") : 0;
    }
    return error_set(err, ERR_INVALID, "'tool_choice.type' must be auto, any, tool or none (got '%.64s')", t);
}

static int convert_thinking(const cJSON *body, cJSON *chat, larder_error *err) {
    const cJSON *th = request_json_field(body, "thinking");
    if (!th) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(th, "type");
    if (!cJSON_IsObject(th) || !cJSON_IsString(type))
        return error_set(err, ERR_INVALID, "'thinking' must be an object with a 'type' (enabled, adaptive, disabled)");
    bool on;
    if (!strcmp(type->valuestring, "enabled") || !strcmp(type->valuestring, "adaptive")) on = true;
    else if (!strcmp(type->valuestring, "disabled")) on = false;
    else return error_set(err, ERR_INVALID, "'thinking.type' must be enabled, adaptive or disabled");
    const cJSON *budget = request_json_field(th, "budget_tokens");
    if (budget && (!cJSON_IsNumber(budget) || budget->valuedouble < 0))
        return error_set(err, ERR_INVALID, "'thinking.budget_tokens' must be a non-negative integer");
    cJSON *kw = cJSON_AddObjectToObject(chat, "chat_template_kwargs");
    cJSON_AddBoolToObject(kw, "enable_thinking", on);
    return 0;
}

/* Copies body.from (when present) to chat.to as it is: openai_request_parse checks it. */
static void copy_field(const cJSON *body, const char *from, cJSON *chat, const char *to) {
    const cJSON *v = request_json_field(body, from);
    if (v) cJSON_AddItemToObject(chat, to, cJSON_Duplicate(v, true));
}

static int convert_body(const cJSON *body, const anthropic_parse_options *o, anthropic_request *r, cJSON *chat,
                        larder_error *err) {
    const char *model;
    if (request_json_string(body, "model", "model", &model, err)) return -1;
    if (model) cJSON_AddStringToObject(chat, "model", model);
    const cJSON *max = request_json_field(body, "max_tokens");
    if (!max && !o->count_tokens) return error_set(err, ERR_INVALID, "'max_tokens' is required");
    if (max && (!cJSON_IsNumber(max) || max->valuedouble < 1))
        return error_set(err, ERR_INVALID, "'max_tokens' must be an integer of at least 1");
    if (max && !o->count_tokens) copy_field(body, "max_tokens", chat, "max_tokens");
    cJSON *messages = cJSON_AddArrayToObject(chat, "messages");
    if (convert_system(body, o, r, messages, err)) return -1;
    const cJSON *ms = request_json_field(body, "messages");
    if (!ms) return error_set(err, ERR_INVALID, "'messages' is required");
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0) return error_set(err, ERR_INVALID, "'messages' must be a non-empty array");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        if (convert_message(m, i++, messages, err)) return -1;
    }
    if (cJSON_GetArraySize(messages) == 0) return error_set(err, ERR_INVALID, "'messages' holds no content");
    if (convert_tools(body, chat, err) || convert_tool_choice(body, chat, err) || convert_thinking(body, chat, err)) return -1;
    const cJSON *stops = request_json_field(body, "stop_sequences");
    if (stops && !cJSON_IsArray(stops)) return error_set(err, ERR_INVALID, "'stop_sequences' must be an array of strings");
    if (stops) {
        const cJSON *s;
        cJSON_ArrayForEach(s, stops) {
            if (!cJSON_IsString(s)) return error_set(err, ERR_INVALID, "'stop_sequences' must be an array of strings");
        }
    }
    copy_field(body, "stop_sequences", chat, "stop");
    copy_field(body, "temperature", chat, "temperature");
    copy_field(body, "top_p", chat, "top_p");
    copy_field(body, "top_k", chat, "top_k");
    copy_field(body, "stream", chat, "stream");
    const cJSON *meta = request_json_field(body, "metadata");
    if (meta && !cJSON_IsObject(meta)) return error_set(err, ERR_INVALID, "'metadata' must be an object");
    const char *uid;
    if (meta && request_json_string(meta, "user_id", "metadata.user_id", &uid, err)) return -1;
    return 0;
}

int anthropic_request_parse(const char *body, size_t len, const anthropic_parse_options *o, anthropic_request *out,
                            larder_error *err) {
    static const anthropic_parse_options defaults = {0};
    if (!o) o = &defaults;
    memset(out, 0, sizeof *out);
    cJSON *root = request_json_parse(body, len, err);
    if (!root) return -1;
    cJSON *chat = cJSON_CreateObject();
    if (!chat) {
        cJSON_Delete(root);
        return error_set(err, ERR_NOMEM, "out of memory");
    }
    int rc = convert_body(root, o, out, chat, err);
    cJSON_Delete(root);
    if (rc) {
        cJSON_Delete(chat);
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (request_json_to_chat(chat, &out->chat, err)) {
        /* the OpenAI names of the fields that differ */
        if (strstr(err->message, "'stop")) error_prefix(err, "stop_sequences");
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

void anthropic_request_free(anthropic_request *r) {
    if (!r) return;
    openai_request_free(&r->chat);
    memset(r, 0, sizeof *r);
}
