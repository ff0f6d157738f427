/*
 * responses_request.c — a Responses body checked and converted to an OpenAI
 * chat body (see responses_request.h), then validated by openai_request_parse
 * like every chat request.
 */
#include "server/responses_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "server/request_json.h"

/* The conversion's running state. */
typedef struct convert_state {
    cJSON *messages;        /* the OpenAI messages array */
    cJSON *open_assistant;  /* the last message, when it is an assistant one calls may join */
    strbuf reasoning;       /* from reasoning items, for the next assistant message */
    strbuf where;           /* the current item's path, for messages */
} convert_state;

/* A system message; joins the leading one when only system messages came so far. */
static void add_system(convert_state *c, const char *text) {
    int n = cJSON_GetArraySize(c->messages);
    bool all_system = true;
    const cJSON *m;
    cJSON_ArrayForEach(m, c->messages) all_system &= !strcmp(cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring, "system");
    if (n > 0 && all_system) {
        cJSON *first = cJSON_GetArrayItem(c->messages, 0);
        const char *old = cJSON_GetObjectItemCaseSensitive(first, "content")->valuestring;
        strbuf b = STRBUF_INIT;
        strbuf_printf(&b, "%s\n\n%s", old, text);
        if (b.data) cJSON_ReplaceItemInObjectCaseSensitive(first, "content", cJSON_CreateString(b.data));
        strbuf_free(&b);
        return;
    }
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "system");
    cJSON_AddStringToObject(msg, "content", text);
    cJSON_AddItemToArray(c->messages, msg);
    c->open_assistant = NULL;
}

/* An assistant message, carrying the pending reasoning. */
static cJSON *add_assistant(convert_state *c, const char *text) {
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", text);
    if (c->reasoning.len) cJSON_AddStringToObject(msg, "reasoning_content", c->reasoning.data);
    strbuf_reset(&c->reasoning);
    cJSON_AddItemToArray(c->messages, msg);
    c->open_assistant = msg;
    return msg;
}

/* Text parts of a message (or of a function_call_output) joined into out. */
static int parts_text(const cJSON *content, const char *where, strbuf *out, larder_error *err) {
    if (cJSON_IsString(content)) return strbuf_puts(out, content->valuestring), 0;
    if (!cJSON_IsArray(content)) return error_set(err, ERR_INVALID, "'%s' must be a string or an array of content parts", where);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type))
            return error_set(err, ERR_INVALID, "'%s[%d]' must be an object with a string 'type'", where, i);
        const char *t = type->valuestring, *field = "text";
        if (!strcmp(t, "refusal")) field = "refusal";
        else if (strcmp(t, "input_text") && strcmp(t, "output_text") && strcmp(t, "text"))
            return error_set(err, ERR_INVALID, "'%s[%d]': content type '%s' is not supported (text only)", where, i, t);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, field);
        if (!cJSON_IsString(text)) return error_set(err, ERR_INVALID, "'%s[%d].%s' must be a string", where, i, field);
        strbuf_puts(out, text->valuestring);
        i++;
    }
    return 0;
}

static int convert_message(convert_state *c, const cJSON *item, larder_error *err) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
    const char *r = cJSON_IsString(role) ? role->valuestring : "";
    if (strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "system") && strcmp(r, "developer"))
        return error_set(err, ERR_INVALID, "'%s.role' must be user, assistant, system or developer", c->where.data);
    strbuf text = STRBUF_INIT, w = STRBUF_INIT;
    strbuf_printf(&w, "%s.content", c->where.data);
    int rc = parts_text(cJSON_GetObjectItemCaseSensitive(item, "content"), w.data ? w.data : "content", &text, err);
    const char *t = text.data ? text.data : "";
    if (rc == 0 && (text.failed || w.failed)) rc = error_set(err, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        if (!strcmp(r, "system") || !strcmp(r, "developer")) {
            add_system(c, t);
        } else if (!strcmp(r, "assistant")) {
            add_assistant(c, t);
        } else {
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", "user");
            cJSON_AddStringToObject(msg, "content", t);
            cJSON_AddItemToArray(c->messages, msg);
            c->open_assistant = NULL;
        }
    }
    strbuf_free(&text);
    strbuf_free(&w);
    return rc;
}

