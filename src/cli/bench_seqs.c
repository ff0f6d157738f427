/*
 * bench_seqs.c — `larder bench --seqs LIST`: the KV pool sized (and
 * checked) for N x (prompt + gen) tokens, the per-N prefill and batched
 * decode timing, and its report (see bench_seqs.h).
 *
 * Bytes read per decoded token: the weights one decode step reads
 * (model_decode_bytes_per_token; a lower bound for mixtures of experts at
 * N > 1, where a step's tokens touch more experts than one token does)
 * divided by N, plus the token's attention reads of K and V: a token at
 * position p reads p + 1 positions, p + 1 averaging prompt + (gen + 1) / 2
 * over the decode steps.
 */
#include "cli/bench_seqs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/size_parse.h"
#include "base/timing.h"
#include "model/runner.h"
#include "tensor/dtype.h"

int bench_seqs_parse_list(const char *text, bench_seqs_options *o, larder_error *err) {
    o->n_rows = 0;
    const char *p = text;
    for (;;) {
        if (o->n_rows == BENCH_SEQS_MAX_LIST)
            return error_set(err, ERR_INVALID, "--seqs: at most %d entries", BENCH_SEQS_MAX_LIST);
        if (*p < '0' || *p > '9') return error_set(err, ERR_INVALID, "--seqs: expected a number at \"%.20s\"", p);
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || v < 1 || v > BENCH_SEQS_MAX_N)
            return error_set(err, ERR_INVALID, "--seqs: each count must be in [1, %d]", BENCH_SEQS_MAX_N);
        o->n_list[o->n_rows++] = (int32_t)v;
        if (*end == '\0') return 0;
        if (*end != ',') return error_set(err, ERR_INVALID, "--seqs: expected ',' at \"%.20s\"", end);
        p = end + 1;
    }
}

/* Token i of sequence g's prompt (g numbers sequences over every run, so
 * the prompts of a batch are those its sequences have alone). */
static int32_t bench_seqs_prompt_token(int64_t g, int32_t i, int32_t n_vocab, unsigned *state) {
    if (i == 0) *state = 1234u + 7919u * (unsigned)g;
    *state = *state * 1103515245u + 12345u;
    return (int32_t)((*state >> 8) % (unsigned)n_vocab);
}

