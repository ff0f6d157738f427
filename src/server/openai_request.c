/*
 * openai_request.c — parse and validate an OpenAI request body (see
 * openai_request.h). Each field has one getter that checks its JSON type and
 * range; `null` counts as absent, as OpenAI's server treats it.
 */
#include "server/openai_request.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_syntax.h"
#include "base/utf8.h"
#include "server/json_strict.h"

static char *dup_string(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* The field, or NULL when absent or null. */
static cJSON *field(const cJSON *obj, const char *name) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static int get_number(const cJSON *obj, const char *name, double lo, double hi, double *out, larder_error *err) {
    cJSON *v = field(obj, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return error_set(err, ERR_INVALID, "'%s' must be a number", name);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return error_set(err, ERR_INVALID, "'%s' must be between %g and %g (got %g)", name, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

static int get_integer(const cJSON *obj, const char *name, int64_t lo, int64_t hi, int64_t *out, larder_error *err) {
    cJSON *v = field(obj, name);
    if (!v) return 0;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d))
        return error_set(err, ERR_INVALID, "'%s' must be an integer", name);
    if (d < (double)lo || d > (double)hi)
        return error_set(err, ERR_INVALID, "'%s' must be between %lld and %lld (got %.17g)", name, (long long)lo, (long long)hi, d);
    *out = (int64_t)d;
    return 0;
}

static int get_bool(const cJSON *obj, const char *name, bool *out, larder_error *err) {
    cJSON *v = field(obj, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return error_set(err, ERR_INVALID, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_string(const cJSON *obj, const char *name, char **out, larder_error *err) {
    cJSON *v = field(obj, name);
    if (!v) return 0;
    if (!cJSON_IsString(v)) return error_set(err, ERR_INVALID, "'%s' must be a string", name);
    *out = dup_string(v->valuestring);
    if (!*out) return error_set(err, ERR_NOMEM, "out of memory");
    return 0;
}

/* Moves a field out of the body tree (so it outlives the body). */
static cJSON *take(cJSON *obj, const char *name) {
    if (!field(obj, name)) return NULL;
    return cJSON_DetachItemFromObjectCaseSensitive(obj, name);
}

static int check_content(const cJSON *content, int index, bool allow_null, larder_error *err) {
    if (!content) {
        if (allow_null) return 0;
        return error_set(err, ERR_INVALID, "'messages[%d].content' is required", index);
    }
    if (cJSON_IsString(content)) return 0;
    if (!cJSON_IsArray(content))
        return error_set(err, ERR_INVALID, "'messages[%d].content' must be a string or an array of content parts", index);
    int j = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type))
            return error_set(err, ERR_INVALID, "'messages[%d].content[%d]' must be an object with a 'type'", index, j);
        if (strcmp(type->valuestring, "text") != 0)
            return error_set(err, ERR_INVALID, "'messages[%d].content[%d]': content type '%s' is not supported (text only)", index, j, type->valuestring);
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(part, "text")))
            return error_set(err, ERR_INVALID, "'messages[%d].content[%d].text' must be a string", index, j);
        j++;
    }
    return 0;
}

static int check_messages(const cJSON *messages, larder_error *err) {
    if (!messages) return error_set(err, ERR_INVALID, "'messages' is required");
    if (!cJSON_IsArray(messages)) return error_set(err, ERR_INVALID, "'messages' must be an array");
    if (cJSON_GetArraySize(messages) == 0) return error_set(err, ERR_INVALID, "'messages' must not be empty");
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        if (!cJSON_IsObject(m)) return error_set(err, ERR_INVALID, "'messages[%d]' must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return error_set(err, ERR_INVALID, "'messages[%d].role' must be a string", i);
        bool known = false;
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) known |= !strcmp(role->valuestring, roles[r]);
        if (!known) return error_set(err, ERR_INVALID, "'messages[%d].role': unknown role '%s'", i, role->valuestring);
        bool is_assistant = !strcmp(role->valuestring, "assistant");
        const cJSON *tool_calls = field(m, "tool_calls");
        if (tool_calls) {
            if (!cJSON_IsArray(tool_calls)) return error_set(err, ERR_INVALID, "'messages[%d].tool_calls' must be an array", i);
            const cJSON *tc;
            int j = 0;
            cJSON_ArrayForEach(tc, tool_calls) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
                if (!cJSON_IsObject(tc) || !cJSON_IsObject(fn) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")))
                    return error_set(err, ERR_INVALID, "'messages[%d].tool_calls[%d]' must have a function with a name", i, j);
                const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                if (args && !cJSON_IsString(args) && !cJSON_IsObject(args))
                    return error_set(err, ERR_INVALID, "'messages[%d].tool_calls[%d].function.arguments' must be a string or an object", i, j);
                j++;
            }
        }
        if (check_content(field(m, "content"), i, is_assistant, err)) return -1;
        i++;
    }
    return 0;
}

