/*
 * cmd_logits.c — `larder logits --model FILE --tokens 1,2,3 [--top K]
 * [--threads N] [--kv-type f16|f32]`: evaluates the tokens as one sequence
 * and prints, per input position, one JSON line with the top K next tokens
 * and their probabilities (softmax over the whole vocabulary, in double):
 *     [[id, p], [id, p], ...]        highest first, p printed with %.6g
 * The oracle tests compare these lines with llama.cpp's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "kv/kv_pool.h"
#include "model/model.h"
#include "cli/cli_model.h"
#include "model/runner.h"
#include "tensor/dtype.h"
#include "tokenizer/tokenizer.h"

/* Tokens evaluated per forward call (bounds the logits buffer). */
#define LOGITS_CHUNK_TOKENS 256

static void print_top(const float *row, int32_t n_vocab, int32_t k, int32_t *ids, double *ps) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (row[i] > mx) mx = row[i];
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)row[i] - mx);
    /* top k by insertion into a sorted list (k is small) */
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        double p = exp((double)row[i] - mx) / sum;
        if (n == k && p <= ps[n - 1]) continue;
        int32_t j = n < k ? n++ : k - 1;
        while (j > 0 && ps[j - 1] < p) {
            ps[j] = ps[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        ps[j] = p;
        ids[j] = i;
    }
    putchar('[');
    for (int32_t j = 0; j < n; j++) printf("%s[%d, %.6g]", j ? ", " : "", ids[j], ps[j]);
    printf("]\n");
}

/* What `larder logits` was asked for. */
typedef struct logits_options {
    const char *model_path, *tokens_s, *kv_type_s;
    int64_t top, threads;
    uint32_t kv_type; /* kv_type_s as a KV pool type */
    cli_device dev; /* --device, --gpu */
} logits_options;

/* Parses argv into o and --tokens into toks. Returns true when evaluating
 * goes on; false with *exit_status set after --help (0) or a bad option (1,
 * printed; toks freed). */
static bool logits_parse_options(int argc, char **argv, logits_options *o, token_list *toks, int *exit_status) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (logits_options){.kv_type_s = "f16", .top = 10, .threads = ncpu > 0 ? ncpu : 1};
    cli_option opts[] = {
        CLI_STR("--model", &o->model_path, "FILE", "the GGUF model"),
        CLI_STR("--tokens", &o->tokens_s, "IDS", "comma-separated token ids, e.g. 1,2,3"),
        CLI_INT("--top", &o->top, 1, 1 << 22, "K", "tokens printed per position (default 10)"),
        CLI_INT("--threads", &o->threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_DEVICE_OPTIONS(&o->dev),
        CLI_STR("--kv-type", &o->kv_type_s, "T", "KV cache type: f16 (default), bf16, f32, q8_0, q4_0"),
    };
    const char *usage = "larder logits --model FILE --tokens 1,2,3 [--top K] [--threads N] [--kv-type f16|f32]";
    bool done;
    *exit_status = cli_parse_or_exit("logits", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return false;
    *exit_status = 1;
    if (!o->model_path || !o->tokens_s) {
        fprintf(stderr, "larder logits: --model and --tokens are required\n");
        return false;
    }
    int kv_type_id = kv_pool_type_from_name(o->kv_type_s);
    if (kv_type_id < 0) {
        fprintf(stderr, "larder logits: unknown --kv-type '%s' (f16, f32, bf16, q8_0, q4_0)\n", o->kv_type_s);
        return false;
    }
    o->kv_type = (uint32_t)kv_type_id;
    larder_error err = {0};
    if (cli_parse_ids(o->tokens_s, toks, &err)) {
        fprintf(stderr, "larder logits: --tokens: %s\n", err.message);
        token_list_free(toks);
        return false;
    }
    if (toks->n == 0 || toks->n > INT32_MAX / 2) {
        fprintf(stderr, "larder logits: --tokens is empty\n");
        token_list_free(toks);
        return false;
    }
    *exit_status = 0;
    return true;
}

/* -1 with err when an id of toks is outside [0, n_vocab). */
static int logits_check_ids(const token_list *toks, int32_t n_vocab, larder_error *err) {
    for (size_t i = 0; i < toks->n; i++)
        if (toks->ids[i] < 0 || toks->ids[i] >= n_vocab)
            return error_set(err, ERR_INVALID, "token id %d at index %zu is out of range [0, %d)", toks->ids[i], i,
                             n_vocab);
    return 0;
}

/* Evaluates toks as one sequence, LOGITS_CHUNK_TOKENS at a time, printing
 * each position's top k line. -1 with err. */
static int logits_print_each(runner *r, const token_list *toks, int32_t k, larder_error *err) {
    int32_t n_vocab = r->m->hp.n_vocab, n = (int32_t)toks->n;
    int rc = -1;
    kv_seq seq;
    kv_seq_init(&seq);
    float *logits = malloc((size_t)LOGITS_CHUNK_TOKENS * (size_t)n_vocab * sizeof *logits);
    int32_t *ids = malloc((size_t)k * sizeof *ids);
    double *ps = malloc((size_t)k * sizeof *ps);
    if (!logits || !ids || !ps) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (int32_t i0 = 0; i0 < n; i0 += LOGITS_CHUNK_TOKENS) {
        int32_t c = n - i0 < LOGITS_CHUNK_TOKENS ? n - i0 : LOGITS_CHUNK_TOKENS;
        if (runner_eval(r, &seq, toks->ids + i0, c, true, logits, err)) goto cleanup;
        for (int32_t i = 0; i < c; i++) print_top(logits + (size_t)i * n_vocab, n_vocab, k, ids, ps);
    }
    rc = 0;
cleanup:
    kv_seq_release(&seq, r->pool);
    free(logits);
    free(ids);
    free(ps);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    logits_options o;
    token_list toks = {0};
    int status;
    if (!logits_parse_options(argc, argv, &o, &toks, &status)) return status;
    status = 1;
    larder_error err = {0};
    backend *be = NULL;
    runner *r = NULL;

    model *m = model_load(o.model_path, &err);
    if (!m || logits_check_ids(&toks, m->hp.n_vocab, &err)) goto fail;
    if (o.top > m->hp.n_vocab) o.top = m->hp.n_vocab;
    if (!(be = cli_backend_for_model(m, (int)o.threads, &o.dev, &err)) ||
        !(r = runner_create(m, be, &(runner_config){.kv_type = o.kv_type, .max_seq_tokens = (int32_t)toks.n}, &err)) ||
        logits_print_each(r, &toks, (int32_t)o.top, &err))
        goto fail;
    fflush(stdout);
    status = 0;
    goto cleanup;

fail:
    fprintf(stderr, "larder logits: %s\n", err.message);
cleanup:
    runner_free(r);
    model_free(m);
    backend_free(be);
    token_list_free(&toks);
    return status;
}
