/*
 * llama_min.c — the oracle side of larder's benchmarks and agreement tests:
 * llama.cpp's engine called directly through libllama (the prebuilt CPU
 * libraries that the npm package node-llama-cpp ships), without JavaScript
 * in the timed loop.
 *
 *   llama_min bench --model F [--threads N] [--prompt-tokens 512] [--gen-tokens 128] [--reps 1] [--json]
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

/* A whole-number flag value in [lo, hi]; -1 when it is not one. */
static long parse_count(const char *flag, const char *s, long lo, long hi) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "llama_min bench: %s wants a whole number in [%ld, %ld], got %s\n", flag, lo, hi, s);
        return -1;
    }
    return v;
}

/* Decodes tokens[0..n) as one batch; 0 on success. */
static int decode_batch(struct llama_context *ctx, llama_token *tokens, int n) {
    if (llama_decode(ctx, llama_batch_get_one(tokens, n))) return -1;
    llama_synchronize(ctx);
    return 0;
}

/* Measured as llama-bench measures pp and tg (tools/llama-bench in the same
 * source release): the context holds prompt + gen tokens, flash attention
 * and the KV type are libllama's defaults (auto, F16), one prompt batch
 * (n_batch = n_ubatch = prompt-tokens), then generation from an empty
 * sequence one token per llama_decode, each step synchronized. Warm-up: one
 * full prompt run and one generation step; each timed run starts from an
 * empty memory. The rate is the mean over --reps runs (llama-bench's avg_ts).
 * The timed runs are the same as `larder bench`'s, so the two compare. */
static int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    long threads = 2, n_prompt = 512, n_gen = 128, reps = 1;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *count = !strcmp(a, "--threads") ? &threads : !strcmp(a, "--prompt-tokens") ? &n_prompt
                    : !strcmp(a, "--gen-tokens") ? &n_gen : !strcmp(a, "--reps") ? &reps : NULL;
        if (count && v) {
            if ((*count = parse_count(a, v, 1, 65536)) < 0) return 1;
            i++;
        } else if (!strcmp(a, "--model") && v) {
            model_path = v;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "llama_min bench: unknown or incomplete argument %s\n", a);
            return 1;
        }
    }
    if (!model_path) {
        fprintf(stderr, "usage: llama_min bench --model F [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N] [--json]\n");
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
    cp.n_ctx = (uint32_t)(n_prompt + n_gen);
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_threads = (int32_t)threads;
    cp.n_threads_batch = (int32_t)threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    llama_token *tokens = malloc((size_t)(n_prompt > n_gen ? n_prompt : n_gen) * sizeof *tokens);
    int rc = 1;
    if (!ctx || !tokens) {
        fprintf(stderr, "llama_min: %s\n", ctx ? "out of memory" : "cannot create a context");
        goto done;
    }
    /* Pseudo-random token ids (a fixed LCG, as larder bench): the content
     * does not change the work of a dense model. */
    int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    unsigned seed = 1234;
    for (long i = 0; i < (n_prompt > n_gen ? n_prompt : n_gen); i++) {
        seed = seed * 1103515245u + 12345u;
        tokens[i] = (llama_token)((seed >> 8) % (unsigned)n_vocab);
    }
    /* Warm-up: a full prompt run and one generation step. */
    if (decode_batch(ctx, tokens, (int)n_prompt)) goto decode_failed;
    llama_memory_clear(llama_get_memory(ctx), true);
    if (decode_batch(ctx, tokens, 1)) goto decode_failed;
    double pp_rate_sum = 0, tg_rate_sum = 0;
    for (long r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t0 = now_s();
        if (decode_batch(ctx, tokens, (int)n_prompt)) goto decode_failed;
        pp_rate_sum += (double)n_prompt / (now_s() - t0);
    }
    for (long r = 0; r < reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        double t0 = now_s();
        for (long i = 0; i < n_gen; i++)
            if (decode_batch(ctx, &tokens[i], 1)) goto decode_failed;
        tg_rate_sum += (double)n_gen / (now_s() - t0);
    }
    double pp = pp_rate_sum / (double)reps, tg = tg_rate_sum / (double)reps;
    if (json)
        printf("{\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"threads\":%ld,\"prompt_tokens\":%ld,"
               "\"gen_tokens\":%ld,\"reps\":%ld,\"engine\":\"llama.cpp\"}\n",
               pp, tg, threads, n_prompt, n_gen, reps);
    else
        printf("llama.cpp: prefill %.2f tok/s, decode %.2f tok/s (%ld threads)\n", pp, tg, threads);
    rc = 0;
    goto done;
decode_failed:
    fprintf(stderr, "llama_min: llama_decode failed\n");
done:
    free(tokens);
    if (ctx) llama_free(ctx);
    llama_model_free(model);
    return rc;
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
