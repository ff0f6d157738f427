/*
 * cmd_generate.c — `larder generate`: one prompt, one sequence, text streamed
 * to stdout as it is produced.
 *
 *   larder generate --model FILE (--prompt TEXT | --tokens IDS) [--max-tokens N]
 *                   [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
 *                   [--threads N] [--json]
 *
 * It drives the model through the runner (model/runner.h: the KV page pool
 * and the batched forward pass the server's engine uses too): the prompt in
 * one prefill pass (in chunks of --batch-tokens), then one token per step,
 * sampled by the sampler chain, stopped by an end-of-generation token or
 * --max-tokens. --prompt adds BOS as the model says; --json prints one object
 * at the end: prompt_tokens, tokens, text, prefill_tok_s, decode_tok_s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "base/timing.h"
#include "cli/cli_args.h"
#include "cli/cli_model.h"
#include "model/runner.h"
#include "sample/sample.h"
#include "tensor/dtype.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

/* What `larder generate` was asked for. */
typedef struct generate_options {
    const char *model_path, *prompt, *ids;
    int64_t max_tokens, top_k, seed, threads, batch;
    double temperature, top_p, min_p;
    bool json;
    cli_device dev; /* --device, --gpu */
} generate_options;

/* Parses argv into o and checks it. Returns true when generating goes on;
 * false with *exit_status set after --help (0) or a bad option (1, printed). */
static bool generate_parse_options(int argc, char **argv, generate_options *o, int *exit_status) {
    *o = (generate_options){.max_tokens = 128, .top_k = 40, .batch = 512, .temperature = 0.8, .top_p = 0.95,
                            .min_p = 0.05};
    cli_option opts[] = {
        CLI_STR("--model", &o->model_path, "FILE", "GGUF model"),
        CLI_STR("--prompt", &o->prompt, "TEXT", "prompt text (BOS added as the model says)"),
        CLI_STR("--tokens", &o->ids, "IDS", "prompt as comma-separated token ids"),
        CLI_INT("--max-tokens", &o->max_tokens, 1, 1 << 24, "N", "most tokens to generate (default 128)"),
        CLI_FLOAT("--temperature", &o->temperature, 0, 100, "T", "0: greedy (default 0.8)"),
        CLI_INT("--top-k", &o->top_k, 0, 1 << 30, "K", "keep the K best (default 40; 0: off)"),
        CLI_FLOAT("--top-p", &o->top_p, 0, 1, "P", "nucleus mass (default 0.95)"),
        CLI_FLOAT("--min-p", &o->min_p, 0, 1, "P", "drop tokens below P x the best (default 0.05)"),
        CLI_INT("--seed", &o->seed, 0, (double)(1LL << 53), "S", "sampling seed (default 0)"),
        CLI_INT("--threads", &o->threads, 0, 1024, "N", "compute threads (default: cores)"),
        CLI_DEVICE_OPTIONS(&o->dev),
        CLI_INT("--batch-tokens", &o->batch, 1, 1 << 16, "N", "prompt tokens per forward pass (default 512)"),
        CLI_FLAG("--json", &o->json, "print one JSON object at the end instead of streaming"),
    };
    bool done;
    *exit_status = cli_parse_or_exit("generate", "larder generate --model FILE (--prompt TEXT | --tokens IDS) [options]",
                                     argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return false;
    const char *bad = !o->model_path ? "--model is required"
                    : !o->prompt == !o->ids ? "give exactly one of --prompt and --tokens"
                    : NULL;
    if (bad) {
        fprintf(stderr, "larder generate: %s\n", bad);
        *exit_status = 1;
        return false;
    }
    if (o->threads == 0) o->threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    return true;
}

/* The prompt as tokens of tok's vocabulary: --prompt encoded (BOS as the
 * model says) or --tokens parsed. -1 with err when malformed or empty. */
static int generate_prompt_tokens(const generate_options *o, const tokenizer *tok, token_list *toks,
                                  larder_error *err) {
    int rc = o->prompt ? tokenizer_encode(tok, o->prompt, strlen(o->prompt), TOKENIZE_ADD_SPECIAL, toks, err)
                       : cli_parse_ids(o->ids, toks, err);
    for (size_t i = 0; rc == 0 && i < toks->n; i++) rc = tokenizer_check_id(tok, toks->ids[i], err);
    if (rc) return -1;
    if (toks->n == 0) return error_set(err, ERR_INVALID, "the prompt is empty");
    return 0;
}

/* One sequence being generated: the prompt and the sampled tokens in all,
 * the text decoded so far, and the seconds spent in each phase. */
typedef struct generation {
    runner *r;
    kv_seq kv;
    sampler smp;
    float *logits;          /* the next token's, n_vocab */
    int32_t *all;           /* prompt then sampled tokens, room for --max-tokens more */
    int32_t n, n_prompt;    /* tokens in all; of them, the prompt's */
    int32_t generated;      /* sampled tokens kept (end of generation excluded) */
    detok dt;
    strbuf text;
    double t_prefill_s, t_decode_s;
} generation;

/* g empty: what generation_free accepts before generation_start ran. */
static void generation_clear(generation *g) {
    memset(g, 0, sizeof *g);
    kv_seq_init(&g->kv);
    g->text = (strbuf)STRBUF_INIT;
}

/* g ready to generate after the prompt toks: a runner of model m on be with
 * room for the prompt and --max-tokens, buffers, sampler and detokenizer. */
static int generation_start(generation *g, const generate_options *o, model *m, backend *be, const tokenizer *tok,
                            const token_list *toks, larder_error *err) {
    int64_t n_total = (int64_t)toks->n + o->max_tokens;
    if (n_total > INT32_MAX) return error_set(err, ERR_NOMEM, "out of memory");
    g->r = runner_create(m, be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = (int32_t)n_total}, err);
    if (!g->r) return -1;
    int32_t n_vocab = m->hp.n_vocab;
    g->logits = malloc((size_t)n_vocab * sizeof *g->logits);
    g->all = malloc((size_t)n_total * sizeof *g->all);
    if (!g->logits || !g->all) return error_set(err, ERR_NOMEM, "out of memory");
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = (float)o->temperature;
    sp.top_k = (int)o->top_k;
    sp.top_p = (float)o->top_p;
    sp.min_p = (float)o->min_p;
    if (sampler_init(&g->smp, &sp, (uint64_t)o->seed, (size_t)n_vocab, err)) return -1;
    memcpy(g->all, toks->ids, toks->n * sizeof *g->all);
    g->n = g->n_prompt = (int32_t)toks->n;
    detok_init(&g->dt, tok, false, false);
    return 0;
}