static int convert_function_call(convert_state *c, const cJSON *item, larder_error *err) {
    const char *call_id, *name, *args;
    const char *w = c->where.data;
    if (request_json_string(item, "call_id", "function_call.call_id", &call_id, err) ||
        request_json_string(item, "name", "function_call.name", &name, err) ||
        request_json_string(item, "arguments", "function_call.arguments", &args, err))
        return -1;
    if (!call_id || !name || !*name || !args)
        return error_set(err, ERR_INVALID, "'%s' (function_call) needs string 'call_id', 'name' and 'arguments'", w);
    cJSON *msg = c->open_assistant ? c->open_assistant : add_assistant(c, "");
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    if (!calls) calls = cJSON_AddArrayToObject(msg, "tool_calls");
    cJSON *call = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    cJSON_AddStringToObject(call, "id", call_id);
    cJSON_AddStringToObject(call, "type", "function");
    cJSON_AddStringToObject(fn, "name", name);
    cJSON_AddStringToObject(fn, "arguments", args);
    cJSON_AddItemToObject(call, "function", fn);
    cJSON_AddItemToArray(calls, call);
    return 0;
}

static int convert_call_output(convert_state *c, const cJSON *item, larder_error *err) {
    const char *call_id;
    if (request_json_string(item, "call_id", "function_call_output.call_id", &call_id, err)) return -1;
    if (!call_id) return error_set(err, ERR_INVALID, "'%s.call_id' (function_call_output) must be a string", c->where.data);
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(item, "output");
    strbuf text = STRBUF_INIT, w = STRBUF_INIT;
    strbuf_printf(&w, "%s.output", c->where.data);
    int rc = parts_text(output, w.data ? w.data : "output", &text, err);
    if (rc == 0) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", "tool");
        cJSON_AddStringToObject(msg, "tool_call_id", call_id);
        cJSON_AddStringToObject(msg, "content", text.data ? text.data : "");
        cJSON_AddItemToArray(c->messages, msg);
        c->open_assistant = NULL;
    }
    strbuf_free(&text);
    strbuf_free(&w);
    return rc;
}

/* A reasoning item's text: its reasoning_text content, else its summary. */
static int convert_reasoning(convert_state *c, const cJSON *item, larder_error *err) {
    const char *lists[2] = {"content", "summary"}, *types[2] = {"reasoning_text", "summary_text"};
    for (int k = 0; k < 2; k++) {
        const cJSON *list = request_json_field(item, lists[k]);
        if (!list) continue;
        if (!cJSON_IsArray(list)) return error_set(err, ERR_INVALID, "'%s.%s' must be an array", c->where.data, lists[k]);
        size_t before = c->reasoning.len;
        const cJSON *p;
        int i = 0;
        cJSON_ArrayForEach(p, list) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type"), *text = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (!cJSON_IsObject(p) || !cJSON_IsString(type) || strcmp(type->valuestring, types[k]) || !cJSON_IsString(text))
                return error_set(err, ERR_INVALID, "'%s.%s[%d]' must be {\"type\":\"%s\",\"text\":...}", c->where.data, lists[k], i,
                                 types[k]);
            if (c->reasoning.len) strbuf_puts(&c->reasoning, "\n");
            strbuf_puts(&c->reasoning, text->valuestring);
            i++;
        }
        if (c->reasoning.len > before) break; /* content given: the summary repeats it */
    }
    return 0;
}

