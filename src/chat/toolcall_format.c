/*
 * toolcall_format.c — chooses the tool-call syntax and reasoning markers
 * from the literal markers a chat template contains (see toolcall_format.h
 * for the table). Order matters: the more specific markers are tested first
 * (Qwen3-Coder's XML also contains <tool_call>, Hermes-on-Llama templates
 * also contain "parameters").
 */
#include "chat/toolcall_format.h"

#include <string.h>

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

toolcall_format toolcall_format_from_template(const char *t) {
    toolcall_format f = {TOOLCALL_NONE, "", "", NULL, NULL};
    if (!t) return f;

    if (has(t, "<minimax:tool_call>")) {
        f.syntax = TOOLCALL_MINIMAX;
        f.call_open = "<minimax:tool_call>";
        f.call_close = "</minimax:tool_call>";
    } else if (has(t, "<seed:tool_call>") && has(t, "<function=") && has(t, "<parameter=")) {
        f.syntax = TOOLCALL_XML_FUNCTION;
        f.call_open = "<seed:tool_call>";
        f.call_close = "</seed:tool_call>";
    } else if (has(t, "<tool_call>") && has(t, "<function=") && has(t, "<parameter=")) {
        f.syntax = TOOLCALL_XML_FUNCTION;
        f.call_open = "<tool_call>";
        f.call_close = "</tool_call>";
    } else if (has(t, "[TOOL_CALLS]")) {
        f.syntax = TOOLCALL_MISTRAL;
        f.call_open = "[TOOL_CALLS]";
    } else if (has(t, "<tool_call>") && has(t, "<arg_key>")) {
        f.syntax = TOOLCALL_GLM;
        f.call_open = "<tool_call>";
        f.call_close = "</tool_call>";
    } else if (has(t, "<tool_call>")) {
        f.syntax = TOOLCALL_HERMES;
        f.call_open = "<tool_call>";
        f.call_close = "</tool_call>";
    } else if (!has(t, "<function=") &&
               (has(t, "<|python_tag|>") || (has(t, "<|start_header_id|>") && has(t, "\"parameters\": ")))) {
        /* functionary v3.1 also has <|python_tag|> but writes <function=…>: excluded above. */
        f.syntax = TOOLCALL_LLAMA3_JSON;
    }

    if (has(t, "<seed:think>")) {
        f.think_open = "<seed:think>";
        f.think_close = "</seed:think>";
    } else if (has(t, "<mm:think>")) {
        f.think_open = "<mm:think>";
        f.think_close = "</mm:think>";
    } else if (has(t, "[THINK]") && has(t, "[/THINK]")) {
        f.think_open = "[THINK]";
        f.think_close = "[/THINK]";
    } else if (has(t, "<think>") || has(t, "</think>")) {
        f.think_open = "<think>";
        f.think_close = "</think>";
    }
    return f;
}

bool toolcall_prompt_opens_reasoning(const toolcall_format *fmt, const char *prompt, size_t len) {
    if (!fmt || !fmt->think_open || !prompt) return false;
    while (len > 0 && (prompt[len - 1] == ' ' || prompt[len - 1] == '\n' || prompt[len - 1] == '\r' ||
                       prompt[len - 1] == '\t'))
        len--;
    size_t m = strlen(fmt->think_open);
    return len >= m && memcmp(prompt + len - m, fmt->think_open, m) == 0;
}

const char *toolcall_syntax_name(toolcall_syntax s) {
    switch (s) {
    case TOOLCALL_NONE: return "none";
    case TOOLCALL_HERMES: return "hermes";
    case TOOLCALL_XML_FUNCTION: return "xml_function";
    case TOOLCALL_LLAMA3_JSON: return "llama3_json";
    case TOOLCALL_MISTRAL: return "mistral";
    case TOOLCALL_MINIMAX: return "minimax";
    case TOOLCALL_GLM: return "glm";
    }
    return "unknown";
}
