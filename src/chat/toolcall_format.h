/*
 * toolcall_format.h — which tool-call syntax and reasoning markers a model
 * uses, chosen from its chat template's own text.
 *
 * A template shows the model, in the assistant turns it renders, exactly the
 * text the model was trained to write; so the markers it contains name the
 * format. The chooser looks for those literal markers (facts taken from the
 * real templates in shared/templates and llama.cpp's common/chat.cpp):
 *
 *   syntax                 template contains                       families
 *   TOOLCALL_MINIMAX       <minimax:tool_call>                     MiniMax-M2
 *   TOOLCALL_XML_FUNCTION  <tool_call>|<seed:tool_call> with       Qwen3-Coder, Qwen3.5, Nemotron 3,
 *                          <function= and <parameter=              Step-3.5, Seed-OSS
 *   TOOLCALL_MISTRAL       [TOOL_CALLS]                            Mistral Nemo (JSON array),
 *                                                                  Small 3.2, Devstral, Ministral ([ARGS])
 *   TOOLCALL_GLM           <tool_call> with <arg_key>              GLM-4.6/4.7, Spark, Ling 3, Laguna
 *   TOOLCALL_HERMES        <tool_call> (JSON inside)               Qwen2.5, Qwen3, QwQ, Hermes 2/3,
 *                                                                  Granite 4, MiMo, Bielik, Reka
 *   TOOLCALL_LLAMA3_JSON   <|python_tag|>, or a Llama 3 header     Llama 3.1/3.2/3.3
 *                          with "parameters":
 *   TOOLCALL_KIMI          <|tool_calls_section_begin|>            Kimi K2 (Instruct, Thinking)
 *   TOOLCALL_DEEPSEEK      <｜tool▁calls▁begin｜> with <｜tool▁sep｜>   DeepSeek V3.1 (not R1's
 *                          and no ```json                          "function<｜tool▁sep｜>N ```json")
 *   TOOLCALL_DSML          ｜DSML｜ with function_calls             DeepSeek V3.2
 *   TOOLCALL_HARMONY       <|channel|>, <|call|>, functions.       gpt-oss (harmony: analysis channel =
 *                                                                  reasoning, commentary to= = calls,
 *                                                                  final = content)
 *   TOOLCALL_COMMAND_R     <|START_ACTION|>                        Command R7B, Command A (Cohere2)
 *   TOOLCALL_COMMAND_R_PLUS Action: with ```json and "tool_name"    Command R+ (c4ai-command-r-plus)
 *   TOOLCALL_GEMMA         <|tool_call> and <tool_call|>           Gemma 4
 *   TOOLCALL_NONE          anything else (functionary, Gemma 2/3 ...): all output is
 *                          content, and a call cannot be forced (tool_choice required
 *                          or a named tool is answered 400)
 *
 * Reasoning markers: <think>…</think>, <seed:think>…</seed:think> (Seed-OSS),
 * [THINK]…[/THINK] (Ministral reasoning), <mm:think>…</mm:think> (MiniMax-M3),
 * <|START_THINKING|>…<|END_THINKING|> (Cohere), <|channel|>analysis<|message|>…<|end|>
 * (gpt-oss), <|channel>thought…<channel|> (Gemma 4).
 * Whether the output *begins* inside reasoning depends on the rendered
 * prompt (Qwen3.5, MiniMax-M2 and the R1 distills end the generation prompt
 * with "<think>\n"; with enable_thinking=false they close it again), so that
 * is decided from the prompt: toolcall_prompt_opens_reasoning.
 */
