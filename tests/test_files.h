/*
 * test_files.h — reading the test inputs that live in files: the shared
 * folder (vocabularies, chat templates) and whole files, for the cmocka
 * test programs (include <cmocka.h> first: a missing file fails the test).
 */
#ifndef LARDER_TESTS_TEST_FILES_H
#define LARDER_TESTS_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>

/* $SHARED, or ../shared beside the checkout. */
static inline const char *test_shared_dir(void) {
    const char *s = getenv("SHARED");
    return s && *s ? s : "../shared";
}

/* The whole file at path, NUL-terminated (malloc'd). */
static inline char *test_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The text of <shared>/templates/<name>.jinja (malloc'd). */
static inline char *test_read_template(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/%s.jinja", test_shared_dir(), name);
    return test_read_file(path);
}

#endif
