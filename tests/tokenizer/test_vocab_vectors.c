/*
 * test_vocab_vectors.c — llama.cpp's tokenizer test vectors: every
 * shared/vocab/X.gguf with X.gguf.inp (cases separated by
 * "\n__ggml_vocab_test__\n", the last one followed by it too) and X.gguf.out
 * (one line of ids per case), tokenized without BOS and without special
 * parsing, must give exactly the listed ids; and decoding the ids must give
 * the input back, except where the family's clean-up of " ?" " ," " 's"-style
 * spaces changes it (the reference does the same; the llama.cpp agreement
 * script compares those texts with the reference).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "vocab_path.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[sz] = 0; *n = (size_t)sz; }
    return b;
}

/* The family's clean-up could change this text on decoding. */
static int cleanup_may_change(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ' ' && strchr("?!.,'", s[i + 1])) return 1;
    return 0;
}

static void run_vectors(const char *name) {
    char path[1024], ipath[1100], opath[1100];
    vocab_path(name, path, sizeof path);
    snprintf(ipath, sizeof ipath, "%s.inp", path);
    snprintf(opath, sizeof opath, "%s.out", path);
    larder_error err = {0};
    tokenizer *t = tokenizer_load_file(path, &err);
    if (!t) fail_msg("load %s: %s", name, err.message);
    size_t ni, no;
    char *in = slurp(ipath, &ni), *out = slurp(opath, &no);
    assert_non_null(in);
    assert_non_null(out);
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sl = strlen(sep);
    char *p = in, *q = out;
    int cases = 0, failures = 0;
    while (p < in + ni) {
        char *e = strstr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line_end = strchr(q, '\n');
        assert_non_null(line_end);
        *line_end = 0;
        token_list ids = {0};
        assert_int_equal(tokenizer_encode(t, p, len, 0, &ids, &err), 0);
        /* compare with the expected ids */
        char *s = q;
        size_t k = 0;
        int ok = 1;
        for (;;) {
            while (*s == ' ') s++;
            if (!*s) break;
            long v = strtol(s, &s, 10);
            if (k >= ids.n || ids.ids[k] != v) ok = 0;
            k++;
        }
        if (k != ids.n) ok = 0;
        if (!ok) {
            failures++;
            print_message("%s: case %d '%.*s' differs (want %s; got", name, cases, (int)len, p, q);
            for (size_t i = 0; i < ids.n; i++) print_message(" %d", ids.ids[i]);
            print_message(")\n");
        }
        size_t dl;
        char *d = tokenizer_decode(t, ids.ids, ids.n, false, &dl, &err);
        assert_non_null(d);
        if (!cleanup_may_change(p, len) && (dl != len || memcmp(d, p, len))) {
            failures++;
            print_message("%s: case %d does not round-trip: '%.*s' -> '%s'\n", name, cases, (int)len, p, d);
        }
        free(d);
        token_list_free(&ids);
        cases++;
        q = line_end + 1;
        if (!e) break;
        p = e + sl;
    }
    assert_true(cases >= 40);
    assert_int_equal(failures, 0);
    free(in);
    free(out);
    tokenizer_free(t);
}

#define VOCAB_TEST(fn, name) static void fn(void **st) { (void)st; run_vectors(name); }
VOCAB_TEST(test_vectors_llama_spm, "llama-spm")
VOCAB_TEST(test_vectors_phi3, "phi-3")
VOCAB_TEST(test_vectors_llama_bpe, "llama-bpe")
VOCAB_TEST(test_vectors_qwen2, "qwen2")
VOCAB_TEST(test_vectors_qwen35, "qwen35")
VOCAB_TEST(test_vectors_gpt2, "gpt-2")
VOCAB_TEST(test_vectors_deepseek_llm, "deepseek-llm")
VOCAB_TEST(test_vectors_mpt, "mpt")

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_llama_spm), cmocka_unit_test(test_vectors_phi3),
        cmocka_unit_test(test_vectors_llama_bpe), cmocka_unit_test(test_vectors_qwen2),
        cmocka_unit_test(test_vectors_qwen35),    cmocka_unit_test(test_vectors_gpt2),
        cmocka_unit_test(test_vectors_deepseek_llm), cmocka_unit_test(test_vectors_mpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
