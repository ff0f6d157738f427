/*
 * test_tokenizer_behaviour.c — tokenizer behaviour beyond the test vectors:
 * special tokens (control only with parse_special, user-defined always),
 * BOS/EOS, end-of-generation set, invalid UTF-8, ids out of range, an unknown
 * pre-tokenizer, long inputs in linear-ish time, and the streaming
 * detokenizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"
#include "vocab_path.h"

static tokenizer *load(const char *name) {
    char path[1024];
    larder_error err = {0};
    tokenizer *t = tokenizer_load_file(vocab_path(name, path, sizeof path), &err);
    if (!t) fail_msg("load %s: %s", name, err.message);
    return t;
}

static token_list enc(const tokenizer *t, const char *s, int flags) {
    token_list l = {0};
    larder_error err = {0};
    if (tokenizer_encode(t, s, strlen(s), flags, &l, &err)) fail_msg("encode: %s", err.message);
    return l;
}

static void test_control_tokens_only_with_parse_special(void **st) {
    (void)st;
    tokenizer *t = load("qwen2");
    int32_t im_start = tokenizer_find(t, "<|im_start|>", 12);
    assert_true(im_start >= 0);
    token_list a = enc(t, "<|im_start|>user", 0);
    token_list b = enc(t, "<|im_start|>user", TOKENIZE_PARSE_SPECIAL);
    assert_true(a.n > 2);
    for (size_t i = 0; i < a.n; i++) assert_int_not_equal(a.ids[i], im_start);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.ids[0], im_start);
    token_list_free(&a);
    token_list_free(&b);
    tokenizer_free(t);
}

static void test_user_defined_tokens_always_recognised(void **st) {
    (void)st;
    tokenizer *t = load("llama-bpe");
    /* find any user-defined token; llama-bpe's specials are control, so make sure
     * the control path is the one excluded and user-defined would pass */
    int32_t n = (int32_t)tokenizer_n_tokens(t), ud = -1;
    for (int32_t i = 0; i < n && ud < 0; i++)
        if (tokenizer_token_attr(t, i) & TOKEN_ATTR_USER_DEFINED) ud = i;
    tokenizer_free(t);
    t = load("mpt"); /* neox-style vocab: has user-defined tokens (e.g. runs of spaces) */
    n = (int32_t)tokenizer_n_tokens(t);
    ud = -1;
    for (int32_t i = 0; i < n && ud < 0; i++)
        if ((tokenizer_token_attr(t, i) & TOKEN_ATTR_USER_DEFINED) && strlen(tokenizer_token_text(t, i)) > 1) ud = i;
    if (ud >= 0) {
        const char *txt = tokenizer_token_text(t, ud);
        char buf[256];
        snprintf(buf, sizeof buf, "x%sy", txt);
        token_list a = enc(t, buf, 0);
        int found = 0;
        for (size_t i = 0; i < a.n; i++) found |= a.ids[i] == ud;
        assert_true(found);
        token_list_free(&a);
    }
    tokenizer_free(t);
}

static void test_bos_eos_per_model(void **st) {
    (void)st;
    tokenizer *t = load("llama-spm");
    token_list a = enc(t, "Hello", TOKENIZE_ADD_SPECIAL);
    assert_int_equal(a.ids[0], 1);
    assert_int_equal(a.ids[1], 15043);
    assert_int_equal(a.n, 2);
    token_list_free(&a);
    tokenizer_free(t);
    t = load("llama-bpe");
    a = enc(t, "Hi", TOKENIZE_ADD_SPECIAL);
    assert_int_equal(a.ids[0], 128000);
    token_list_free(&a);
    tokenizer_free(t);
    t = load("qwen2"); /* qwen2 adds no BOS */
    a = enc(t, "Hi", TOKENIZE_ADD_SPECIAL);
    assert_int_equal(a.n, 1);
    token_list_free(&a);
    tokenizer_free(t);
}

