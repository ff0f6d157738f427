/*
 * cli_model.h — what every model-running subcommand (serve, generate,
 * logits, bench, perplexity) does after loading a model: create the backend
 * it runs on and upload the weights there, in one place (the device choice
 * lives here).
 */
#ifndef LARDER_CLI_CLI_MODEL_H
#define LARDER_CLI_CLI_MODEL_H

#include "backend/backend.h"
#include "base/error.h"
#include "model/model.h"

/* A backend with n_threads compute threads (>= 1) holding m's weights
 * (model_upload). Free it after the model's last use. NULL with err. */
backend *cli_backend_for_model(model *m, int n_threads, larder_error *err);

#endif
