/*
 * cli_model.c — the backend a subcommand's model runs on (cli_model.h).
 */
#include "cli/cli_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timing.h"

backend *cli_backend_for_model(model *m, int n_threads, const cli_device *dev, larder_error *err) {
    backend_options opt = {.n_threads = n_threads > 0 ? n_threads : 1, .device = dev ? (int)dev->gpu : 0};
    const char *name = dev ? dev->device : NULL;
    if (!name || !*name) name = getenv("LARDER_BACKEND");
    backend *be = NULL;
    if (name && *name) {
        be = backend_create(name, &opt, err);
    } else { /* default: a GPU when this build has the backend and the machine a device */
        larder_error ignored = {0};
        be = backend_create("cuda", &opt, &ignored);
        if (!be) be = backend_create("cpu", &opt, err);
    }
    if (!be) return NULL;
    const bool accel = strcmp(backend_name(be), "cpu") != 0;
    double t0 = timing_now_ms();
    if (accel) fprintf(stderr, "larder: uploading the weights to %s (GPU %d)...\n", backend_name(be), opt.device);
    if (model_upload(m, be, err)) {
        backend_free(be);
        return NULL;
    }
    if (accel) fprintf(stderr, "larder: weights on %s in %.1f s\n", backend_name(be), (timing_now_ms() - t0) / 1000.0);
    return be;
}