static int parse_stop(const cJSON *body, openai_request *req, larder_error *err) {
    cJSON *v = field(body, "stop");
    if (!v) return 0;
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0) return error_set(err, ERR_INVALID, "'stop' must be a string or an array of strings");
    if (n > OPENAI_MAX_STOP_STRINGS) return error_set(err, ERR_INVALID, "'stop' has %d strings; at most %d", n, OPENAI_MAX_STOP_STRINGS);
    req->stop = calloc((size_t)(n ? n : 1), sizeof *req->stop);
    if (!req->stop) return error_set(err, ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i);
        if (!cJSON_IsString(s)) return error_set(err, ERR_INVALID, "'stop[%d]' must be a string", i);
        size_t len = strlen(s->valuestring);
        if (len == 0) continue; /* an empty stop string matches nothing */
        if (len > OPENAI_MAX_STOP_BYTES) return error_set(err, ERR_INVALID, "'stop[%d]' is longer than %d bytes", i, OPENAI_MAX_STOP_BYTES);
        if (!(req->stop[req->n_stop] = dup_string(s->valuestring))) return error_set(err, ERR_NOMEM, "out of memory");
        req->n_stop++;
    }
    return 0;
}

static int parse_logit_bias(const cJSON *body, openai_request *req, larder_error *err) {
    cJSON *v = field(body, "logit_bias");
    if (!v) return 0;
    if (!cJSON_IsObject(v)) return error_set(err, ERR_INVALID, "'logit_bias' must be an object mapping token ids to numbers");
    int n = cJSON_GetArraySize(v);
    if (n > OPENAI_MAX_LOGIT_BIAS) return error_set(err, ERR_INVALID, "'logit_bias' has %d entries; at most %d", n, OPENAI_MAX_LOGIT_BIAS);
    req->logit_bias = calloc((size_t)(n ? n : 1), sizeof *req->logit_bias);
    if (!req->logit_bias) return error_set(err, ERR_NOMEM, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        char *end = NULL;
        long id = strtol(e->string, &end, 10);
        if (!e->string[0] || *end || id < 0 || id > INT32_MAX)
            return error_set(err, ERR_INVALID, "'logit_bias' key '%.64s' is not a token id", e->string);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < -100 || e->valuedouble > 100)
            return error_set(err, ERR_INVALID, "'logit_bias[%s]' must be a number between -100 and 100", e->string);
        req->logit_bias[req->n_logit_bias].token = (int32_t)id;
        req->logit_bias[req->n_logit_bias].bias = (float)e->valuedouble;
        req->n_logit_bias++;
    }
    return 0;
}

static int parse_prompt(cJSON *body, openai_request *req, larder_error *err) {
    cJSON *v = field(body, "prompt");
    if (!v) return error_set(err, ERR_INVALID, "'prompt' is required");
    if (cJSON_IsString(v)) return get_string(body, "prompt", &req->prompt, err);
    /* A single prompt as token ids: [1, 2, 3]; or an array holding one prompt. */
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(cJSON_GetArrayItem(v, 0))) {
        req->prompt = dup_string(cJSON_GetArrayItem(v, 0)->valuestring);
        return req->prompt ? 0 : error_set(err, ERR_NOMEM, "out of memory");
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsArray(cJSON_GetArrayItem(v, 0)))
        v = cJSON_GetArrayItem(v, 0);
    if (!cJSON_IsArray(v)) return error_set(err, ERR_INVALID, "'prompt' must be a string or an array of token ids");
    int n = cJSON_GetArraySize(v);
    if (n == 0) return error_set(err, ERR_INVALID, "'prompt' must not be empty");
    if (n > OPENAI_MAX_PROMPT_IDS) return error_set(err, ERR_INVALID, "'prompt' has %d token ids; at most %d", n, OPENAI_MAX_PROMPT_IDS);
    req->prompt_ids = malloc((size_t)n * sizeof *req->prompt_ids);
    if (!req->prompt_ids) return error_set(err, ERR_NOMEM, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble > INT32_MAX)
            return error_set(err, ERR_INVALID, "'prompt' must be a string or an array of token ids (non-negative integers)");
        req->prompt_ids[req->n_prompt_ids++] = (int32_t)e->valuedouble;
    }
    return 0;
}