/* The first maximum of row (ties: the lowest id, like the sampler's greedy). */
static int32_t bench_seqs_argmax(const float *row, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* The KV pool budget for the largest row, checked against --kv-memory, the
 * pool's page limit, and the memory that would back it. */
static int bench_seqs_plan_kv(const model *m, backend *be, const bench_seqs_options *o, size_t *budget_bytes,
                              larder_error *err) {
    int32_t n_max = 0;
    for (int32_t i = 0; i < o->n_rows; i++)
        if (o->n_list[i] > n_max) n_max = o->n_list[i];
    size_t per_token = model_kv_bytes_per_token(m, TYPE_F16);
    if (per_token == 0) return error_set(err, ERR_UNSUPPORTED, "this model's head size has no f16 KV");
    uint64_t P = RUNNER_DEFAULT_PAGE_TOKENS, seq_tokens = (uint64_t)o->n_prompt + (uint64_t)o->n_gen;
    uint64_t pages = (uint64_t)n_max * ((seq_tokens + P - 1) / P) + 1; /* + the warm-up's page */
    uint64_t stride = backend_kv_page_stride(be, per_token * (size_t)P);
    uint64_t need = pages * stride; /* <= 4096 x 8193 pages x a page's stride: fits 64 bits */
    char b1[32], b2[32];
    size_format(need, b1, sizeof b1);
    if (pages > KV_POOL_MAX_PAGES)
        return error_set(err, ERR_NOMEM, "%d sequences of %llu tokens need %llu KV pages, more than a pool holds (%u)",
                         (int)n_max, (unsigned long long)seq_tokens, (unsigned long long)pages, KV_POOL_MAX_PAGES);
    if (o->kv_memory_bytes > 0 && o->kv_memory_bytes < need)
        return error_set(err, ERR_NOMEM, "%d sequences of %llu tokens need %s of KV (f16); --kv-memory gives %s",
                         (int)n_max, (unsigned long long)seq_tokens, b1, size_format(o->kv_memory_bytes, b2, sizeof b2));
    uint64_t budget = o->kv_memory_bytes > 0 ? o->kv_memory_bytes : need;
    size_t free_bytes = 0, total_bytes = 0;
    if (backend_device_memory(be, &free_bytes, &total_bytes) == 0) {
        if (budget > free_bytes)
            return error_set(err, ERR_NOMEM, "%d sequences of %llu tokens need %s of KV (f16); the %s device has %s free",
                             (int)n_max, (unsigned long long)seq_tokens, size_format(budget, b1, sizeof b1),
                             backend_name(be), size_format(free_bytes, b2, sizeof b2));
    } else {
        long phys = sysconf(_SC_PHYS_PAGES), os_page = sysconf(_SC_PAGESIZE);
        uint64_t ram = phys > 0 && os_page > 0 ? (uint64_t)phys * (uint64_t)os_page : 0;
        if (ram > 0 && budget > ram)
            return error_set(err, ERR_NOMEM, "%d sequences of %llu tokens need %s of KV (f16); this machine has %s of RAM",
                             (int)n_max, (unsigned long long)seq_tokens, size_format(budget, b1, sizeof b1),
                             size_format(ram, b2, sizeof b2));
    }
    if (budget > SIZE_MAX) return error_set(err, ERR_NOMEM, "the KV budget does not fit this machine's size_t");
    *budget_bytes = (size_t)budget;
    return 0;
}

/* One row's measurements. tokens: (n, n_gen) fed tokens (greedy only). */
typedef struct bench_seqs_row {
    double prefill_tok_s, decode_tok_s;
} bench_seqs_row;

/* Prefills n sequences and times gen decode steps of all n together. */
static int bench_seqs_measure(runner *r, const bench_seqs_options *o, int32_t n, bench_seqs_row *row, int32_t *tokens,
                              larder_error *err) {
    int32_t n_vocab = r->m->hp.n_vocab;
    int rc = -1;
    kv_seq *seqs = calloc((size_t)n, sizeof *seqs);
    kv_seq **ptrs = calloc((size_t)n, sizeof *ptrs);
    int32_t *prompt = malloc((size_t)o->n_prompt * sizeof *prompt), *next = malloc((size_t)n * sizeof *next);
    float *logits = malloc((size_t)n * (size_t)n_vocab * sizeof *logits);
    if (!seqs || !ptrs || !prompt || !next || !logits) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int32_t j = 0; j < n; j++) {
        kv_seq_init(&seqs[j]);
        ptrs[j] = &seqs[j];
    }
    /* warm-up: one token, then cleared (as the single-sequence bench) */
    unsigned state;
    prompt[0] = bench_seqs_prompt_token(o->first_seq, 0, n_vocab, &state);
    if (runner_eval(r, &seqs[0], prompt, 1, false, logits, err)) goto cleanup;
    kv_seq_release(&seqs[0], r->pool);

    double pp_ms = 0;
    for (int32_t j = 0; j < n; j++) {
        for (int32_t i = 0; i < o->n_prompt; i++)
            prompt[i] = bench_seqs_prompt_token((int64_t)o->first_seq + j, i, n_vocab, &state);
        double t0 = timing_now_ms();
        if (runner_eval(r, &seqs[j], prompt, o->n_prompt, false, logits + (size_t)j * (size_t)n_vocab, err))
            goto cleanup;
        pp_ms += timing_now_ms() - t0;
    }
    unsigned decode_state = 4321u;
    double tg_ms = 0;
    for (int32_t s = 0; s < o->n_gen; s++) {
        for (int32_t j = 0; j < n; j++) {
            if (o->greedy) {
                next[j] = bench_seqs_argmax(logits + (size_t)j * (size_t)n_vocab, n_vocab);
                tokens[(size_t)j * (size_t)o->n_gen + (size_t)s] = next[j];
            } else {
                decode_state = decode_state * 1103515245u + 12345u;
                next[j] = (int32_t)((decode_state >> 8) % (unsigned)n_vocab);
            }
        }
        double t0 = timing_now_ms();
        if (runner_eval_seqs(r, ptrs, next, n, logits, err)) goto cleanup;
        tg_ms += timing_now_ms() - t0;
    }
    row->prefill_tok_s = (double)n * o->n_prompt / (pp_ms / 1000.0);
    row->decode_tok_s = (double)n * o->n_gen / (tg_ms / 1000.0);
    rc = 0;
cleanup:
    if (seqs)
        for (int32_t j = 0; j < n; j++) kv_seq_release(&seqs[j], r->pool);
    free(seqs);
    free(ptrs);
    free(prompt);
    free(next);
    free(logits);
    return rc;
}

