/*
 * sample.c — the sampling stages and the chain that runs them (see sample.h).
 *
 * Candidates are cut in place (arr->n shrinks); sorting happens once, lazily,
 * and top-k sorts only the k best (a bounded min-heap, O(n log k)), so a
 * 150k-token vocabulary costs one pass when top-k is on.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sample.h"

void sample_array_init(sample_array *arr, sample_candidate *storage, const float *logits, size_t n_vocab) {
    for (size_t i = 0; i < n_vocab; i++) storage[i] = (sample_candidate){(int32_t)i, logits[i], 0.0f};
    arr->v = storage;
    arr->n = n_vocab;
    arr->sorted = false;
}

static int cand_better(const sample_candidate *a, const sample_candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *a, const void *b) {
    const sample_candidate *x = a, *y = b;
    if (cand_better(x, y)) return -1;
    if (cand_better(y, x)) return 1;
    return 0;
}

void sample_sort(sample_array *arr) {
    if (!arr->sorted) qsort(arr->v, arr->n, sizeof *arr->v, cmp_cand);
    arr->sorted = true;
}

void sample_softmax(sample_array *arr) {
    sample_sort(arr);
    if (arr->n == 0) return;
    /* p_i = exp(l_i - max) / sum_j exp(l_j - max) */
    float max = arr->v[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < arr->n; i++) {
        float e = expf(arr->v[i].logit - max);
        arr->v[i].p = e;
        sum += e;
    }
    for (size_t i = 0; i < arr->n; i++) arr->v[i].p = (float)(arr->v[i].p / sum);
}

void sample_logit_bias(sample_array *arr, const sample_bias *bias, size_t n_bias) {
    if (!n_bias) return;
    for (size_t b = 0; b < n_bias; b++) {
        /* unsorted arrays are still in id order (position == id) */
        if (!arr->sorted && bias[b].id >= 0 && (size_t)bias[b].id < arr->n && arr->v[bias[b].id].id == bias[b].id) {
            arr->v[bias[b].id].logit += bias[b].bias;
            continue;
        }
        for (size_t i = 0; i < arr->n; i++)
            if (arr->v[i].id == bias[b].id) arr->v[i].logit += bias[b].bias;
    }
    arr->sorted = false;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void sample_penalties(sample_array *arr, const int32_t *history, size_t n_history, float repeat,
                      float frequency, float presence) {
    if (n_history == 0 || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
    int32_t *h = malloc(n_history * sizeof *h);
    if (!h) return; /* cannot happen for sane windows; penalties are then skipped */
    memcpy(h, history, n_history * sizeof *h);
    qsort(h, n_history, sizeof *h, cmp_i32);
    for (size_t i = 0; i < arr->n; i++) {
        /* count occurrences of this id in the window (binary search in the sorted copy) */
        int32_t id = arr->v[i].id;
        size_t lo = 0, hi = n_history;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (h[mid] < id) lo = mid + 1; else hi = mid;
        }
        size_t c = 0;
        while (lo + c < n_history && h[lo + c] == id) c++;
        if (!c) continue;
        float l = arr->v[i].logit;
        l = l <= 0 ? l * repeat : l / repeat;
        l -= (float)c * frequency + presence;
        arr->v[i].logit = l;
    }
    free(h);
    arr->sorted = false;
}

/* min-heap of the k best seen so far (worst at the root) */
static void heap_down(sample_candidate *v, size_t n, size_t i) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && cand_better(&v[c], &v[c + 1])) c++;
        if (!cand_better(&v[i], &v[c])) return;
        sample_candidate t = v[i]; v[i] = v[c]; v[c] = t;
        i = c;
    }
}

void sample_top_k(sample_array *arr, int k) {
    if (k <= 0 || (size_t)k >= arr->n) return;
    if (!arr->sorted) {
        size_t kk = (size_t)k;
        for (size_t i = kk / 2; i-- > 0;) heap_down(arr->v, kk, i);
        for (size_t i = kk; i < arr->n; i++) {
            if (cand_better(&arr->v[i], &arr->v[0])) {
                arr->v[0] = arr->v[i];
                heap_down(arr->v, kk, 0);
            }
        }
        arr->n = kk;
        sample_sort(arr);
    }
    arr->n = (size_t)k;
}