/* tool_choice → tool_mode / forced_tool (openai_request.h). */
static int parse_tool_choice(openai_request *req, larder_error *err) {
    const cJSON *tc = req->tool_choice;
    if (!tc) return 0;
    const char *name = NULL;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        if (!strcmp(s, "auto")) return 0;
        if (!strcmp(s, "none")) {
            req->tool_mode = OPENAI_TOOLS_NONE;
            return 0;
        }
        if (strcmp(s, "required") != 0)
            return error_set(err, ERR_INVALID, "'tool_choice' must be \"auto\", \"none\", \"required\" or "
                                               "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        req->tool_mode = OPENAI_TOOLS_REQUIRED;
    } else {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *nm = cJSON_IsObject(fn) ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0 || !cJSON_IsString(nm) ||
            !nm->valuestring[0])
            return error_set(err, ERR_INVALID, "'tool_choice' as an object must be "
                                               "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        name = nm->valuestring;
        req->tool_mode = OPENAI_TOOLS_NAMED;
    }
    if (cJSON_GetArraySize(req->tools) == 0)
        return error_set(err, ERR_INVALID, "'tool_choice' forces a tool call but the request has no 'tools'");
    if (!name) return 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, req->tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(fn) ? fn : t, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name)) {
            req->forced_tool = strdup(name);
            return req->forced_tool ? 0 : error_set(err, ERR_NOMEM, "out of memory");
        }
    }
    return error_set(err, ERR_INVALID, "'tool_choice' names the function '%.128s', which is not in 'tools'", name);
}

