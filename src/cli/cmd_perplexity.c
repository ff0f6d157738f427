/*
 * cmd_perplexity.c — `larder perplexity --model FILE (--file TEXT |
 * --tokens-file IDS) [--ctx N] [--threads N] [--json]`.
 *
 * Definition (the training script's, models/MODEL_CARD.md): the token stream
 * (the text tokenized once, without BOS and without special-token parsing;
 * or ids from --tokens-file, separated by commas or whitespace) is cut into
 * consecutive windows of ctx - 1 tokens (the last may be shorter). Each
 * window is evaluated alone from an empty sequence as [BOS] + window, and
 * every window token is scored by the log-probability the model gave it from
 * the positions before it (the first from BOS alone):
 *     ppl = exp( - mean over scored tokens of log p(token | BOS, window prefix) )
 * log-probabilities from a softmax over the whole vocabulary, in double.
 * --max-windows N scores only the first N windows.
 */
#include <ctype.h>
#include <errno.h>
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

/* Largest input file read, in bytes. */
#define PERPLEXITY_MAX_FILE_BYTES ((size_t)1 << 30)

static char *read_file(const char *path, size_t *len, larder_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        if (cap >= PERPLEXITY_MAX_FILE_BYTES) {
            free(buf);
            fclose(f);
            error_set(err, ERR_LIMIT, "%s: larger than %zu bytes", path, PERPLEXITY_MAX_FILE_BYTES);
            return NULL;
        }
        cap *= 2;
        char *p = realloc(buf, cap + 1);
        if (!p) free(buf);
        buf = p;
    }
    fclose(f);
    if (!buf) {
        error_set(err, ERR_NOMEM, "out of memory reading %s", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int parse_ids(const char *s, token_list *out, larder_error *err) {
    while (*s) {
        while (*s && (isspace((unsigned char)*s) || *s == ',')) s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < INT32_MIN || v > INT32_MAX || (*end && !isspace((unsigned char)*end) && *end != ','))
            return error_set(err, ERR_FORMAT, "--tokens-file: not a token id near '%.20s'", s);
        if (token_list_push(out, (int32_t)v, err)) return -1;
        s = end;
    }
    return 0;
}

/* What `larder perplexity` was asked for. */
typedef struct perplexity_options {
    const char *model_path, *text_path, *ids_path, *kv_type_s;
    int64_t ctx, threads, max_windows;
    bool json;
    uint32_t kv_type; /* kv_type_s as a KV pool type */
    cli_device dev; /* --device, --gpu */
} perplexity_options;

/* Parses argv into o and checks it. Returns true when scoring goes on;
 * false with *exit_status set after --help (0) or a bad option (1, printed). */
static bool perplexity_parse_options(int argc, char **argv, perplexity_options *o, int *exit_status) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (perplexity_options){.kv_type_s = "f16", .ctx = 512, .threads = ncpu > 0 ? ncpu : 1};
    cli_option opts[] = {
        CLI_STR("--model", &o->model_path, "FILE", "the GGUF model"),
        CLI_STR("--file", &o->text_path, "TEXT", "a text file, tokenized with the model's tokenizer"),
        CLI_STR("--tokens-file", &o->ids_path, "IDS", "a file of token ids (commas or whitespace)"),
        CLI_INT("--ctx", &o->ctx, 2, 1 << 20, "N", "window size in tokens, BOS included (default 512)"),
        CLI_INT("--max-windows", &o->max_windows, 0, 1 << 30, "N", "score only the first N windows (default: all)"),
        CLI_INT("--threads", &o->threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_DEVICE_OPTIONS(&o->dev),
        CLI_STR("--kv-type", &o->kv_type_s, "T", "KV cache type: f16 (default), bf16, f32, q8_0, q4_0"),
        CLI_FLAG("--json", &o->json, "print one JSON object"),
    };
    const char *usage = "larder perplexity --model FILE (--file TEXT | --tokens-file IDS) [--ctx N] [--max-windows N] [--threads N] [--kv-type T] [--json]";
    bool done;
    *exit_status = cli_parse_or_exit("perplexity", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return false;
    *exit_status = 1;
    int kv_type = kv_pool_type_from_name(o->kv_type_s);
    if (kv_type < 0) {
        fprintf(stderr, "larder perplexity: unknown --kv-type '%s' (f16, bf16, f32, q8_0, q4_0)\n", o->kv_type_s);
        return false;
    }
    o->kv_type = (uint32_t)kv_type;
    if (!o->model_path || !!o->text_path == !!o->ids_path) {
        fprintf(stderr, "larder perplexity: --model and one of --file / --tokens-file are required\n");
        return false;
    }
    *exit_status = 0;
    return true;
}

/* The model's BOS token (TOKEN_NONE when it has none or no tokenizer). */
static int32_t model_bos(const model *m) {
    tokenizer *tk = tokenizer_load_gguf(m->file, NULL);
    int32_t bos = tk ? tokenizer_bos(tk) : TOKEN_NONE;
    tokenizer_free(tk);
    return bos;
}

/* The token stream to score into toks: --tokens-file parsed, or --file
 * tokenized without BOS nor special tokens (then *bos is the tokenizer's
 * BOS; else TOKEN_NONE). -1 with err when it cannot be read or parsed. */
static int perplexity_read_stream(const perplexity_options *o, const model *m, token_list *toks, int32_t *bos,
                                  larder_error *err) {
    *bos = TOKEN_NONE;
    size_t len = 0;
    char *data = read_file(o->text_path ? o->text_path : o->ids_path, &len, err);
    if (!data) return -1;
    int rc = -1;
    if (o->ids_path) {
        rc = parse_ids(data, toks, err);
    } else {
        tokenizer *tk = tokenizer_load_gguf(m->file, err);
        if (tk) {
            rc = tokenizer_encode(tk, data, len, 0, toks, err);
            *bos = tokenizer_bos(tk);
        }
        tokenizer_free(tk);
    }
    free(data);
    return rc;
}

/* The token stream (perplexity_read_stream) checked against m's vocabulary,
 * and the BOS that starts each window in *bos. -1 with err. */
static int perplexity_read_tokens(const perplexity_options *o, const model *m, token_list *toks, int32_t *bos,
                                  larder_error *err) {
    if (perplexity_read_stream(o, m, toks, bos, err)) return -1;
    if (*bos == TOKEN_NONE) *bos = model_bos(m);
    if (*bos == TOKEN_NONE)
        return error_set(err, ERR_UNSUPPORTED, "the model has no BOS token to start windows with");
    for (size_t i = 0; i < toks->n; i++)
        if (toks->ids[i] < 0 || toks->ids[i] >= m->hp.n_vocab)
            return error_set(err, ERR_INVALID, "token id %d at index %zu is out of range [0, %d)", toks->ids[i], i,
                             m->hp.n_vocab);
    if (toks->n < 1) return error_set(err, ERR_INVALID, "the input has no tokens");
    return 0;
}

/* log p(token) under the softmax of row[0..n_vocab), in double. */
static double token_logprob(const float *row, int32_t n_vocab, int32_t token) {
    double mx = -INFINITY, sum = 0;
    for (int32_t v = 0; v < n_vocab; v++)
        if (row[v] > mx) mx = row[v];
    for (int32_t v = 0; v < n_vocab; v++) sum += exp((double)row[v] - mx);
    return (double)row[token] - mx - log(sum);
}

/* What the scored windows add up to. */
typedef struct perplexity_sum {
    double nll;    /* - sum of log p over the scored tokens */
    size_t scored; /* tokens scored */
} perplexity_sum;

/* Scores the first n_windows windows of w tokens of toks, each evaluated
 * alone as [bos] + window (see the file comment), into *sum. -1 with err. */
static int perplexity_score(runner *r, const token_list *toks, int32_t bos, int32_t w, size_t n_windows,
                            perplexity_sum *sum, larder_error *err) {
    int32_t n_vocab = r->m->hp.n_vocab;
    int rc = -1;
    kv_seq seq;
    kv_seq_init(&seq);
    float *logits = malloc((size_t)(w + 1) * (size_t)n_vocab * sizeof *logits);
    int32_t *window = malloc((size_t)(w + 1) * sizeof *window);
    if (!logits || !window) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    *sum = (perplexity_sum){0};
    for (size_t wi = 0; wi < n_windows; wi++) {
        size_t start = wi * (size_t)w;
        int32_t n = (int32_t)(toks->n - start < (size_t)w ? toks->n - start : (size_t)w);
        window[0] = bos;
        memcpy(window + 1, toks->ids + start, (size_t)n * sizeof *window);
        kv_seq_release(&seq, r->pool);
        if (runner_eval(r, &seq, window, n + 1, true, logits, err)) goto cleanup;
        for (int32_t i = 0; i < n; i++) { /* logits of position i predict window token i+1 */
            sum->nll -= token_logprob(logits + (size_t)i * n_vocab, n_vocab, window[i + 1]);
            sum->scored++;
        }
    }
    rc = 0;
cleanup:
    kv_seq_release(&seq, r->pool);
    free(window);
    free(logits);
    return rc;
}

int cmd_perplexity(int argc, char **argv) {
    perplexity_options o;
    int status;
    if (!perplexity_parse_options(argc, argv, &o, &status)) return status;
    status = 1;
    larder_error err = {0};
    token_list toks = {0};
    backend *be = NULL;
    runner *r = NULL;
    int32_t bos;
    perplexity_sum sum;

    model *m = model_load(o.model_path, &err);
    if (!m || perplexity_read_tokens(&o, m, &toks, &bos, &err)) goto fail;
    int32_t w = (int32_t)o.ctx - 1; /* window tokens; BOS makes ctx */
    size_t n_windows = (toks.n + (size_t)w - 1) / (size_t)w;
    if (o.max_windows > 0 && n_windows > (size_t)o.max_windows) n_windows = (size_t)o.max_windows;
    if (!(be = cli_backend_for_model(m, (int)o.threads, &o.dev, &err)) ||
        !(r = runner_create(m, be, &(runner_config){.kv_type = o.kv_type, .max_seq_tokens = w + 1}, &err)) ||
        perplexity_score(r, &toks, bos, w, n_windows, &sum, &err))
        goto fail;
    double ppl = exp(sum.nll / (double)sum.scored);
    if (o.json)
        printf("{\"perplexity\":%.6f,\"scored_tokens\":%zu,\"windows\":%zu,\"ctx\":%d,\"tokens\":%zu,\"kv_type\":\"%s\"}\n", ppl,
               sum.scored, n_windows, w, toks.n, o.kv_type_s);
    else
        printf("perplexity %.4f over %zu tokens (%zu windows of %d, KV %s)\n", ppl, sum.scored, n_windows, w, o.kv_type_s);
    status = 0;
    goto cleanup;

fail:
    fprintf(stderr, "larder perplexity: %s\n", err.message);
cleanup:
    runner_free(r);
    token_list_free(&toks);
    model_free(m);
    backend_free(be);
    return status;
}
