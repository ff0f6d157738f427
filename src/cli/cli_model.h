/*
 * cli_model.h — what every model-running subcommand (serve, generate,
 * logits, bench, perplexity) does after loading a model: create the backend
 * it runs on and upload the weights there, in one place (the device choice
 * lives here: --device cpu|cuda, --gpu N).
 */
#ifndef LARDER_CLI_CLI_MODEL_H
#define LARDER_CLI_CLI_MODEL_H

#include "backend/backend.h"
#include "base/error.h"
#include "cli/cli_args.h"
#include "model/model.h"

/* Where the model runs, as the options gave it. */
typedef struct cli_device {
    const char *device;     /* "cpu", "cuda", or NULL: LARDER_BACKEND, else cuda when this
                             * build has it and a GPU is present, else cpu */
    int64_t gpu;            /* --gpu: device index */
} cli_device;

/* The two options of a cli_device, for a subcommand's option table. */
#define CLI_DEVICE_OPTIONS(d)                                                                                          \
    CLI_STR("--device", &(d)->device, "cpu|cuda",                                                                      \
            "where the model runs (default: cuda in a CUDA build with a GPU, else cpu)"),                              \
        CLI_INT("--gpu", &(d)->gpu, 0, 255, "N", "which GPU with --device cuda (default 0)")

/* A backend with n_threads compute threads (>= 1) on the device `dev` asks
 * for, holding m's weights (model_upload; a line on stderr says where they
 * went and how long the upload took on an accelerator). Free it after the
 * model's last use. NULL with err. */
backend *cli_backend_for_model(model *m, int n_threads, const cli_device *dev, larder_error *err);

#endif
