/*
 * test_toolcall_format.c — the format chooser picks the tool-call syntax and
 * reasoning markers each real template (shared/templates) renders, and the
 * rendered prompt tells whether the output starts inside reasoning.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/toolcall_format.h"
#include "test_files.h"


typedef struct expect { const char *template_name, *syntax, *call_open, *think_open; } expect;

static const expect TABLE[] = {
    {"Qwen-Qwen2.5-7B-Instruct", "hermes", "<tool_call>", NULL},
    {"Qwen-Qwen3-0.6B", "hermes", "<tool_call>", "<think>"},
    {"Qwen-QwQ-32B", "hermes", "<tool_call>", "<think>"},
    {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "hermes", "<tool_call>", NULL},
    {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "hermes", "<tool_call>", NULL},
    {"ibm-granite-granite-4.0", "hermes", "<tool_call>", NULL},
    {"MiMo-VL", "hermes", "<tool_call>", NULL},
    {"Qwen3-Coder", "xml_function", "<tool_call>", NULL},
    {"Qwen3.5-4B", "xml_function", "<tool_call>", "<think>"},
    {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "xml_function", "<tool_call>", "<think>"},
    {"StepFun3.5-Flash", "xml_function", "<tool_call>", "<think>"},
    {"ByteDance-Seed-OSS", "xml_function", "<seed:tool_call>", "<seed:think>"},
    {"meta-llama-Llama-3.1-8B-Instruct", "llama3_json", "", NULL},
    {"meta-llama-Llama-3.2-3B-Instruct", "llama3_json", "", NULL},
    {"meta-llama-Llama-3.3-70B-Instruct", "llama3_json", "", NULL},
    {"Mistral-Small-3.2-24B-Instruct-2506", "mistral", "[TOOL_CALLS]", NULL},
    {"unsloth-mistral-Devstral-Small-2507", "mistral", "[TOOL_CALLS]", NULL},
    {"mistralai-Mistral-Nemo-Instruct-2407", "mistral", "[TOOL_CALLS]", NULL},
    {"mistralai-Ministral-3-14B-Reasoning-2512", "mistral", "[TOOL_CALLS]", "[THINK]"},
    {"MiniMax-M2", "minimax", "<minimax:tool_call>", "<think>"},
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "none", "", "<think>"},
    {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "none", "", "<think>"},
    /* formats left out: no calls parsed, but their reasoning markers are */
    {"GLM-4.6", "glm", "<tool_call>", "<think>"},
    {"GLM-4.7-Flash", "glm", "<tool_call>", "<think>"},
    {"poolside-Laguna-XS-2.1", "glm", "<tool_call>", "<think>"},
    {"inclusionai-ling-3.0-flash", "glm", "<tool_call>", "<think>"},
    {"Spark2.5", "glm", "<tool_call>", "<think>"},
    {"moonshotai-Kimi-K2", "kimi", "<|tool_calls_section_begin|>", NULL},
    {"Kimi-K2-Instruct", "kimi", "<|tool_calls_section_begin|>", NULL},
    {"Kimi-K2-Thinking", "kimi", "<|tool_calls_section_begin|>", "<think>"},
    {"deepseek-ai-DeepSeek-V3.1", "deepseek", "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>", "<think>"},
    {"deepseek-ai-DeepSeek-V3.2", "dsml", "<\xef\xbd\x9c" "DSML\xef\xbd\x9c" "function_calls>", "<think>"},
    {"llama-cpp-deepseek-r1", "none", "", "<think>"},
    {"openai-gpt-oss-120b", "harmony", " to=functions.", "<|channel|>analysis<|message|>"},
    {"CohereForAI-c4ai-command-r7b-12-2024-tool_use", "command_r", "<|START_ACTION|>", "<|START_THINKING|>"},
    {"Cohere2MoE", "command_r", "<|START_ACTION|>", "<|START_THINKING|>"},
    {"CohereForAI-c4ai-command-r-plus-tool_use", "command_r_plus", "Action:", NULL},
    {"meetkai-functionary-medium-v3.1", "none", "", NULL},
    {"google-gemma-2-2b-it", "none", "", NULL},
    {"google-gemma-4-31B-it", "gemma", "<|tool_call>call:", "<|channel>thought"},
    {"google-gemma-4-31B-it-interleaved", "gemma", "<|tool_call>call:", "<|channel>thought"},
};

static void test_chooser_on_real_templates(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof TABLE / sizeof *TABLE; i++) {
        const expect *e = &TABLE[i];
        char *t = test_read_template(e->template_name);
        toolcall_format f = toolcall_format_from_template(t);
        printf("%-45s %-13s %s\n", e->template_name, toolcall_syntax_name(f.syntax),
               f.think_open ? f.think_open : "-");
        assert_string_equal(toolcall_syntax_name(f.syntax), e->syntax);
        assert_string_equal(f.call_open, e->call_open);
        if (e->think_open) assert_string_equal(f.think_open, e->think_open);
        else assert_null(f.think_open);
        free(t);
    }
}

static void test_chooser_degenerate_inputs(void **state) {
    (void)state;
    toolcall_format f = toolcall_format_from_template(NULL);
    assert_int_equal(f.syntax, TOOLCALL_NONE);
    assert_null(f.think_open);
    f = toolcall_format_from_template("");
    assert_int_equal(f.syntax, TOOLCALL_NONE);
    assert_string_equal(f.call_open, "");
}

static void test_prompt_opens_reasoning(void **state) {
    (void)state;
    char *t = test_read_template("Qwen3.5-4B");
    toolcall_format f = toolcall_format_from_template(t);
    free(t);
    const char *open = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n";
    const char *closed = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_true(toolcall_prompt_opens_reasoning(&f, open, strlen(open)));
    assert_false(toolcall_prompt_opens_reasoning(&f, closed, strlen(closed)));
    assert_false(toolcall_prompt_opens_reasoning(&f, "", 0));
    assert_false(toolcall_prompt_opens_reasoning(&f, "<think", 6));
    t = test_read_template("Qwen-Qwen2.5-7B-Instruct");
    f = toolcall_format_from_template(t);
    free(t);
    assert_false(toolcall_prompt_opens_reasoning(&f, open, strlen(open)));   /* no markers */
    assert_false(toolcall_prompt_opens_reasoning(NULL, open, strlen(open)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chooser_on_real_templates),
        cmocka_unit_test(test_chooser_degenerate_inputs),
        cmocka_unit_test(test_prompt_opens_reasoning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
