/*
 * cli_model.c — the backend a subcommand's model runs on (cli_model.h).
 */
#include "cli/cli_model.h"

backend *cli_backend_for_model(model *m, int n_threads, larder_error *err) {
    backend_options opt = {.n_threads = n_threads > 0 ? n_threads : 1};
    backend *be = backend_create(NULL, &opt, err);
    if (!be) return NULL;
    if (model_upload(m, be, err)) {
        backend_free(be);
        return NULL;
    }
    return be;
}