static int convert_input(const cJSON *body, convert_state *c, larder_error *err) {
    const cJSON *input = request_json_field(body, "input");
    if (!input) return error_set(err, ERR_INVALID, "'input' is required");
    if (cJSON_IsString(input)) {
        cJSON *msg = cJSON_CreateObject();
        cJSON_AddStringToObject(msg, "role", "user");
        cJSON_AddStringToObject(msg, "content", input->valuestring);
        cJSON_AddItemToArray(c->messages, msg);
        return 0;
    }
    if (!cJSON_IsArray(input)) return error_set(err, ERR_INVALID, "'input' must be a string or an array of items");
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, input) {
        strbuf_reset(&c->where);
        strbuf_printf(&c->where, "input[%d]", i++);
        if (!c->where.data) return error_set(err, ERR_NOMEM, "out of memory");
        if (!cJSON_IsObject(item)) return error_set(err, ERR_INVALID, "'%s' must be an object", c->where.data);
        const char *type;
        if (request_json_string(item, "type", "input[].type", &type, err)) return -1;
        int rc;
        if (!type || !strcmp(type, "message")) rc = convert_message(c, item, err);
        else if (!strcmp(type, "function_call")) rc = convert_function_call(c, item, err);
        else if (!strcmp(type, "function_call_output")) rc = convert_call_output(c, item, err);
        else if (!strcmp(type, "reasoning")) rc = convert_reasoning(c, item, err);
        else if (!strcmp(type, "item_reference"))
            rc = error_set(err, ERR_INVALID, "'%s': item_reference needs stored responses; larder keeps none "
                           "(send the items themselves)", c->where.data);
        else
            rc = error_set(err, ERR_INVALID, "'%s': item type '%.64s' is not supported (message, function_call, "
                           "function_call_output, reasoning)", c->where.data, type);
        if (rc) return -1;
    }
    if (c->reasoning.failed) return error_set(err, ERR_NOMEM, "out of memory");
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
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        if (!cJSON_IsObject(t) || !cJSON_IsString(type))
            return error_set(err, ERR_INVALID, "'tools[%d]' must be an object with a string 'type'", i);
        i++;
        if (strcmp(type->valuestring, "function") != 0) continue; /* hosted or client-side kinds the model is not given */
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return error_set(err, ERR_INVALID, "'tools[%d].name' must be a non-empty string", i - 1);
        const cJSON *params = request_json_field(t, "parameters");
        if (params && !cJSON_IsObject(params)) return error_set(err, ERR_INVALID, "'tools[%d].parameters' must be an object", i - 1);
        const char *desc;
        if (request_json_string(t, "description", "tools[].description", &desc, err)) return -1;
        cJSON *fn = cJSON_CreateObject(), *tool = cJSON_CreateObject();
        cJSON_AddStringToObject(fn, "name", name->valuestring);
        if (desc) cJSON_AddStringToObject(fn, "description", desc);
        cJSON_AddItemToObject(fn, "parameters", params ? cJSON_Duplicate(params, true) : cJSON_CreateObject());
        cJSON_AddStringToObject(tool, "type", "function");
        cJSON_AddItemToObject(tool, "function", fn);
        cJSON_AddItemToArray(out, tool);
    }
    return 0;
}

/* auto, hosted tools, allowed_tools → nothing (auto); none and required as
 * they are; {type: function, name} → the chat form (openai_request.h). */
static int convert_tool_choice(const cJSON *body, cJSON *chat, larder_error *err) {
    const cJSON *tc = request_json_field(body, "tool_choice");
    if (!tc) return 0;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        if (!strcmp(s, "none") || !strcmp(s, "required"))
            return cJSON_AddStringToObject(chat, "tool_choice", s) ? 0 : error_set(err, ERR_NOMEM, "out of memory");
        if (strcmp(s, "auto")) return error_set(err, ERR_INVALID, "'tool_choice' must be auto, none, required or a function");
        return 0;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
    if (!cJSON_IsObject(tc) || !cJSON_IsString(type))
        return error_set(err, ERR_INVALID, "'tool_choice' must be a string or an object with a 'type'");
    if (strcmp(type->valuestring, "function") != 0) return 0; /* allowed_tools, hosted tools: as auto */
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0]) return error_set(err, ERR_INVALID, "'tool_choice.name' must be a string");
    bool found = false;
    const cJSON *tool;
    cJSON_ArrayForEach(tool, cJSON_GetObjectItemCaseSensitive(chat, "tools")) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
        found |= !strcmp(cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring, name->valuestring);
    }
    if (!found) return error_set(err, ERR_INVALID, "'tool_choice.name': no function tool named '%.128s'", name->valuestring);
    return request_json_named_tool_choice(chat, name->valuestring) ? error_set(err, ERR_NOMEM, "out of memory") : 0;
}