void sample_top_p(sample_array *arr, float p) {
    if (p >= 1.0f || arr->n <= 1) return;
    sample_softmax(arr);
    double cum = 0.0;
    size_t keep = arr->n;
    for (size_t i = 0; i < arr->n; i++) {
        cum += arr->v[i].p;
        if (cum >= p) { keep = i + 1; break; }
    }
    arr->n = keep ? keep : 1;
}

void sample_min_p(sample_array *arr, float p) {
    if (p <= 0.0f || arr->n <= 1) return;
    sample_sort(arr);
    /* p_i >= p * p_max  <=>  l_i >= l_max + log(p) */
    float floor_logit = arr->v[0].logit + logf(p);
    size_t keep = 1;
    while (keep < arr->n && arr->v[keep].logit >= floor_logit) keep++;
    arr->n = keep;
}

void sample_temperature(sample_array *arr, float t) {
    if (t <= 0.0f) return;
    for (size_t i = 0; i < arr->n; i++) arr->v[i].logit /= t;
}

int32_t sample_greedy(sample_array *arr) {
    if (arr->sorted) return arr->v[0].id;
    size_t best = 0;
    for (size_t i = 1; i < arr->n; i++)
        if (cand_better(&arr->v[i], &arr->v[best])) best = i;
    return arr->v[best].id;
}

int32_t sample_draw(sample_array *arr, rng *r) {
    sample_softmax(arr);
    double u = rng_uniform(r), cum = 0.0;
    for (size_t i = 0; i < arr->n; i++) {
        cum += arr->v[i].p;
        if (u < cum) return arr->v[i].id;
    }
    return arr->v[arr->n - 1].id; /* rounding left u above the total */
}

void sampler_params_default(sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->penalty_last_n = 64;
}

int sampler_init(sampler *s, const sampler_params *params, uint64_t seed, size_t n_vocab, larder_error *err) {
    memset(s, 0, sizeof *s);
    if (n_vocab == 0) return error_set(err, ERR_INVALID, "sampler: empty vocabulary");
    s->storage = malloc(n_vocab * sizeof *s->storage);
    if (!s->storage) return error_set(err, ERR_NOMEM, "out of memory (sampler of %zu tokens)", n_vocab);
    s->params = *params;
    s->n_vocab = n_vocab;
    rng_seed(&s->rng, seed);
    return 0;
}

void sampler_free(sampler *s) {
    free(s->storage);
    s->storage = NULL;
}

/* log-softmax of the current candidates: log p_i = l_i - max - log(sum exp(l_j - max)) */
static void report_logprobs(sample_array *arr, int32_t chosen, float *chosen_logprob, sample_logprob *top,
                            size_t n_top, size_t *n_top_out) {
    sample_sort(arr);
    float max = arr->v[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < arr->n; i++) sum += exp((double)arr->v[i].logit - max);
    double lse = max + log(sum);
    *chosen_logprob = -INFINITY; /* the chosen token was cut from the distribution (cannot happen) */
    for (size_t i = 0; i < arr->n; i++)
        if (arr->v[i].id == chosen) *chosen_logprob = (float)(arr->v[i].logit - lse);
    size_t k = n_top < arr->n ? n_top : arr->n;
    for (size_t i = 0; i < k; i++) top[i] = (sample_logprob){arr->v[i].id, (float)(arr->v[i].logit - lse)};
    if (n_top_out) *n_top_out = k;
}

int32_t sampler_sample(sampler *s, const float *logits, const int32_t *history, size_t n_history,
                       float *chosen_logprob, sample_logprob *top, size_t n_top, size_t *n_top_out) {
    const sampler_params *p = &s->params;
    sample_array arr;
    sample_array_init(&arr, s->storage, logits, s->n_vocab);
    sample_logit_bias(&arr, p->bias, p->n_bias);
    size_t window = n_history;
    if (p->penalty_last_n >= 0 && (size_t)p->penalty_last_n < window) window = (size_t)p->penalty_last_n;
    sample_penalties(&arr, history + (n_history - window), window, p->repeat_penalty, p->frequency_penalty,
                     p->presence_penalty);
    int32_t id;
    if (p->temperature <= 0.0f) {
        id = sample_greedy(&arr);
    } else {
        sample_top_k(&arr, p->top_k);
        sample_top_p(&arr, p->top_p);
        sample_min_p(&arr, p->min_p);
        sample_temperature(&arr, p->temperature);
        id = sample_draw(&arr, &s->rng);
    }
    if (chosen_logprob) report_logprobs(&arr, id, chosen_logprob, top, n_top, n_top_out);
    return id;
}
