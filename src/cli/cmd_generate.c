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


static int fail(const char *msg) {
    fprintf(stderr, "larder generate: %s\n", msg);
    return 1;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *ids = NULL;
    int64_t max_tokens = 128, top_k = 40, seed = 0, threads = 0, batch = 512;
    double temperature = 0.8, top_p = 0.95, min_p = 0.05;
    bool json = false;
    cli_option opts[] = {
        CLI_STR("--model", &model_path, "FILE", "GGUF model"),
        CLI_STR("--prompt", &prompt, "TEXT", "prompt text (BOS added as the model says)"),
        CLI_STR("--tokens", &ids, "IDS", "prompt as comma-separated token ids"),
        CLI_INT("--max-tokens", &max_tokens, 1, 1 << 24, "N", "most tokens to generate (default 128)"),
        CLI_FLOAT("--temperature", &temperature, 0, 100, "T", "0: greedy (default 0.8)"),
        CLI_INT("--top-k", &top_k, 0, 1 << 30, "K", "keep the K best (default 40; 0: off)"),
        CLI_FLOAT("--top-p", &top_p, 0, 1, "P", "nucleus mass (default 0.95)"),
        CLI_FLOAT("--min-p", &min_p, 0, 1, "P", "drop tokens below P x the best (default 0.05)"),
        CLI_INT("--seed", &seed, 0, (double)(1LL << 53), "S", "sampling seed (default 0)"),
        CLI_INT("--threads", &threads, 0, 1024, "N", "compute threads (default: cores)"),
        CLI_INT("--batch-tokens", &batch, 1, 1 << 16, "N", "prompt tokens per forward pass (default 512)"),
        CLI_FLAG("--json", &json, "print one JSON object at the end instead of streaming"),
    };
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("generate", "larder generate --model FILE (--prompt TEXT | --tokens IDS) [options]", argc,
                               argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    if (!model_path) return fail("--model is required");
    if (!prompt == !ids) return fail("give exactly one of --prompt and --tokens");
    if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;

    tokenizer *tok = tokenizer_load_file(model_path, &err);
    if (!tok) {
        fprintf(stderr, "larder generate: %s: %s\n", model_path, err.message);
        return 1;
    }
    token_list toks = {0};
    if (prompt) rc = tokenizer_encode(tok, prompt, strlen(prompt), TOKENIZE_ADD_SPECIAL, &toks, &err);
    else rc = cli_parse_ids(ids, &toks, &err);
    for (size_t i = 0; rc == 0 && i < toks.n; i++) rc = tokenizer_check_id(tok, toks.ids[i], &err);
    if (rc || toks.n == 0) {
        fprintf(stderr, "larder generate: %s\n", rc ? err.message : "the prompt is empty");
        token_list_free(&toks);
        tokenizer_free(tok);
        return 1;
    }
    model *m = model_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "larder generate: %s: %s\n", model_path, err.message);
        token_list_free(&toks);
        tokenizer_free(tok);
        return 1;
    }
    int64_t n_total = (int64_t)toks.n + max_tokens;
    backend *be = cli_backend_for_model(m, (int)threads, &err);
    runner *r = be && n_total <= INT32_MAX
                    ? runner_create(m, be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = (int32_t)n_total}, &err)
                    : NULL;
    int32_t n_vocab = m->hp.n_vocab;
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    int32_t *all = malloc((size_t)n_total * sizeof *all);
    kv_seq kv;
    kv_seq_init(&kv);
    sampler smp = {0};
    sampler_params sp;
    sampler_params_default(&sp);
    sp.temperature = (float)temperature;
    sp.top_k = (int)top_k;
    sp.top_p = (float)top_p;
    sp.min_p = (float)min_p;
    if (!r || !logits || !all || sampler_init(&smp, &sp, (uint64_t)seed, (size_t)n_vocab, &err)) {
        fprintf(stderr, "larder generate: %s\n", err.message[0] ? err.message : "out of memory");
        rc = 1;
        goto done;
    }
    memcpy(all, toks.ids, toks.n * sizeof *all);
    int32_t n = (int32_t)toks.n, n_prompt = n;
    detok dt;
    detok_init(&dt, tok, false, false);
    strbuf text = STRBUF_INIT;
    double t_prefill = 0, t_decode = 0;
    int32_t generated = 0;
    while (generated < max_tokens) {
        /* the tokens not yet computed: the prompt in chunks, then the last sampled one */
        double t0 = (double)timing_now_us() / 1e6;
        while (kv.n_tokens < n) {
            int32_t take = n - kv.n_tokens < batch ? n - kv.n_tokens : (int32_t)batch;
            if (runner_eval(r, &kv, all + kv.n_tokens, take, false, logits, &err)) {
                fprintf(stderr, "larder generate: %s\n", err.message);
                rc = 1;
                goto stop;
            }
        }
        double dt_s = (double)timing_now_us() / 1e6 - t0;
        if (generated == 0) t_prefill += dt_s;
        else t_decode += dt_s;
        int32_t next = sampler_sample(&smp, logits, all, (size_t)n, NULL, NULL, 0, NULL);
        if (tokenizer_is_eog(tok, next)) break;
        all[n++] = next;
        generated++;
        const char *piece;
        size_t len;
        if (detok_push(&dt, next, &piece, &len, &err) == 0 && len) {
            strbuf_append(&text, piece, len);
            if (!json) {
                fwrite(piece, 1, len, stdout);
                fflush(stdout);
            }
        }
    }
    {
        const char *piece;
        size_t len;
        if (detok_flush(&dt, &piece, &len, &err) == 0 && len) {
            strbuf_append(&text, piece, len);
            if (!json) fwrite(piece, 1, len, stdout);
        }
    }
    if (json) {
        strbuf out = STRBUF_INIT;
        strbuf_printf(&out, "{\"prompt_tokens\":%d,\"tokens\":[", n_prompt);
        for (int32_t i = n_prompt; i < n; i++) strbuf_printf(&out, "%s%d", i > n_prompt ? "," : "", all[i]);
        strbuf_puts(&out, "],\"text\":");
        strbuf_json_string(&out, text.data ? text.data : "", text.len);
        strbuf_printf(&out, ",\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f}\n", t_prefill > 0 ? n_prompt / t_prefill : 0.0,
                      t_decode > 0 && generated > 1 ? (generated - 1) / t_decode : 0.0);
        fwrite(out.data, 1, out.len, stdout);
        strbuf_free(&out);
    } else {
        putchar('\n');
    }
stop:
    detok_free(&dt);
    strbuf_free(&text);
done:
    if (r) kv_seq_release(&kv, r->pool);
    sampler_free(&smp);
    free(all);
    free(logits);
    runner_free(r);
    model_free(m);
    backend_free(be);
    token_list_free(&toks);
    tokenizer_free(tok);
    return rc;
}
