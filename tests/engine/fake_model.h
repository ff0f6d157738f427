/* fake_model.h — what tests know of the fake engine_model (fake_model.c). */
#ifndef LARDER_TESTS_FAKE_MODEL_H
#define LARDER_TESTS_FAKE_MODEL_H

#include <stdint.h>

#include "engine/engine_model.h"

#define FAKE_MODEL_VOCAB 1000
#define FAKE_MODEL_BYTES_PER_TOKEN 1024

uint64_t fake_model_hash_step(uint64_t h, int32_t token, int32_t pos);
int32_t fake_model_next_token(uint64_t h, int32_t n_vocab);
int64_t fake_model_forward_tokens(const engine_model *em);

#endif