static void generation_free(generation *g) {
    if (g->r) kv_seq_release(&g->kv, g->r->pool);
    sampler_free(&g->smp);
    free(g->all);
    free(g->logits);
    runner_free(g->r);
    detok_free(&g->dt);
    strbuf_free(&g->text);
}

/* Computes the tokens not yet in the KV sequence (the prompt in chunks of
 * batch tokens, then the last sampled one) into g->logits; the time counts
 * as prefill before the first sampled token, else as decode. */
static int generation_eval_pending(generation *g, int64_t batch, larder_error *err) {
    double t0 = (double)timing_now_us() / 1e6;
    while (g->kv.n_tokens < g->n) {
        int32_t take = g->n - g->kv.n_tokens < batch ? g->n - g->kv.n_tokens : (int32_t)batch;
        if (runner_eval(g->r, &g->kv, g->all + g->kv.n_tokens, take, false, g->logits, err)) return -1;
    }
    double dt_s = (double)timing_now_us() / 1e6 - t0;
    if (g->generated == 0) g->t_prefill_s += dt_s;
    else g->t_decode_s += dt_s;
    return 0;
}

/* Adds decoded text to g->text, and writes it to stdout when streaming. */
static void generation_emit(generation *g, const char *piece, size_t len, bool stream) {
    strbuf_append(&g->text, piece, len);
    if (stream) fwrite(piece, 1, len, stdout);
}

/* Samples until an end-of-generation token or --max-tokens, streaming the
 * text unless --json. -1 with err when a forward pass fails. */
static int generation_run(generation *g, const generate_options *o, const tokenizer *tok, larder_error *err) {
    const char *piece;
    size_t len;
    while (g->generated < o->max_tokens) {
        if (generation_eval_pending(g, o->batch, err)) return -1;
        int32_t next = sampler_sample(&g->smp, g->logits, g->all, (size_t)g->n, NULL, NULL, 0, NULL);
        if (tokenizer_is_eog(tok, next)) break;
        g->all[g->n++] = next;
        g->generated++;
        if (detok_push(&g->dt, next, &piece, &len, err) == 0 && len) {
            generation_emit(g, piece, len, !o->json);
            if (!o->json) fflush(stdout);
        }
    }
    if (detok_flush(&g->dt, &piece, &len, err) == 0 && len) generation_emit(g, piece, len, !o->json);
    return 0;
}

/* The --json object: prompt_tokens, tokens, text, prefill_tok_s, decode_tok_s. */
static void generation_print_json(const generation *g) {
    strbuf out = STRBUF_INIT;
    strbuf_printf(&out, "{\"prompt_tokens\":%d,\"tokens\":[", g->n_prompt);
    for (int32_t i = g->n_prompt; i < g->n; i++) strbuf_printf(&out, "%s%d", i > g->n_prompt ? "," : "", g->all[i]);
    strbuf_puts(&out, "],\"text\":");
    strbuf_json_string(&out, g->text.data ? g->text.data : "", g->text.len);
    strbuf_printf(&out, ",\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f}\n",
                  g->t_prefill_s > 0 ? g->n_prompt / g->t_prefill_s : 0.0,
                  g->t_decode_s > 0 && g->generated > 1 ? (g->generated - 1) / g->t_decode_s : 0.0);
    fwrite(out.data, 1, out.len, stdout);
    strbuf_free(&out);
}

int cmd_generate(int argc, char **argv) {
    generate_options o;
    int status;
    if (!generate_parse_options(argc, argv, &o, &status)) return status;
    status = 1;
    larder_error err = {0};
    const char *failed_file = NULL; /* set: the failure is about this file */
    token_list toks = {0};
    model *m = NULL;
    backend *be = NULL;
    generation g;
    generation_clear(&g);

    tokenizer *tok = tokenizer_load_file(o.model_path, &err);
    if (!tok) {
        failed_file = o.model_path;
        goto fail;
    }
    if (generate_prompt_tokens(&o, tok, &toks, &err)) goto fail;
    if (!(m = model_load(o.model_path, &err))) {
        failed_file = o.model_path;
        goto fail;
    }
    if (!(be = cli_backend_for_model(m, (int)o.threads, &o.dev, &err)) || generation_start(&g, &o, m, be, tok, &toks, &err) ||
        generation_run(&g, &o, tok, &err))
        goto fail;
    if (o.json) generation_print_json(&g);
    else putchar('\n');
    status = 0;
    goto cleanup;

fail:
    if (failed_file) fprintf(stderr, "larder generate: %s: %s\n", failed_file, err.message);
    else fprintf(stderr, "larder generate: %s\n", err.message);
cleanup:
    generation_free(&g);
    model_free(m);
    backend_free(be);
    token_list_free(&toks);
    tokenizer_free(tok);
    return status;
}
