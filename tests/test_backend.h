/*
 * test_backend.h — the backend every test runs on: LARDER_BACKEND names it
 * ("cpu" when unset), so the same tests run on every backend this build
 * has (e.g. LARDER_BACKEND=cuda on a GPU machine).
 */
#ifndef LARDER_TESTS_TEST_BACKEND_H
#define LARDER_TESTS_TEST_BACKEND_H

#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"

/* A backend with n_threads compute threads; exits the test program with a
 * message when LARDER_BACKEND names one this build does not have. */
static inline backend *test_backend_create(int n_threads) {
    backend_options opt = {.n_threads = n_threads};
    larder_error err = {0};
    backend *b = backend_create(getenv("LARDER_BACKEND"), &opt, &err);
    if (!b) {
        fprintf(stderr, "test backend: %s\n", err.message);
        exit(2);
    }
    return b;
}

#endif