static void test_end_of_generation_markers(void **st) {
    (void)st;
    tokenizer *t = load("qwen2");
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|im_end|>", 10)));
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|endoftext|>", 13)));
    assert_false(tokenizer_is_eog(t, tokenizer_find(t, "<|im_start|>", 12)));
    assert_false(tokenizer_is_eog(t, tokenizer_find(t, "Hello", 5)));
    tokenizer_free(t);
    t = load("llama-bpe");
    assert_true(tokenizer_is_eog(t, tokenizer_find(t, "<|eot_id|>", 10)));
    assert_true(tokenizer_is_eog(t, tokenizer_eos(t)));
    tokenizer_free(t);
    t = load("llama-spm");
    assert_true(tokenizer_is_eog(t, 2)); /* </s> */
    assert_false(tokenizer_is_eog(t, 1));
    assert_false(tokenizer_is_eog(t, -1));
    assert_false(tokenizer_is_eog(t, 1 << 30));
    tokenizer_free(t);
}

static void test_invalid_utf8_never_crashes(void **st) {
    (void)st;
    static const char *const names[] = {"llama-spm", "llama-bpe", "qwen35", "deepseek-llm", "gpt-2"};
    static const char bad[] = "a\xff\xfe b\xc3 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\x80 \xf7\xbf\xbf\xbf z";
    for (size_t k = 0; k < 5; k++) {
        tokenizer *t = load(names[k]);
        token_list a = {0};
        larder_error err = {0};
        assert_int_equal(tokenizer_encode(t, bad, sizeof bad - 1, TOKENIZE_PARSE_SPECIAL, &a, &err), 0);
        assert_true(a.n > 0);
        size_t len;
        char *d = tokenizer_decode(t, a.ids, a.n, true, &len, &err);
        assert_non_null(d);
        free(d);
        token_list_free(&a);
        tokenizer_free(t);
    }
}

static void test_byte_fallback_keeps_raw_bytes_spm(void **st) {
    (void)st;
    tokenizer *t = load("llama-spm");
    static const char bad[] = "x\xff";
    token_list a = {0};
    larder_error err = {0};
    assert_int_equal(tokenizer_encode(t, bad, 2, 0, &a, &err), 0);
    size_t len;
    char *d = tokenizer_decode(t, a.ids, a.n, false, &len, &err);
    assert_int_equal(len, 2);
    assert_memory_equal(d, bad, 2);
    free(d);
    token_list_free(&a);
    tokenizer_free(t);
}

static void test_id_out_of_range_is_error(void **st) {
    (void)st;
    tokenizer *t = load("gpt-2");
    int32_t ids[2] = {50, (int32_t)tokenizer_n_tokens(t)};
    larder_error err = {0};
    size_t len;
    assert_null(tokenizer_decode(t, ids, 2, false, &len, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.message, "out of range"));
    ids[1] = -1;
    assert_int_equal(tokenizer_check_id(t, -1, &err), -1);
    detok d;
    detok_init(&d, t, false, false);
    const char *txt;
    assert_int_equal(detok_push(&d, -5, &txt, &len, &err), -1);
    detok_free(&d);
    tokenizer_free(t);
}

static const char *g_tok = "x";
static const char *one_text(void *ctx, uint32_t i, size_t *len) { (void)ctx; (void)i; *len = 1; return g_tok; }

static void test_unknown_pretokenizer_is_clear_error(void **st) {
    (void)st;
    tokenizer_source s = {0};
    s.model = TOKENIZER_MODEL_BPE;
    s.pre = "no-such-pre";
    s.n_tokens = 1;
    s.token_text = one_text;
    s.merge_text = one_text;
    s.n_merges = 1;
    s.bos_id = s.eos_id = s.eot_id = s.eom_id = s.unk_id = s.pad_id = TOKEN_NONE;
    s.add_bos = s.add_eos = s.add_space_prefix = -1;
    larder_error err = {0};
    assert_null(tokenizer_create(&s, &err));
    assert_int_equal(err.code, ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "no-such-pre"));
    /* every pre-tokenizer larder names compiles */
    static const char *const pres[] = {"llama-bpe", "qwen2", "qwen35", "gpt-2", "deepseek-llm", "deepseek-coder",
                                       "deepseek-v3", "falcon", "starcoder", "refact", "command-r", "mpt", "olmo",
                                       "gpt-4o", "minimax-m2", "tekken", "chatglm-bpe", "bloom", "default"};
    for (size_t k = 0; k < sizeof pres / sizeof pres[0]; k++) {
        s.pre = pres[k];
        tokenizer *t = tokenizer_create(&s, &err);
        if (!t) fail_msg("%s: %s", pres[k], err.message);
        token_list a = {0};
        assert_int_equal(tokenizer_encode(t, "xx Hello, World 123 日本 \r\n  x", 28, 0, &a, &err), 0);
        token_list_free(&a);
        tokenizer_free(t);
    }
}

