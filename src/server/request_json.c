/*
 * request_json.c — body parsing and field getters shared by the protocol
 * converters (see request_json.h).
 */
#include "server/request_json.h"

#include <stdlib.h>
#include <string.h>

#include "base/json_syntax.h"
#include "base/utf8.h"
#include "server/json_strict.h"

cJSON *request_json_parse(const char *body, size_t len, larder_error *err) {
    size_t valid = utf8_valid_prefix(body, len);
    if (valid != len) {
        error_set(err, ERR_INVALID, "request body is not valid UTF-8 (at byte %zu)", valid);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        if (json_syntax_ok(body, len, CJSON_NESTING_LIMIT)) /* valid JSON cJSON could not hold */
            error_set(err, ERR_NOMEM, "out of memory parsing the request body");
        else
            error_set(err, ERR_INVALID, "request body is not valid JSON (near byte %zu)", end ? (size_t)(end - body) : (size_t)0);
        return NULL;
    }
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(root);
            error_set(err, ERR_INVALID, "request body is not valid JSON (trailing data at byte %zu)", (size_t)(p - body));
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        error_set(err, ERR_INVALID, "request body must be a JSON object");
        return NULL;
    }
    /* no silent truncation (\u0000) or ambiguity (a key twice) */
    if (json_strict_check_nul(body, len, err) || json_strict_check_keys(root, err)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

cJSON *request_json_field(const cJSON *obj, const char *name) {
    cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int request_json_string(const cJSON *obj, const char *name, const char *what, const char **out, larder_error *err) {
    const cJSON *v = request_json_field(obj, name);
    *out = NULL;
    if (!v) return 0;
    if (!cJSON_IsString(v)) return error_set(err, ERR_INVALID, "'%s' must be a string", what);
    *out = v->valuestring;
    return 0;
}

int request_json_to_chat(cJSON *chat, openai_request *req, larder_error *err) {
    char *text = cJSON_PrintUnformatted(chat);
    cJSON_Delete(chat);
    if (!text) return error_set(err, ERR_NOMEM, "out of memory");
    int rc = openai_request_parse(text, strlen(text), OPENAI_CHAT, req, err);
    cJSON_free(text);
    return rc;
}

int request_json_named_tool_choice(cJSON *chat, const char *name) {
    cJSON *tc = cJSON_CreateObject(), *fn = NULL;
    if (!tc || !cJSON_AddItemToObject(chat, "tool_choice", tc)) {
        cJSON_Delete(tc);
        return -1;
    }
    return cJSON_AddStringToObject(tc, "type", "function") && (fn = cJSON_AddObjectToObject(tc, "function")) &&
                   cJSON_AddStringToObject(fn, "name", name)
               ? 0
               : -1;
}

