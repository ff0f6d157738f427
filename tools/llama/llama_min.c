/*
 * llama_min.c — the oracle side of larder's benchmarks and agreement tests:
 * llama.cpp's engine called directly through libllama (the prebuilt CPU
 * libraries that the npm package node-llama-cpp ships), without JavaScript
 * in the timed loop.
 *
 *   llama_min bench --model F [--threads N] [--prompt-tokens 512] [--gen-tokens 128] [--json]
 *       prompt processing: one batch of prompt-tokens tokens, as llama-bench's
 *       pp test; generation: gen-tokens steps of one token, as its tg test.
 *       Prints {"prefill_tok_s":..., "decode_tok_s":...} like `larder bench --json`.
 *   llama_min quantize IN OUT TYPE     (TYPE: q4_k_m, q8_0, q4_0, q6_k, q5_k_m)
 *       llama.cpp's own quantizer (llama_model_quantize): files written by
 *       another writer than larder's.
 *
 * Built by tools/llama/build.sh against the headers of the source bundle that
 * comes with the same package (make deps clones it into node_modules/.llama-src).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "llama.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int cmd_quantize(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: llama_min quantize IN OUT TYPE\n");
        return 1;
    }
    static const struct { const char *name; enum llama_ftype ftype; } types[] = {
        {"q4_k_m", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"q5_k_m", LLAMA_FTYPE_MOSTLY_Q5_K_M},
        {"q6_k", LLAMA_FTYPE_MOSTLY_Q6_K},     {"q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
        {"q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},
    };
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    int found = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(argv[4], types[i].name)) {
            qp.ftype = types[i].ftype;
            found = 1;
        }
    if (!found) {
        fprintf(stderr, "llama_min: unknown type %s\n", argv[4]);
        return 1;
    }
    qp.nthread = 2;
    uint32_t rc = llama_model_quantize(argv[2], argv[3], &qp);
    if (rc) fprintf(stderr, "llama_min: quantize failed (%u)\n", rc);
    return rc ? 1 : 0;
}

static int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    int threads = 2, n_prompt = 512, n_gen = 128, json = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt-tokens") && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen-tokens") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "llama_min bench: unknown argument %s\n", argv[i]);
            return 1;
        }
    }
    if (!model_path || threads < 1 || n_prompt < 1 || n_gen < 1) {
        fprintf(stderr, "usage: llama_min bench --model F [--threads N] [--prompt-tokens N] [--gen-tokens N] [--json]\n");
        return 1;
    }
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        fprintf(stderr, "llama_min: cannot load %s\n", model_path);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_gen + 16);
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_min: cannot create a context\n");
        return 1;
    }
    int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_token *tokens = malloc((size_t)n_prompt * sizeof *tokens);
    unsigned seed = 1234;
    for (int i = 0; i < n_prompt; i++) {
        seed = seed * 1103515245u + 12345u;
        tokens[i] = (llama_token)((seed >> 8) % (unsigned)n_vocab);
    }
    /* Warm-up (as llama-bench): one small decode. */
    llama_decode(ctx, llama_batch_get_one(tokens, 1));
    llama_synchronize(ctx);
    llama_memory_clear(llama_get_memory(ctx), true);

    double t0 = now_s();
    if (llama_decode(ctx, llama_batch_get_one(tokens, n_prompt))) {
        fprintf(stderr, "llama_min: prompt decode failed\n");
        return 1;
    }
    llama_synchronize(ctx);
    double pp_s = now_s() - t0;

    llama_memory_clear(llama_get_memory(ctx), true);
    llama_token t = tokens[0];
    t0 = now_s();
    for (int i = 0; i < n_gen; i++) {
        if (llama_decode(ctx, llama_batch_get_one(&t, 1))) {
            fprintf(stderr, "llama_min: decode failed\n");
            return 1;
        }
        llama_synchronize(ctx);
        t = tokens[(i + 1) % n_prompt];
    }
    double tg_s = now_s() - t0;
    if (json)
        printf("{\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"threads\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d}\n",
               n_prompt / pp_s, n_gen / tg_s, threads, n_prompt, n_gen);
    else
        printf("llama.cpp: prefill %.2f tok/s, decode %.2f tok/s (%d threads)\n", n_prompt / pp_s, n_gen / tg_s, threads);
    free(tokens);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

int main(int argc, char **argv) {
    llama_log_set(quiet_log, NULL);
    /* The CPU backends are separate libraries (one per ISA level) found in
     * the package's bins folder; LLAMA_BINS overrides where that is. */
    const char *bins = getenv("LLAMA_BINS");
    ggml_backend_load_all_from_path(bins && *bins ? bins : LLAMA_BINS_DIR);
    llama_backend_init();
    int rc;
    if (argc >= 2 && !strcmp(argv[1], "bench")) rc = cmd_bench(argc, argv);
    else if (argc >= 2 && !strcmp(argv[1], "quantize")) rc = cmd_quantize(argc, argv);
    else {
        fprintf(stderr, "usage: llama_min bench|quantize ...\n");
        rc = 1;
    }
    llama_backend_free();
    return rc;
}