static int parse_fields(cJSON *body, openai_kind kind, openai_request *req, larder_error *err) {
    if (get_string(body, "model", &req->model, err)) return -1;
    if (kind == OPENAI_CHAT) {
        if (check_messages(field(body, "messages"), err)) return -1;
        req->messages = take(body, "messages");
        cJSON *tools = field(body, "tools");
        if (tools && !cJSON_IsArray(tools)) return error_set(err, ERR_INVALID, "'tools' must be an array");
        req->tools = take(body, "tools");
        cJSON *choice = field(body, "tool_choice");
        if (choice && !cJSON_IsString(choice) && !cJSON_IsObject(choice))
            return error_set(err, ERR_INVALID, "'tool_choice' must be a string or an object");
        req->tool_choice = take(body, "tool_choice");
        if (parse_tool_choice(req, err)) return -1;
        cJSON *kw = field(body, "chat_template_kwargs");
        if (kw && !cJSON_IsObject(kw)) return error_set(err, ERR_INVALID, "'chat_template_kwargs' must be an object");
        req->chat_template_kwargs = take(body, "chat_template_kwargs");
        if (get_string(body, "reasoning_effort", &req->reasoning_effort, err)) return -1;
    } else {
        if (parse_prompt(body, req, err)) return -1;
        if (get_bool(body, "echo", &req->echo, err)) return -1;
    }

    int64_t i64 = -1;
    if (get_integer(body, "max_tokens", 0, INT32_MAX, &i64, err)) return -1;
    if (get_integer(body, "max_completion_tokens", 0, INT32_MAX, &i64, err)) return -1;
    req->max_tokens = i64;
    if (get_number(body, "temperature", 0, 100, &req->temperature, err)) return -1;
    if (get_number(body, "top_p", 0, 1, &req->top_p, err)) return -1;
    i64 = 0;
    if (get_integer(body, "top_k", 0, INT32_MAX, &i64, err)) return -1;
    req->top_k = (int32_t)i64;
    if (get_number(body, "min_p", 0, 1, &req->min_p, err)) return -1;
    if (get_number(body, "presence_penalty", -2, 2, &req->presence_penalty, err)) return -1;
    if (get_number(body, "frequency_penalty", -2, 2, &req->frequency_penalty, err)) return -1;
    if (get_number(body, "repetition_penalty", 0.01, 100, &req->repetition_penalty, err)) return -1;
    i64 = 64;
    if (get_integer(body, "repeat_last_n", 0, 1 << 20, &i64, err)) return -1;
    req->repeat_last_n = (int32_t)i64;
    if (parse_logit_bias(body, req, err)) return -1;
    cJSON *seed = field(body, "seed");
    if (seed) {
        if (!cJSON_IsNumber(seed) || seed->valuedouble != floor(seed->valuedouble) || fabs(seed->valuedouble) > 9007199254740992.0)
            return error_set(err, ERR_INVALID, "'seed' must be an integer");
        req->has_seed = true;
        req->seed = (uint64_t)(int64_t)seed->valuedouble;
    }
    if (parse_stop(body, req, err)) return -1;
    i64 = 1;
    if (get_integer(body, "n", 1, OPENAI_MAX_CHOICES, &i64, err)) return -1;
    req->n = (int32_t)i64;

    if (get_bool(body, "stream", &req->stream, err)) return -1;
    cJSON *so = field(body, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return error_set(err, ERR_INVALID, "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &req->include_usage, err)) return error_prefix(err, "stream_options");
    }
    /* logprobs: a boolean for chat; an integer (how many alternatives) for completions. */
    cJSON *lp = field(body, "logprobs");
    if (lp && kind == OPENAI_COMPLETION && cJSON_IsNumber(lp)) {
        if (get_integer(body, "logprobs", 0, OPENAI_MAX_TOP_LOGPROBS, &i64, err)) return -1;
        req->logprobs = true;
        req->top_logprobs = (int32_t)i64;
    } else {
        if (get_bool(body, "logprobs", &req->logprobs, err)) return -1;
        i64 = 0;
        if (get_integer(body, "top_logprobs", 0, OPENAI_MAX_TOP_LOGPROBS, &i64, err)) return -1;
        req->top_logprobs = (int32_t)i64;
        if (req->top_logprobs > 0 && !req->logprobs)
            return error_set(err, ERR_INVALID, "'top_logprobs' requires 'logprobs' to be true");
    }
    return 0;
}

int openai_request_parse(const char *body, size_t len, openai_kind kind, openai_request *req, larder_error *err) {
    memset(req, 0, sizeof *req);
    req->kind = kind;
    req->max_tokens = -1;
    req->temperature = 1.0;
    req->top_p = 1.0;
    req->repetition_penalty = 1.0;
    req->n = 1;
    if (utf8_valid_prefix(body, len) != len)
        return error_set(err, ERR_INVALID, "request body is not valid UTF-8 (at byte %zu)", utf8_valid_prefix(body, len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        /* cJSON says NULL for bad JSON and for no memory alike: the grammar tells */
        if (json_syntax_ok(body, len, CJSON_NESTING_LIMIT))
            return error_set(err, ERR_NOMEM, "out of memory parsing the request body");
        size_t at = end ? (size_t)(end - body) : 0;
        return error_set(err, ERR_INVALID, "request body is not valid JSON (near byte %zu)", at);
    }
    /* Only whitespace may follow the JSON value. */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            return error_set(err, ERR_INVALID, "request body is not valid JSON (trailing data at byte %zu)", (size_t)(p - body));
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(err, ERR_INVALID, "request body must be a JSON object");
    }
    /* No silent truncation (\u0000) or ambiguity (a key twice). */
    if (json_strict_check_nul(body, len, err) || json_strict_check_keys(root, err)) {
        cJSON_Delete(root);
        return -1;
    }
    int rc = parse_fields(root, kind, req, err);
    cJSON_Delete(root);
    if (rc) openai_request_free(req);
    return rc;
}

void openai_request_free(openai_request *req) {
    if (!req) return;
    free(req->model);
    cJSON_Delete(req->messages);
    cJSON_Delete(req->tools);
    cJSON_Delete(req->tool_choice);
    free(req->forced_tool);
    cJSON_Delete(req->chat_template_kwargs);
    free(req->reasoning_effort);
    free(req->prompt);
    free(req->prompt_ids);
    free(req->logit_bias);
    for (int32_t i = 0; i < req->n_stop; i++) free(req->stop[i]);
    free(req->stop);
    memset(req, 0, sizeof *req);
}