static int convert_options(const cJSON *body, cJSON *chat, larder_error *err) {
    if (request_json_field(body, "previous_response_id"))
        return error_set(err, ERR_INVALID, "'previous_response_id' is not supported: larder stores no responses "
                         "(store: false); send the whole conversation in 'input'");
    const cJSON *bg = request_json_field(body, "background");
    if (bg && !cJSON_IsBool(bg)) return error_set(err, ERR_INVALID, "'background' must be a boolean");
    if (cJSON_IsTrue(bg)) return error_set(err, ERR_INVALID, "'background' responses are not supported (larder stores none)");
    const cJSON *store = request_json_field(body, "store");
    if (store && !cJSON_IsBool(store)) return error_set(err, ERR_INVALID, "'store' must be a boolean");
    const cJSON *text = request_json_field(body, "text");
    if (text) {
        if (!cJSON_IsObject(text)) return error_set(err, ERR_INVALID, "'text' must be an object");
        const cJSON *fmt = request_json_field(text, "format");
        if (fmt) {
            const cJSON *ft = cJSON_GetObjectItemCaseSensitive(fmt, "type");
            if (!cJSON_IsObject(fmt) || !cJSON_IsString(ft)) return error_set(err, ERR_INVALID, "'text.format' must be an object with a 'type'");
            if (strcmp(ft->valuestring, "text"))
                return error_set(err, ERR_INVALID, "'text.format' type '%.64s' is not supported (text only)", ft->valuestring);
        }
    }
    const cJSON *reasoning = request_json_field(body, "reasoning");
    if (reasoning) {
        if (!cJSON_IsObject(reasoning)) return error_set(err, ERR_INVALID, "'reasoning' must be an object");
        const char *effort;
        if (request_json_string(reasoning, "effort", "reasoning.effort", &effort, err)) return -1;
        const char *summary;
        if (request_json_string(reasoning, "summary", "reasoning.summary", &summary, err)) return -1;
        if (effort) {
            cJSON_AddStringToObject(chat, "reasoning_effort", effort);
            if (!strcmp(effort, "none")) cJSON_AddBoolToObject(cJSON_AddObjectToObject(chat, "chat_template_kwargs"), "enable_thinking", false);
        }
    }
    const cJSON *meta = request_json_field(body, "metadata");
    if (meta && !cJSON_IsObject(meta)) return error_set(err, ERR_INVALID, "'metadata' must be an object");
    const cJSON *ptc = request_json_field(body, "parallel_tool_calls");
    if (ptc && !cJSON_IsBool(ptc)) return error_set(err, ERR_INVALID, "'parallel_tool_calls' must be a boolean");
    static const char *const copied[][2] = {{"max_output_tokens", "max_tokens"}, {"temperature", "temperature"},
                                            {"top_p", "top_p"}, {"stream", "stream"}, {"model", "model"}};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        const cJSON *v = request_json_field(body, copied[i][0]);
        if (v) cJSON_AddItemToObject(chat, copied[i][1], cJSON_Duplicate(v, true));
    }
    return 0;
}

/* The fields a response object repeats, copied from the body. */
static cJSON *echo_fields(const cJSON *body) {
    static const char *const names[] = {"instructions", "tool_choice", "tools", "temperature", "top_p", "max_output_tokens",
                                        "parallel_tool_calls", "reasoning", "store", "metadata"};
    cJSON *e = cJSON_CreateObject();
    for (size_t i = 0; e && i < sizeof names / sizeof names[0]; i++) {
        const cJSON *v = request_json_field(body, names[i]);
        if (v) cJSON_AddItemToObject(e, names[i], cJSON_Duplicate(v, true));
    }
    return e;
}

static int convert_body(const cJSON *body, responses_request *r, cJSON *chat, larder_error *err) {
    convert_state c = {.messages = cJSON_AddArrayToObject(chat, "messages")};
    const char *instructions;
    int rc = request_json_string(body, "instructions", "instructions", &instructions, err);
    if (rc == 0 && instructions && *instructions) add_system(&c, instructions);
    if (rc == 0) rc = convert_input(body, &c, err);
    if (rc == 0 && cJSON_GetArraySize(c.messages) == 0) rc = error_set(err, ERR_INVALID, "'input' holds no items");
    if (rc == 0) rc = convert_tools(body, chat, err);
    if (rc == 0) rc = convert_tool_choice(body, chat, err);
    if (rc == 0) rc = convert_options(body, chat, err);
    strbuf_free(&c.reasoning);
    strbuf_free(&c.where);
    return rc;
}

int responses_request_parse(const char *body, size_t len, responses_request *out, larder_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = request_json_parse(body, len, err);
    if (!root) return -1;
    cJSON *chat = cJSON_CreateObject();
    int rc = chat ? convert_body(root, out, chat, err) : error_set(err, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        out->echo = echo_fields(root);
        if (!out->echo) rc = error_set(err, ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(root);
    if (rc == 0) {
        rc = request_json_to_chat(chat, &out->chat, err);
        if (rc && strstr(err->message, "'max_tokens'")) error_prefix(err, "max_output_tokens");
    } else {
        cJSON_Delete(chat);
    }
    if (rc) {
        cJSON_Delete(out->echo);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

void responses_request_free(responses_request *r) {
    if (!r) return;
    openai_request_free(&r->chat);
    cJSON_Delete(r->echo);
    memset(r, 0, sizeof *r);
}