/* Bytes read per decoded token in a step of n tokens (see the top). */
static double bench_seqs_bytes_per_token(const model *m, const bench_seqs_options *o, int32_t n) {
    double kv_reads = (double)o->n_prompt + (o->n_gen + 1) / 2.0;
    return (double)model_decode_bytes_per_token(m) / n + (double)model_kv_bytes_per_token(m, TYPE_F16) * kv_reads;
}

static void bench_seqs_print_row(const model *m, const bench_seqs_options *o, int32_t n, const bench_seqs_row *row,
                                 const int32_t *tokens, bool first) {
    double bytes = bench_seqs_bytes_per_token(m, o, n);
    if (!o->json) {
        char b[32];
        printf("larder: %d seqs x (%d prompt + %d generated): prefill %.2f tok/s, decode %.2f tok/s aggregate, "
               "%.2f tok/s per sequence, %s read per token\n",
               (int)n, (int)o->n_prompt, (int)o->n_gen, row->prefill_tok_s, row->decode_tok_s, row->decode_tok_s / n,
               size_format((uint64_t)bytes, b, sizeof b));
        return;
    }
    printf("%s{\"seqs\":%d,\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"decode_tok_s_per_seq\":%.2f,"
           "\"decode_bytes_per_token\":%.0f,\"decode_gb_s\":%.2f",
           first ? "" : ",", (int)n, row->prefill_tok_s, row->decode_tok_s, row->decode_tok_s / n, bytes,
           row->decode_tok_s * bytes / 1e9);
    if (o->greedy) {
        printf(",\"tokens\":[");
        for (int32_t j = 0; j < n; j++) {
            printf("%s[", j ? "," : "");
            for (int32_t s = 0; s < o->n_gen; s++)
                printf("%s%d", s ? "," : "", (int)tokens[(size_t)j * (size_t)o->n_gen + (size_t)s]);
            printf("]");
        }
        printf("]");
    }
    printf("}");
}

int bench_seqs_run(const model *m, backend *be, const bench_seqs_options *o, larder_error *err) {
    if (o->n_rows < 1) return error_set(err, ERR_INVALID, "--seqs: no sequence count");
    size_t budget = 0;
    if (bench_seqs_plan_kv(m, be, o, &budget, err)) return -1;
    runner *r = runner_create(m, be,
                              &(runner_config){.kv_type = TYPE_F16, .kv_memory_bytes = budget,
                                               .max_seq_tokens = o->n_prompt + o->n_gen},
                              err);
    if (!r) return -1;
    int32_t n_max = 0;
    for (int32_t i = 0; i < o->n_rows; i++)
        if (o->n_list[i] > n_max) n_max = o->n_list[i];
    int rc = -1;
    int32_t *tokens = o->greedy ? malloc((size_t)n_max * (size_t)o->n_gen * sizeof *tokens) : NULL;
    if (o->greedy && !tokens) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    const tensor_type_traits *tt = tensor_type_get(m->layers[0].wq.type);
    if (o->json)
        printf("{\"arch\":\"%s\",\"type\":\"%s\",\"backend\":\"%s\",\"threads\":%d,\"prompt_tokens\":%d,"
               "\"gen_tokens\":%d,\"kv_type\":\"f16\",\"weight_bytes\":%zu,\"decode_weight_bytes_per_step\":%zu,"
               "\"kv_bytes_per_token\":%zu,\"rows\":[",
               m->hp.arch->name, tt ? tt->name : "?", backend_name(be), o->threads, (int)o->n_prompt, (int)o->n_gen,
               m->weight_bytes, model_decode_bytes_per_token(m), model_kv_bytes_per_token(m, TYPE_F16));
    for (int32_t i = 0; i < o->n_rows; i++) {
        bench_seqs_row row;
        if (bench_seqs_measure(r, o, o->n_list[i], &row, tokens, err)) {
            if (o->json) printf("]}\n");
            goto cleanup;
        }
        bench_seqs_print_row(m, o, o->n_list[i], &row, tokens, i == 0);
        fflush(stdout);
    }
    if (o->json) printf("]}\n");
    rc = 0;
cleanup:
    free(tokens);
    runner_free(r);
    return rc;
}