#ifndef LARDER_CHAT_TOOLCALL_FORMAT_H
#define LARDER_CHAT_TOOLCALL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef enum toolcall_syntax {
    TOOLCALL_NONE = 0,      /* no tool calls are recognised */
    TOOLCALL_HERMES,        /* <tool_call>{"name": N, "arguments": {..}}</tool_call> (or a JSON array of such) */
    TOOLCALL_XML_FUNCTION,  /* <tool_call>\n<function=N>\n<parameter=P>\nV\n</parameter>\n</function>\n</tool_call> */
    TOOLCALL_LLAMA3_JSON,   /* [<|python_tag|>]{"name": N, "parameters": {..}} at the start of the answer */
    TOOLCALL_MISTRAL,       /* [TOOL_CALLS][{"name":..,"arguments":..}] or [TOOL_CALLS]N[ARGS]{..} */
    TOOLCALL_MINIMAX,       /* <minimax:tool_call><invoke name="N"><parameter name="P">V</parameter></invoke></minimax:tool_call> */
    TOOLCALL_GLM,           /* <tool_call>N<arg_key>K</arg_key><arg_value>V</arg_value></tool_call> (newlines allowed) */
    TOOLCALL_KIMI,          /* <|tool_calls_section_begin|>(<|tool_call_begin|>functions.N:I<|tool_call_argument_begin|>{..}<|tool_call_end|>)+<|tool_calls_section_end|> */
    TOOLCALL_DEEPSEEK,      /* <｜tool▁calls▁begin｜>(<｜tool▁call▁begin｜>N<｜tool▁sep｜>{..}<｜tool▁call▁end｜>)+<｜tool▁calls▁end｜> */
    TOOLCALL_HARMONY,       /* gpt-oss: [<|start|>assistant] to=functions.N<|channel|>commentary json<|message|>{..}<|call|> */
    TOOLCALL_COMMAND_R,     /* <|START_ACTION|>[{"tool_call_id": "0", "tool_name": N, "parameters": {..}}, ..]<|END_ACTION|> */
    TOOLCALL_COMMAND_R_PLUS, /* Action: ```json [{"tool_name": N, "parameters": {..}}, ..]``` */
    TOOLCALL_GEMMA,         /* <|tool_call>call:N{key:<|"|>text<|"|>,n:3,o:{k:[1,true]}}<tool_call|> */
    TOOLCALL_DSML,          /* <｜DSML｜function_calls>(<｜DSML｜invoke name="N">(<｜DSML｜parameter name="P" string="..">V</｜DSML｜parameter>)*</｜DSML｜invoke>)+</｜DSML｜function_calls> */
} toolcall_syntax;

typedef struct toolcall_format {
    toolcall_syntax syntax;
    const char *call_open;    /* marker that opens a call block; "" for LLAMA3_JSON and NONE */
    const char *call_close;   /* marker that closes it; "" where the syntax has none */
    const char *think_open;   /* reasoning markers; NULL when the model has none */
    const char *think_close;
    const char *const *drop;  /* NULL-terminated markers removed from content (the
                                 answer's own wrappers: Command-R's <|START_RESPONSE|>,
                                 gpt-oss's channel headers); NULL: none */
    /* Forcing a call (tool_choice required / a named tool): the answer is
     * started with force_head (any tool: the model writes the name on from
     * there) or force_head + name + force_tail (that tool: the model writes
     * its arguments on from there), as the template writes an assistant's
     * call (tests/chat/test_toolcall_force.c checks each against its
     * template). The prefixes end where the template's text goes on with the
     * name or the arguments, at a token boundary: before a space or '{' the
     * model writes itself. NULL: the syntax cannot be forced (TOOLCALL_NONE:
     * no call syntax is known for the template). */
    const char *force_head, *force_tail;
} toolcall_format;

/* The format for a template's source text (NULL or "" gives TOOLCALL_NONE
 * without reasoning markers). Never fails; the strings point to constants. */
toolcall_format toolcall_format_from_template(const char *template_text);

/* True when the rendered prompt prompt[0, len) ends (trailing whitespace
 * aside) with fmt's reasoning open marker, i.e. the template opened the
 * reasoning block and the output starts inside it. */
bool toolcall_prompt_opens_reasoning(const toolcall_format *fmt, const char *prompt, size_t len);

/* Longest tool name a forced call may name. */
#define TOOLCALL_MAX_FORCED_NAME_BYTES 256

/* The text the answer starts with to force a tool call: of any tool
 * (name NULL) or of `name` (letters, digits, '_', '-', '.', ':' only: it is
 * written into the syntax's JSON string or XML attribute as it is). When the
 * rendered prompt left a reasoning block open (opens_reasoning), the prefix
 * closes it first (think_close + "\n\n"): a forced call skips the thinking.
 * Returns malloc'd NUL-terminated text; NULL with err: ERR_UNSUPPORTED when
 * fmt's syntax cannot be forced, ERR_INVALID for a name that cannot be
 * written, ERR_NOMEM. */
char *toolcall_force_prefix(const toolcall_format *fmt, const char *name, bool opens_reasoning, larder_error *err);

/* A short stable name for logs and tests: "none", "hermes", "xml_function",
 * "llama3_json", "mistral", "minimax", "glm", "kimi", "deepseek", "dsml", "harmony", "command_r", "command_r_plus", "gemma". */
const char *toolcall_syntax_name(toolcall_syntax s);

#endif
