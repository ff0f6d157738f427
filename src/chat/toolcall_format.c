/*
 * toolcall_format.c — chooses the tool-call syntax and reasoning markers
 * from the literal markers a chat template contains (see toolcall_format.h
 * for the families): two tables of marker rules, first match wins.
 */
#include "chat/toolcall_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* A row matches a template that contains every `all` marker (up to three,
 * NULL-terminated) and not `none`. */
typedef struct marker_rule {
    const char *all[4];
    const char *none;
} marker_rule;

static bool rule_matches(const marker_rule *r, const char *t) {
    for (int i = 0; r->all[i]; i++)
        if (!has(t, r->all[i])) return false;
    return !r->none || !has(t, r->none);
}

/* The tool-call syntaxes, first match wins. Order matters: the more
 * specific markers come first (Qwen3-Coder's XML also contains <tool_call>,
 * Hermes-on-Llama templates also contain "parameters"). Functionary v3.1
 * also has <|python_tag|> but writes <function=…>: excluded from Llama 3. */
static const char *const HARMONY_DROP[] = {"<|start|>assistant", "<|channel|>final<|message|>",
                                           "<|channel|>commentary<|message|>", "<|end|>", "<|return|>", NULL};
static const char *const COHERE_DROP[] = {"<|START_RESPONSE|>", "<|END_RESPONSE|>", NULL};

/* force_head / force_tail: toolcall_format.h; what each template writes for
 * an assistant's call (shared/templates), cut before the name and after it. */
static const struct {
    marker_rule when;
    toolcall_syntax syntax;
    const char *call_open, *call_close;
    const char *const *drop;
    const char *force_head, *force_tail;
} SYNTAX_RULES[] = {
    {{{"<|tool_call>", "<tool_call|>"}, NULL}, TOOLCALL_GEMMA, "<|tool_call>call:", "<tool_call|>", NULL,
     "<|tool_call>call:", ""},
    {{{"<|channel|>", "<|call|>", "functions."}, NULL}, TOOLCALL_HARMONY, " to=functions.", "<|call|>", HARMONY_DROP,
     " to=functions.", "<|channel|>commentary json<|message|>"},
    {{{"<|START_ACTION|>", "<|END_ACTION|>"}, NULL}, TOOLCALL_COMMAND_R, "<|START_ACTION|>", "<|END_ACTION|>", COHERE_DROP,
     "<|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"", "\", \"parameters\":"},
    {{{"Action:", "```json", "\"tool_name\""}, NULL}, TOOLCALL_COMMAND_R_PLUS, "Action:", "```", NULL,
     "Action:\n```json\n[\n    {\n        \"tool_name\": \"", "\",\n        \"parameters\":"},
    {{{"<minimax:tool_call>"}, NULL}, TOOLCALL_MINIMAX, "<minimax:tool_call>", "</minimax:tool_call>", NULL,
     "<minimax:tool_call>\n<invoke name=\"", "\">\n"},
    {{{"\xef\xbd\x9c" "DSML" "\xef\xbd\x9c", "function_calls"}, NULL}, TOOLCALL_DSML,
     "<\xef\xbd\x9c" "DSML" "\xef\xbd\x9c" "function_calls>", "</\xef\xbd\x9c" "DSML" "\xef\xbd\x9c" "function_calls>", NULL,
     "<\xef\xbd\x9c" "DSML" "\xef\xbd\x9c" "function_calls>\n<\xef\xbd\x9c" "DSML" "\xef\xbd\x9c" "invoke name=\"", "\">\n"},
    {{{"<|tool_calls_section_begin|>"}, NULL}, TOOLCALL_KIMI, "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", NULL,
     "<|tool_calls_section_begin|><|tool_call_begin|>functions.", ":0<|tool_call_argument_begin|>"},
    {{{"<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>", "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>"}, "```json"},
     TOOLCALL_DEEPSEEK, "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>",
     "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "end\xef\xbd\x9c>", NULL,
     "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c><\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "begin\xef\xbd\x9c>",
     "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>"},
    {{{"<seed:tool_call>", "<function=", "<parameter="}, NULL}, TOOLCALL_XML_FUNCTION, "<seed:tool_call>", "</seed:tool_call>", NULL,
     "<seed:tool_call>\n<function=", ">\n"},
    {{{"<tool_call>", "<function=", "<parameter="}, NULL}, TOOLCALL_XML_FUNCTION, "<tool_call>", "</tool_call>", NULL,
     "<tool_call>\n<function=", ">\n"},
    {{{"[TOOL_CALLS]", "[CALL_ID]", "[ARGS]"}, NULL}, TOOLCALL_MISTRAL, "[TOOL_CALLS]", "", NULL, "[TOOL_CALLS]", "[CALL_ID]"},
    {{{"[TOOL_CALLS]", "[ARGS]"}, NULL}, TOOLCALL_MISTRAL, "[TOOL_CALLS]", "", NULL, "[TOOL_CALLS]", "[ARGS]"},
    {{{"[TOOL_CALLS]"}, NULL}, TOOLCALL_MISTRAL, "[TOOL_CALLS]", "", NULL,
     "[TOOL_CALLS][{\"name\": \"", "\", \"arguments\":"},
    {{{"<tool_call>", "<arg_key>"}, NULL}, TOOLCALL_GLM, "<tool_call>", "</tool_call>", NULL, "<tool_call>", ""},
    {{{"<tool_call>"}, NULL}, TOOLCALL_HERMES, "<tool_call>", "</tool_call>", NULL,
     "<tool_call>\n{\"name\": \"", "\", \"arguments\":"},
    {{{"<|python_tag|>"}, "<function="}, TOOLCALL_LLAMA3_JSON, "", "", NULL, "{\"name\": \"", "\", \"parameters\":"},
    {{{"<|start_header_id|>", "\"parameters\": "}, "<function="}, TOOLCALL_LLAMA3_JSON, "", "", NULL,
     "{\"name\": \"", "\", \"parameters\":"},
};

