/*
 * test_chat_prompt.c — messages and tools become the template's context as
 * Hugging Face builds it: text parts joined into one string, tool-call
 * arguments sent as JSON strings parsed into objects (other strings kept),
 * tools only when there are some, bos/eos/add_generation_prompt and
 * reasoning_effort set, chat_template_kwargs entries adding variables (and
 * winning over reasoning_effort) but never setting messages, tools,
 * add_generation_prompt or the special tokens (ERR_INVALID); the
 * caller's trees are left as they were; a template that raises is ERR_INVALID
 * and one that does not parse is ERR_FORMAT. (Byte equality with Jinja2 on
 * real templates: tests/jinja/test_jinja_reference.py.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_prompt.h"

/* Renders `tmpl` over the given JSON texts (NULL: absent); returns the text
 * (caller frees) or NULL with *err. */
static char *render(const char *tmpl, const char *messages, const char *tools, const char *effort,
                    const char *kwargs, larder_error *err) {
    chat_prompt *cp = chat_prompt_create(tmpl, "<s>", "</s>", err);
    assert_non_null(cp);
    cJSON *m = cJSON_Parse(messages), *t = tools ? cJSON_Parse(tools) : NULL, *k = kwargs ? cJSON_Parse(kwargs) : NULL;
    assert_non_null(m);
    chat_prompt_input in = {m, t, effort, k};
    size_t len = 0;
    char *text = chat_prompt_render(cp, &in, &len, err);
    if (text) assert_int_equal(strlen(text), len);
    cJSON_Delete(m);
    cJSON_Delete(t);
    cJSON_Delete(k);
    chat_prompt_free(cp);
    return text;
}

static void expect_render(const char *tmpl, const char *messages, const char *tools, const char *effort,
                          const char *kwargs, const char *want) {
    larder_error err = {0};
    char *text = render(tmpl, messages, tools, effort, kwargs, &err);
    if (!text) fail_msg("render failed: %s", err.message);
    assert_string_equal(text, want);
    free(text);
}

static void test_text_parts_are_joined(void **state) {
    (void)state;
    expect_render("{% for m in messages %}{{ m.role }}:{{ m.content }}|{% endfor %}",
                  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"bc\"}]},"
                  "{\"role\":\"assistant\",\"content\":\"plain\"}]",
                  NULL, NULL, NULL, "user:abc|assistant:plain|");
}

static void test_string_arguments_become_objects(void **state) {
    (void)state;
    const char *msgs =
        "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"[1, 2]\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"h\",\"arguments\":{\"n\": 1}}}]}]";
    expect_render("{% for c in messages[0].tool_calls %}{{ c.function.arguments is mapping }} "
                  "{{ c.function.arguments | tojson }};{% endfor %}",
                  msgs, NULL, NULL, NULL,
                  "True {\"city\": \"Paris\"};False \"[1, 2]\";True {\"n\": 1};");
}

static void test_tools_only_when_present(void **state) {
    (void)state;
    const char *tmpl = "{% if tools is defined %}{{ tools | length }} {{ tools[0].function.name }}{% else %}none{% endif %}";
    const char *msgs = "[{\"role\":\"user\",\"content\":\"hi\"}]";
    expect_render(tmpl, msgs, NULL, NULL, NULL, "none");
    expect_render(tmpl, msgs, "[]", NULL, NULL, "none");
    expect_render(tmpl, msgs, "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]", NULL, NULL,
                  "1 get_weather");
}

static void test_variables_and_kwargs_override(void **state) {
    (void)state;
    const char *tmpl = "{{ bos_token }}{{ add_generation_prompt }} {{ eos_token }} {{ reasoning_effort | default('-') }}"
                       " {{ enable_thinking | default('-') }}";
    const char *msgs = "[]";
    expect_render(tmpl, msgs, NULL, NULL, NULL, "<s>True </s> - -");
    expect_render(tmpl, msgs, NULL, "high", NULL, "<s>True </s> high -");
    expect_render(tmpl, msgs, NULL, "high", "{\"enable_thinking\": false, \"reasoning_effort\": \"low\"}",
                  "<s>True </s> low False");
    static const char *const reserved[] = {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        char kw[128];
        snprintf(kw, sizeof kw, "{\"enable_thinking\": true, \"%s\": []}", reserved[i]);
        larder_error err = {0};
        char *text = render(tmpl, msgs, NULL, NULL, kw, &err);
        if (text) fail_msg("kwargs set '%s': rendered '%s'", reserved[i], text);
        assert_int_equal(err.code, ERR_INVALID);
        assert_non_null(strstr(err.message, reserved[i]));
    }
}

static void test_inputs_are_not_changed(void **state) {
    (void)state;
    const char *text = "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"tool_calls\":"
                       "[{\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]";
    larder_error err = {0};
    chat_prompt *cp = chat_prompt_create("{{ messages | length }}", NULL, NULL, &err);
    assert_non_null(cp);
    cJSON *m = cJSON_Parse(text);
    assert_non_null(m);
    char *before = cJSON_PrintUnformatted(m);
    chat_prompt_input in = {m, NULL, NULL, NULL};
    size_t len;
    char *out = chat_prompt_render(cp, &in, &len, &err);
    assert_non_null(out);
    assert_string_equal(out, "1");
    char *after = cJSON_PrintUnformatted(m);
    assert_string_equal(before, after);
    free(out);
    free(before);
    free(after);
    cJSON_Delete(m);
    chat_prompt_free(cp);
}

static void test_errors(void **state) {
    (void)state;
    larder_error err = {0};
    assert_null(chat_prompt_create("{% if %}", "", "", &err));
    assert_int_equal(err.code, ERR_FORMAT);
    assert_non_null(strstr(err.message, "chat template"));

    err = (larder_error){0};
    char *text = render("{{ raise_exception('no system role') }}", "[]", NULL, NULL, NULL, &err);
    assert_null(text);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.message, "chat template"));
    assert_non_null(strstr(err.message, "no system role"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_parts_are_joined),
        cmocka_unit_test(test_string_arguments_become_objects),
        cmocka_unit_test(test_tools_only_when_present),
        cmocka_unit_test(test_variables_and_kwargs_override),
        cmocka_unit_test(test_inputs_are_not_changed),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
