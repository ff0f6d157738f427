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

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *tokens_s = NULL, *kv_type_s = "f16";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t top = 10, threads = ncpu > 0 ? ncpu : 1;
    cli_option opts[] = {
        CLI_STR("--model", &model_path, "FILE", "the GGUF model"),
        CLI_STR("--tokens", &tokens_s, "IDS", "comma-separated token ids, e.g. 1,2,3"),
        CLI_INT("--top", &top, 1, 1 << 22, "K", "tokens printed per position (default 10)"),
        CLI_INT("--threads", &threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_STR("--kv-type", &kv_type_s, "T", "KV cache type: f16 (default), bf16, f32, q8_0, q4_0"),
    };
    const char *usage = "larder logits --model FILE --tokens 1,2,3 [--top K] [--threads N] [--kv-type f16|f32]";
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("logits", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    if (!model_path || !tokens_s) {
        fprintf(stderr, "larder logits: --model and --tokens are required\n");
        return 1;
    }
    int kv_type_id = kv_pool_type_from_name(kv_type_s);
    if (kv_type_id < 0) {
        fprintf(stderr, "larder logits: unknown --kv-type '%s' (f16, f32, bf16, q8_0, q4_0)\n", kv_type_s);
        return 1;
    }
    uint32_t kv_type = (uint32_t)kv_type_id;
    token_list toks = {0};
    if (cli_parse_ids(tokens_s, &toks, &err)) {
        fprintf(stderr, "larder logits: --tokens: %s\n", err.message);
        token_list_free(&toks);
        return 1;
    }
    if (toks.n == 0 || toks.n > INT32_MAX / 2) {
        fprintf(stderr, "larder logits: --tokens is empty\n");
        token_list_free(&toks);
        return 1;
    }
    model *m = model_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "larder logits: %s\n", err.message);
        token_list_free(&toks);
        return 1;
    }
    int32_t n_vocab = m->hp.n_vocab;
    for (size_t i = 0; i < toks.n; i++)
        if (toks.ids[i] < 0 || toks.ids[i] >= n_vocab) {
            fprintf(stderr, "larder logits: token id %d at index %zu is out of range [0, %d)\n", toks.ids[i], i,
                    n_vocab);
            token_list_free(&toks);
            model_free(m);
            return 1;
        }
    if (top > n_vocab) top = n_vocab;
    int status = 1;
    int32_t n = (int32_t)toks.n;
    backend *be = cli_backend_for_model(m, (int)threads, &err);
    runner *r = be ? runner_create(m, be, &(runner_config){.kv_type = kv_type, .max_seq_tokens = n}, &err) : NULL;
    kv_seq seq;
    kv_seq_init(&seq);
    float *logits = malloc((size_t)LOGITS_CHUNK_TOKENS * (size_t)n_vocab * sizeof *logits);
    int32_t *ids = malloc((size_t)top * sizeof *ids);
    double *ps = malloc((size_t)top * sizeof *ps);
    if (!r || !logits || !ids || !ps) {
        fprintf(stderr, "larder logits: %s\n", r ? "out of memory" : err.message);
        goto done;
    }
    for (int32_t i0 = 0; i0 < n; i0 += LOGITS_CHUNK_TOKENS) {
        int32_t c = n - i0 < LOGITS_CHUNK_TOKENS ? n - i0 : LOGITS_CHUNK_TOKENS;
        if (runner_eval(r, &seq, toks.ids + i0, c, true, logits, &err)) {
            fprintf(stderr, "larder logits: %s\n", err.message);
            goto done;
        }
        for (int32_t i = 0; i < c; i++) print_top(logits + (size_t)i * n_vocab, n_vocab, (int32_t)top, ids, ps);
    }
    fflush(stdout);
    status = 0;
done:
    free(logits), free(ids), free(ps);
    if (r) kv_seq_release(&seq, r->pool);
    runner_free(r);
    model_free(m);
    backend_free(be);
    token_list_free(&toks);
    return status;
}
