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

int cmd_perplexity(int argc, char **argv) {
    const char *model_path = NULL, *text_path = NULL, *ids_path = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t ctx = 512, threads = ncpu > 0 ? ncpu : 1, max_windows = 0;
    bool json = false;
    const char *kv_type_s = "f16";
    cli_option opts[] = {
        CLI_STR("--model", &model_path, "FILE", "the GGUF model"),
        CLI_STR("--file", &text_path, "TEXT", "a text file, tokenized with the model's tokenizer"),
        CLI_STR("--tokens-file", &ids_path, "IDS", "a file of token ids (commas or whitespace)"),
        CLI_INT("--ctx", &ctx, 2, 1 << 20, "N", "window size in tokens, BOS included (default 512)"),
        CLI_INT("--max-windows", &max_windows, 0, 1 << 30, "N", "score only the first N windows (default: all)"),
        CLI_INT("--threads", &threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_STR("--kv-type", &kv_type_s, "T", "KV cache type: f16 (default), bf16, f32, q8_0, q4_0"),
        CLI_FLAG("--json", &json, "print one JSON object"),
    };
    const char *usage = "larder perplexity --model FILE (--file TEXT | --tokens-file IDS) [--ctx N] [--max-windows N] [--threads N] [--kv-type T] [--json]";
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("perplexity", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    int kv_type = kv_pool_type_from_name(kv_type_s);
    if (kv_type < 0) {
        fprintf(stderr, "larder perplexity: unknown --kv-type '%s' (f16, bf16, f32, q8_0, q4_0)\n", kv_type_s);
        return 1;
    }
    if (!model_path || !!text_path == !!ids_path) {
        fprintf(stderr, "larder perplexity: --model and one of --file / --tokens-file are required\n");
        return 1;
    }
    model *m = model_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "larder perplexity: %s\n", err.message);
        return 1;
    }
    int status = 1;
    token_list toks = {0};
    backend *be = NULL;
    runner *r = NULL;
    kv_seq seq;
    kv_seq_init(&seq);
    float *logits = NULL;
    int32_t *window = NULL;
    int32_t bos = TOKEN_NONE;
    size_t len = 0;
    char *data = read_file(text_path ? text_path : ids_path, &len, &err);
    if (!data) goto fail;
    if (ids_path) {
        if (parse_ids(data, &toks, &err)) goto fail;
    } else {
        tokenizer *tk = tokenizer_load_gguf(m->file, &err);
        if (!tk) goto fail;
        rc = tokenizer_encode(tk, data, len, 0, &toks, &err);
        bos = tokenizer_bos(tk);
        tokenizer_free(tk);
        if (rc) goto fail;
    }
    if (bos == TOKEN_NONE) {
        tokenizer *tk = tokenizer_load_gguf(m->file, NULL);
        if (tk) bos = tokenizer_bos(tk);
        tokenizer_free(tk);
    }
    if (bos == TOKEN_NONE) {
        error_set(&err, ERR_UNSUPPORTED, "the model has no BOS token to start windows with");
        goto fail;
    }
    for (size_t i = 0; i < toks.n; i++)
        if (toks.ids[i] < 0 || toks.ids[i] >= m->hp.n_vocab) {
            error_set(&err, ERR_INVALID, "token id %d at index %zu is out of range [0, %d)", toks.ids[i], i,
                      m->hp.n_vocab);
            goto fail;
        }
    if (toks.n < 1) {
        error_set(&err, ERR_INVALID, "the input has no tokens");
        goto fail;
    }
    int32_t w = (int32_t)ctx - 1; /* window tokens; BOS makes ctx */
    size_t n_windows = (toks.n + (size_t)w - 1) / (size_t)w;
    if (max_windows > 0 && n_windows > (size_t)max_windows) n_windows = (size_t)max_windows;
    be = cli_backend_for_model(m, (int)threads, &err);
    if (!be) goto fail;
    r = runner_create(m, be, &(runner_config){.kv_type = (uint32_t)kv_type, .max_seq_tokens = w + 1}, &err);
    logits = malloc((size_t)(w + 1) * (size_t)m->hp.n_vocab * sizeof *logits);
    window = malloc((size_t)(w + 1) * sizeof *window);
    if (!r || !logits || !window) {
        if (r) error_set(&err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    double nll = 0;
    size_t scored = 0;
    int32_t V = m->hp.n_vocab;
    for (size_t wi = 0; wi < n_windows; wi++) {
        size_t start = wi * (size_t)w;
        int32_t n = (int32_t)(toks.n - start < (size_t)w ? toks.n - start : (size_t)w);
        window[0] = bos;
        memcpy(window + 1, toks.ids + start, (size_t)n * sizeof *window);
        kv_seq_release(&seq, r->pool);
        if (runner_eval(r, &seq, window, n + 1, true, logits, &err)) goto fail;
        for (int32_t i = 0; i < n; i++) { /* logits of position i predict window token i+1 */
            const float *row = logits + (size_t)i * V;
            double mx = -INFINITY, sum = 0;
            for (int32_t v = 0; v < V; v++)
                if (row[v] > mx) mx = row[v];
            for (int32_t v = 0; v < V; v++) sum += exp((double)row[v] - mx);
            nll -= (double)row[window[i + 1]] - mx - log(sum);
            scored++;
        }
    }
    double ppl = exp(nll / (double)scored);
    if (json)
        printf("{\"perplexity\":%.6f,\"scored_tokens\":%zu,\"windows\":%zu,\"ctx\":%d,\"tokens\":%zu,\"kv_type\":\"%s\"}\n", ppl, scored,
               n_windows, w, toks.n, kv_type_s);
    else
        printf("perplexity %.4f over %zu tokens (%zu windows of %d, KV %s)\n", ppl, scored, n_windows, w, kv_type_s);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "larder perplexity: %s\n", err.message);
done:
    free(data);
    free(window);
    free(logits);
    if (r) kv_seq_release(&seq, r->pool);
    runner_free(r);
    token_list_free(&toks);
    model_free(m);
    backend_free(be);
    return status;
}