/* The reasoning markers, first match wins. */
static const struct {
    marker_rule when;
    const char *think_open, *think_close;
} THINK_RULES[] = {
    {{{"<|channel>thought", "<channel|>"}, NULL}, "<|channel>thought", "<channel|>"},
    {{{"<|channel|>analysis<|message|>"}, NULL}, "<|channel|>analysis<|message|>", "<|end|>"},
    {{{"<|START_THINKING|>", "<|END_THINKING|>"}, NULL}, "<|START_THINKING|>", "<|END_THINKING|>"},
    {{{"<seed:think>"}, NULL}, "<seed:think>", "</seed:think>"},
    {{{"<mm:think>"}, NULL}, "<mm:think>", "</mm:think>"},
    {{{"[THINK]", "[/THINK]"}, NULL}, "[THINK]", "[/THINK]"},
    {{{"<think>"}, NULL}, "<think>", "</think>"},
    {{{"</think>"}, NULL}, "<think>", "</think>"},
};

toolcall_format toolcall_format_from_template(const char *t) {
    toolcall_format f = {TOOLCALL_NONE, "", "", NULL, NULL, NULL, NULL, NULL};
    if (!t) return f;
    for (size_t i = 0; i < sizeof SYNTAX_RULES / sizeof SYNTAX_RULES[0]; i++) {
        if (!rule_matches(&SYNTAX_RULES[i].when, t)) continue;
        f.syntax = SYNTAX_RULES[i].syntax;
        f.call_open = SYNTAX_RULES[i].call_open;
        f.call_close = SYNTAX_RULES[i].call_close;
        f.drop = SYNTAX_RULES[i].drop;
        f.force_head = SYNTAX_RULES[i].force_head;
        f.force_tail = SYNTAX_RULES[i].force_tail;
        break;
    }
    for (size_t i = 0; i < sizeof THINK_RULES / sizeof THINK_RULES[0]; i++) {
        if (!rule_matches(&THINK_RULES[i].when, t)) continue;
        f.think_open = THINK_RULES[i].think_open;
        f.think_close = THINK_RULES[i].think_close;
        break;
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

static bool forced_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > TOOLCALL_MAX_FORCED_NAME_BYTES) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == ':'))
            return false;
    }
    return true;
}

char *toolcall_force_prefix(const toolcall_format *fmt, const char *name, bool opens_reasoning, larder_error *err) {
    if (!fmt || !fmt->force_head) {
        error_set(err, ERR_UNSUPPORTED,
                  "this model's chat template writes no tool-call syntax larder knows, so a tool call cannot be "
                  "forced (tool_choice required / any / a named tool); use auto");
        return NULL;
    }
    if (name && !forced_name_ok(name)) {
        error_set(err, ERR_INVALID,
                  "cannot force the tool '%.64s': a forced tool's name may hold letters, digits, '_', '-', '.' and ':' only",
                  name);
        return NULL;
    }
    const char *close = opens_reasoning && fmt->think_close ? fmt->think_close : "";
    const char *sep = *close ? "\n\n" : "";
    const char *tail = name && fmt->force_tail ? fmt->force_tail : "";
    size_t n = strlen(close) + strlen(sep) + strlen(fmt->force_head) + (name ? strlen(name) : 0) + strlen(tail);
    char *out = malloc(n + 1);
    if (!out) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(out, n + 1, "%s%s%s%s%s", close, sep, fmt->force_head, name ? name : "", tail);
    return out;
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
    case TOOLCALL_KIMI: return "kimi";
    case TOOLCALL_DEEPSEEK: return "deepseek";
    case TOOLCALL_DSML: return "dsml";
    case TOOLCALL_HARMONY: return "harmony";
    case TOOLCALL_COMMAND_R: return "command_r";
    case TOOLCALL_COMMAND_R_PLUS: return "command_r_plus";
    case TOOLCALL_GEMMA: return "gemma";
    }
    return "unknown";
}