static void test_long_input_is_fast(void **st) {
    (void)st;
    /* 200k characters of code-like text; quadratic behaviour would take minutes */
    size_t n = 200000;
    char *s = malloc(n + 1);
    const char *pat = "if (x[i] > 0) { y += x[i] * 2; } // comment \xe6\x97\xa5\n";
    size_t pl = strlen(pat);
    for (size_t i = 0; i < n; i++) s[i] = pat[i % pl];
    s[n] = 0;
    n = strlen(s);
    static const char *const names[] = {"llama-spm", "qwen2", "llama-bpe"};
    for (size_t k = 0; k < 3; k++) {
        tokenizer *t = load(names[k]);
        clock_t c0 = clock();
        token_list a = {0};
        larder_error err = {0};
        assert_int_equal(tokenizer_encode(t, s, n, 0, &a, &err), 0);
        double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        print_message("%s: %zu bytes -> %zu tokens in %.3f s\n", names[k], n, a.n, sec);
        assert_true(sec < 2.0);
        token_list_free(&a);
        tokenizer_free(t);
    }
    /* one 100k-character word with no spaces (worst case for merges) */
    memset(s, 'a', 100000);
    s[100000] = 0;
    tokenizer *t = load("qwen2");
    token_list a = {0};
    clock_t c0 = clock();
    assert_int_equal(tokenizer_encode(t, s, 100000, 0, &a, NULL), 0);
    assert_true((double)(clock() - c0) / CLOCKS_PER_SEC < 2.0);
    token_list_free(&a);
    tokenizer_free(t);
    free(s);
}

/* Streams ids through detok one at a time; returns the concatenation and
 * checks every chunk is whole UTF-8. */
static char *stream(const tokenizer *t, const int32_t *ids, size_t n, bool special, bool strip) {
    detok d;
    detok_init(&d, t, special, strip);
    char *all = calloc(1, 65536);
    size_t w = 0;
    const char *txt;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(detok_push(&d, ids[i], &txt, &len, NULL), 0);
        /* a chunk never ends inside a character: the last lead byte's sequence is complete */
        for (size_t j = 0; j < len;) {
            unsigned char b = (unsigned char)txt[j];
            size_t k = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            assert_true(j + k <= len);
            j += k;
        }
        memcpy(all + w, txt, len);
        w += len;
    }
    assert_int_equal(detok_flush(&d, &txt, &len, NULL), 0);
    memcpy(all + w, txt, len);
    detok_free(&d);
    return all;
}

static void test_detok_streams_whole_characters(void **st) {
    (void)st;
    const char *text = "Hi 🦙 日本語 e\xcc\x81 ok";
    static const char *const names[] = {"llama-spm", "qwen2", "gpt-2", "llama-bpe"};
    for (size_t k = 0; k < 4; k++) {
        tokenizer *t = load(names[k]);
        token_list a = enc(t, text, 0);
        char *s = stream(t, a.ids, a.n, false, true);
        assert_string_equal(s, text);
        free(s);
        token_list_free(&a);
        tokenizer_free(t);
    }
}

