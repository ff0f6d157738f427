/*
 * fake_model.h — a fake forward pass for the engine's tests (fake_model.c):
 * a REAL KV page pool (src/kv) on the test backend, so only the forward
 * function is fake.
 */
#ifndef LARDER_TESTS_FAKE_MODEL_H
#define LARDER_TESTS_FAKE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define FAKE_MODEL_VOCAB 1000
/* KV bytes one token takes in the fake's pool (f32, 1 layer, 1 KV head of
 * 128: 2 x 512 bytes), so budgets read as tokens x this. */
#define FAKE_MODEL_BYTES_PER_TOKEN 1024

typedef struct fake_model fake_model;

/* A pool of kv_bytes with pages of page_tokens tokens. NULL with err. */
fake_model *fake_model_create(size_t kv_bytes, int32_t page_tokens, larder_error *err);
void fake_model_free(fake_model *f);
/* Points c at the fake: its pool, forward function and vocabulary. */
void fake_model_engine_config(fake_model *f, engine_config *c);

uint64_t fake_model_hash_step(uint64_t h, int32_t token, int32_t pos);
int32_t fake_model_next_token(uint64_t h, int32_t n_vocab);
int64_t fake_model_forward_tokens(const fake_model *f);

#endif
