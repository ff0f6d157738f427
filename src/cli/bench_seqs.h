/*
 * bench_seqs.h — `larder bench --seqs 1,8,32,64`: batched decode measured
 * the way llama-batched-bench measures it. For each N of the list: N
 * independent sequences, each with its own pseudo-random prompt (distinct
 * from every other sequence's, so nothing could share their KV), prefilled
 * one sequence per forward pass; then gen-tokens decode steps, each ONE
 * forward pass (runner_eval_seqs) carrying one token of every sequence, all
 * N rows of logits computed and read back.
 *
 * Reported per N: prefill tok/s over all N prompts, aggregate decode tok/s
 * (N x gen-tokens / decode time), per-sequence decode tok/s, and the bytes
 * read per decoded token (the weights one step reads, shared by its N
 * tokens, plus each token's attention over its KV).
 *
 * Decode tokens: pseudo-random (nothing measured but the forward pass, as
 * in llama-batched-bench), or with greedy the argmax of each sequence's
 * logits, reported in the JSON rows (what tests compare: sequence i of a
 * batch must generate what it generates alone).
 */
#ifndef LARDER_CLI_BENCH_SEQS_H
#define LARDER_CLI_BENCH_SEQS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/error.h"
#include "model/model.h"

/* Most entries of a --seqs list, and the largest N one may name. */
#define BENCH_SEQS_MAX_LIST 16
#define BENCH_SEQS_MAX_N 4096

typedef struct bench_seqs_options {
    int32_t n_list[BENCH_SEQS_MAX_LIST]; /* the sequence counts, one row each */
    int32_t n_rows;
    int32_t n_prompt, n_gen;             /* tokens per sequence */
    int32_t first_seq;                   /* prompts are those of sequences first_seq.. */
    uint64_t kv_memory_bytes;            /* --kv-memory; 0: what the largest N needs */
    bool greedy, json;
    int threads;                         /* reported only */
} bench_seqs_options;

/* Parses "1,8,32,64" (each in [1, BENCH_SEQS_MAX_N], at most
 * BENCH_SEQS_MAX_LIST entries) into o->n_list / o->n_rows. -1 with err. */
int bench_seqs_parse_list(const char *text, bench_seqs_options *o, larder_error *err);

/* Runs every row on m (uploaded to be) and prints the results to stdout.
 * A KV pool that cannot hold N x (prompt + gen) tokens (--kv-memory, the
 * device's free memory or the machine's RAM) is an ERR_NOMEM saying so
 * before anything runs. 0, or -1 with err. */
int bench_seqs_run(const model *m, backend *be, const bench_seqs_options *o, larder_error *err);

#endif