static void test_detok_byte_fallback_and_leading_space(void **st) {
    (void)st;
    tokenizer *t = load("llama-spm");
    /* 🦙 is four byte tokens <0xF0><0x9F><0xA6><0x99> in llama-spm */
    int32_t ids[6] = {1, 15043, 29871, 243, 162, 169};
    detok d;
    detok_init(&d, t, false, true);
    const char *txt;
    size_t len;
    assert_int_equal(detok_push(&d, ids[0], &txt, &len, NULL), 0); /* BOS renders nothing */
    assert_int_equal(len, 0);
    assert_int_equal(detok_push(&d, ids[1], &txt, &len, NULL), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(txt, " Hello", 6); /* BOS was the first token: the space stays (as the reference) */
    assert_int_equal(detok_push(&d, ids[2], &txt, &len, NULL), 0);
    assert_memory_equal(txt, " ", 1);
    for (int i = 3; i < 6; i++) {
        assert_int_equal(detok_push(&d, ids[i], &txt, &len, NULL), 0);
        assert_int_equal(len, 0); /* held back: unfinished character */
    }
    assert_int_equal(detok_push(&d, 156, &txt, &len, NULL), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(txt, "\xf0\x9f\xa6\x99", 4);
    /* an unfinished character at the end becomes U+FFFD */
    assert_int_equal(detok_push(&d, 243, &txt, &len, NULL), 0);
    assert_int_equal(detok_flush(&d, &txt, &len, NULL), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(txt, "\xef\xbf\xbd", 3);
    detok_free(&d);
    /* strip_leading_space drops the prefixed space of a first text token */
    int32_t hello = 15043;
    char *s = stream(t, &hello, 1, false, true);
    assert_string_equal(s, "Hello");
    free(s);
    s = stream(t, &hello, 1, false, false);
    assert_string_equal(s, " Hello");
    free(s);
    /* special rendering */
    int32_t eos = 2;
    s = stream(t, &eos, 1, true, false);
    assert_string_equal(s, "</s>");
    free(s);
    s = stream(t, &eos, 1, false, false);
    assert_string_equal(s, "");
    free(s);
    tokenizer_free(t);
}

static void test_truncated_or_foreign_file_is_clear_error(void **st) {
    (void)st;
    char path[1024];
    vocab_path("gpt-2", path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    char tmp[] = "/tmp/larder-tok-XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    /* cut inside the header, the token list, the merges and near the end */
    long cuts[] = {3, 20, 100, 1000, 50000, 400000, 900000, size - 1000};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        f = fopen(tmp, "wb");
        fwrite(data, 1, (size_t)cuts[k], f);
        fclose(f);
        larder_error err = {0};
        tokenizer *t = tokenizer_load_file(tmp, &err);
        if (t) { tokenizer_free(t); continue; } /* a cut inside tensor info may leave all metadata intact */
        assert_true(err.code == ERR_FORMAT || err.code == ERR_UNSUPPORTED);
        assert_non_null(strstr(err.message, tmp));
    }
    f = fopen(tmp, "wb");
    fputs("this is not a gguf file at all, just text", f);
    fclose(f);
    larder_error err = {0};
    assert_null(tokenizer_load_file(tmp, &err));
    assert_non_null(strstr(err.message, "not a GGUF file"));
    assert_null(tokenizer_load_file("/nonexistent/x.gguf", &err));
    assert_int_equal(err.code, ERR_IO);
    remove(tmp);
    free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_tokens_only_with_parse_special),
        cmocka_unit_test(test_user_defined_tokens_always_recognised),
        cmocka_unit_test(test_bos_eos_per_model),
        cmocka_unit_test(test_end_of_generation_markers),
        cmocka_unit_test(test_invalid_utf8_never_crashes),
        cmocka_unit_test(test_byte_fallback_keeps_raw_bytes_spm),
        cmocka_unit_test(test_id_out_of_range_is_error),
        cmocka_unit_test(test_unknown_pretokenizer_is_clear_error),
        cmocka_unit_test(test_long_input_is_fast),
        cmocka_unit_test(test_detok_streams_whole_characters),
        cmocka_unit_test(test_detok_byte_fallback_and_leading_space),
        cmocka_unit_test(test_truncated_or_foreign_file_is_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
