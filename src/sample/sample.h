/*
 * sample.h — choosing the next token from the model's logits.
 *
 * The chain works on a candidate array (id, logit, prob). Each stage is its
 * own function so it can be tested alone on a known distribution:
 *
 *   logit bias -> repetition/presence/frequency penalties -> top-k -> top-p
 *   -> min-p -> temperature -> draw (seeded)          (temperature <= 0: greedy)
 *
 * (the order llama.cpp's default chain uses, so the same settings sample the
 * same distribution). Stages that cut candidates keep at least one.
 * sampler_sample runs the whole chain and optionally reports log
 * probabilities of the chosen token and the top alternatives under the final
 * distribution.
 */
#ifndef LARDER_SAMPLE_SAMPLE_H
#define LARDER_SAMPLE_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "sample/rng.h"

typedef struct sample_candidate {
    int32_t id;
    float logit;
    float p;      /* probability, valid after sample_softmax */
} sample_candidate;

typedef struct sample_array {
    sample_candidate *v; /* (n) candidates */
    size_t n;
    bool sorted;         /* v is in decreasing logit order */
} sample_array;

/* Fills arr (v must hold n_vocab) with every token and its logit. */
void sample_array_init(sample_array *arr, sample_candidate *storage, const float *logits, size_t n_vocab);

/* Sorts by decreasing logit (ties: smaller id first). */
void sample_sort(sample_array *arr);
/* p = softmax(logit), computed stably (max subtracted); sorts first. */
void sample_softmax(sample_array *arr);

typedef struct sample_bias { int32_t id; float bias; } sample_bias;
/* logit += bias for the listed ids (ids absent from arr are ignored). */
void sample_logit_bias(sample_array *arr, const sample_bias *bias, size_t n_bias);

/* llama-style penalties over the last tokens `history[0..n_history)` (the
 * caller passes the window it wants): for each id seen c > 0 times,
 * logit = logit > 0 ? logit / repeat : logit * repeat, then
 * logit -= c * frequency + presence. repeat = 1, frequency = presence = 0: no-op. */
void sample_penalties(sample_array *arr, const int32_t *history, size_t n_history, float repeat,
                      float frequency, float presence);

/* Keeps the k best (k <= 0: all). */
void sample_top_k(sample_array *arr, int k);
/* Keeps the smallest prefix (by probability) whose mass reaches p (p >= 1: all). */
void sample_top_p(sample_array *arr, float p);
/* Keeps tokens whose probability is at least p times the best one's (p <= 0: all). */
void sample_min_p(sample_array *arr, float p);
/* logit /= t (t > 0). */
void sample_temperature(sample_array *arr, float t);

/* The best candidate's id (ties: smaller id). */
int32_t sample_greedy(sample_array *arr);
/* Draws from softmax(logits) with r. */
int32_t sample_draw(sample_array *arr, rng *r);

typedef struct sampler_params {
    float temperature;      /* <= 0: greedy */
    int top_k;              /* <= 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off */
    float frequency_penalty;/* 0: off */
    float presence_penalty; /* 0: off */
    int penalty_last_n;     /* window of history the penalties see (0: none, -1: all) */
    const sample_bias *bias;
    size_t n_bias;
} sampler_params;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off
 * (llama.cpp's defaults), window 64. */
void sampler_params_default(sampler_params *p);

typedef struct sample_logprob { int32_t id; float logprob; } sample_logprob;

/* A reusable sampler (owns the candidate storage for one vocabulary size). */
typedef struct sampler {
    sampler_params params;
    rng rng;
    sample_candidate *storage; /* (n_vocab) */
    size_t n_vocab;
} sampler;

int sampler_init(sampler *s, const sampler_params *params, uint64_t seed, size_t n_vocab, larder_error *err);
void sampler_free(sampler *s);

/* Picks the next token from logits[0..n_vocab) given the tokens so far.
 * With n_top >= 0 and chosen_logprob non-NULL, writes the chosen token's log
 * probability and up to n_top best alternatives (top[], *n_top_out) under the
 * final distribution (for greedy: softmax of the biased, penalised logits). */
int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history, size_t n_history,
                       float *chosen_logprob, sample_logprob *top, size_t n_top, size_t *n_top_out);

#endif
