/*
 * cmd_bench.c — `larder bench --model FILE [--threads N] [--prompt-tokens
 * 512] [--gen-tokens 128] [--json]`: speed measured the way llama-bench
 * (and tools/llama/llama_min.c, its libllama twin) measures it:
 *   warm-up: one token, then the sequence is cleared;
 *   pp: one batch of prompt-tokens pseudo-random tokens (logits of the last);
 *   tg: the sequence cleared, then gen-tokens steps of one token each.
 * --json prints one object: prefill_tok_s, decode_tok_s, threads, model
 * details and the bytes of weights read per decoded token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/timing.h"
#include "cli/cli_args.h"
#include "model/model.h"
#include "cli/cli_model.h"
#include "model/runner.h"
#include "tensor/dtype.h"

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t threads = ncpu > 0 ? ncpu : 1, n_prompt = 512, n_gen = 128;
    bool json = false;
    cli_option opts[] = {
        CLI_STR("--model", &model_path, "FILE", "the GGUF model"),
        CLI_INT("--threads", &threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_INT("--prompt-tokens", &n_prompt, 1, 65536, "N", "tokens in the prompt batch (default 512)"),
        CLI_INT("--gen-tokens", &n_gen, 1, 65536, "N", "decode steps (default 128)"),
        CLI_FLAG("--json", &json, "print one JSON object"),
    };
    const char *usage = "larder bench --model FILE [--threads N] [--prompt-tokens 512] [--gen-tokens 128] [--json]";
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("bench", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    if (!model_path) {
        fprintf(stderr, "larder bench: --model is required\n");
        return 1;
    }
    model *m = model_load(model_path, &err);
    if (!m) {
        fprintf(stderr, "larder bench: %s\n", err.message);
        return 1;
    }
    int status = 1;
    int32_t n_vocab = m->hp.n_vocab, max_tokens = (int32_t)(n_prompt > n_gen ? n_prompt : n_gen);
    backend *be = cli_backend_for_model(m, (int)threads, &err);
    runner *r = be ? runner_create(m, be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = max_tokens}, &err)
                   : NULL;
    int32_t *tokens = malloc((size_t)max_tokens * sizeof *tokens);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    kv_seq seq;
    kv_seq_init(&seq);
    if (!r || !tokens || !logits) {
        fprintf(stderr, "larder bench: %s\n", r ? "out of memory" : err.message);
        goto done;
    }
    unsigned seed = 1234; /* the same pseudo-random prompt as llama_min */
    for (int32_t i = 0; i < max_tokens; i++) {
        seed = seed * 1103515245u + 12345u;
        tokens[i] = (int32_t)((seed >> 8) % (unsigned)n_vocab);
    }
    if (runner_eval(r, &seq, tokens, 1, false, logits, &err)) goto fail;
    kv_seq_release(&seq, r->pool);

    double t0 = timing_now_ms();
    if (runner_eval(r, &seq, tokens, (int32_t)n_prompt, false, logits, &err)) goto fail;
    double pp_ms = timing_now_ms() - t0;

    kv_seq_release(&seq, r->pool);
    t0 = timing_now_ms();
    for (int32_t i = 0; i < n_gen; i++)
        if (runner_eval(r, &seq, &tokens[i % n_prompt], 1, false, logits, &err)) goto fail;
    double tg_ms = timing_now_ms() - t0;

    double pp = n_prompt / (pp_ms / 1000.0), tg = n_gen / (tg_ms / 1000.0);
    const tensor_type_traits *tt = tensor_type_get(m->layers[0].wq.type);
    if (json)
        printf("{\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"threads\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,"
               "\"arch\":\"%s\",\"type\":\"%s\",\"layers\":%d,\"dim\":%d,\"n_vocab\":%d,\"weight_bytes\":%zu,"
               "\"decode_gb_s\":%.2f}\n",
               pp, tg, (int)threads, (int)n_prompt, (int)n_gen, m->hp.arch->name, tt ? tt->name : "?",
               m->hp.n_layers, m->hp.dim, n_vocab, m->weight_bytes,
               tg * (double)(m->weight_bytes - (m->output_tied ? 0 : m->tok_embd.rows * m->tok_embd.row_bytes)) /
                   1e9);
    else
        printf("larder: prefill %.2f tok/s (%d tokens), decode %.2f tok/s (%d tokens), %d threads\n", pp,
               (int)n_prompt, tg, (int)n_gen, (int)threads);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "larder bench: %s\n", err.message);
done:
    free(tokens);
    free(logits);
    if (r) kv_seq_release(&seq, r->pool);
    runner_free(r);
    model_free(m);
    backend_free(be);
    return status;
}
