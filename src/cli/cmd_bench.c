/*
 * cmd_bench.c — `larder bench --model FILE [--threads N] [--prompt-tokens
 * 512] [--gen-tokens 128] [--json]`: speed measured the way llama-bench
 * (and tools/llama/llama_min.c, its libllama twin) measures it:
 *   warm-up: one token, then the sequence is cleared;
 *   pp: one batch of prompt-tokens pseudo-random tokens (logits of the last);
 *   tg: the sequence cleared, then gen-tokens steps of one token each.
 * --json prints one object: prefill_tok_s, decode_tok_s, threads, model
 * details and the bytes of weights read per decoded token. --expert-stats
 * (mixtures of experts) also counts the experts the prompt's tokens were
 * routed to, per layer: the fewest distinct experts any layer used, and the
 * largest share of the tokens one expert took (routing that sends every
 * token to the same experts shows as a share near 1).
 * --seqs 1,8,32,64 measures batched decode instead, one row per count
 * (src/cli/bench_seqs.c: prefill of N distinct prompts, then gen-tokens
 * steps of N tokens each; --kv-memory, --greedy, --first-seq go with it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_features.h"
#include "base/timing.h"
#include "cli/bench_seqs.h"
#include "cli/cli_args.h"
#include "model/model.h"
#include "cli/cli_model.h"
#include "model/runner.h"
#include "tensor/dtype.h"

/* What `larder bench` was asked for. */
typedef struct bench_options {
    const char *model_path;
    int64_t threads, n_prompt, n_gen;
    bool json, expert_stats;
    cli_device dev; /* --device, --gpu */
    const char *seqs_list; /* --seqs: batched decode (bench_seqs.h) */
    uint64_t kv_memory;
    bool greedy;
    int64_t first_seq;
} bench_options;

/* Parses argv into o and checks it. Returns true when measuring goes on;
 * false with *exit_status set after --help (0) or a bad option (1, printed). */
static bool bench_parse_options(int argc, char **argv, bench_options *o, int *exit_status) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (bench_options){.threads = ncpu > 0 ? ncpu : 1, .n_prompt = 512, .n_gen = 128};
    cli_option opts[] = {
        CLI_STR("--model", &o->model_path, "FILE", "the GGUF model"),
        CLI_INT("--threads", &o->threads, 1, 512, "N", "compute threads (default: number of cores)"),
        CLI_DEVICE_OPTIONS(&o->dev),
        CLI_INT("--prompt-tokens", &o->n_prompt, 1, 65536, "N", "tokens in the prompt batch (default 512)"),
        CLI_INT("--gen-tokens", &o->n_gen, 1, 65536, "N", "decode steps (default 128)"),
        CLI_FLAG("--json", &o->json, "print one JSON object"),
        CLI_FLAG("--expert-stats", &o->expert_stats, "MoE: count the experts the prompt is routed to"),
        CLI_STR("--seqs", &o->seqs_list, "N[,N..]", "batched decode: N sequences per step, one row per N"),
        CLI_SIZE("--kv-memory", &o->kv_memory, "SIZE", "with --seqs: the KV pool (default: what the largest N needs)"),
        CLI_FLAG("--greedy", &o->greedy, "with --seqs: decode each sequence's argmax; --json lists the tokens"),
        CLI_INT("--first-seq", &o->first_seq, 0, 1 << 20, "K", "with --seqs: use the prompts of sequences K.. (tests)"),
    };
    const char *usage = "larder bench --model FILE [--threads N] [--prompt-tokens 512] [--gen-tokens 128] [--json]\n"
                        "                    [--expert-stats] [--seqs 1,8,32,64 [--kv-memory SIZE] [--greedy]]";
    bool done;
    *exit_status = cli_parse_or_exit("bench", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return false;
    if (!o->model_path) {
        fprintf(stderr, "larder bench: --model is required\n");
        *exit_status = 1;
        return false;
    }
    if (!o->seqs_list && (o->kv_memory || o->greedy || o->first_seq)) {
        fprintf(stderr, "larder bench: --kv-memory, --greedy and --first-seq go with --seqs\n");
        *exit_status = 1;
        return false;
    }
    if (o->seqs_list && o->expert_stats) {
        fprintf(stderr, "larder bench: --expert-stats measures the single-sequence prompt; not with --seqs\n");
        *exit_status = 1;
        return false;
    }
    return true;
}

/* --seqs: the batched rows (bench_seqs.h). 0, or -1 with err. */
static int bench_run_seqs(const bench_options *o, const model *m, backend *be, larder_error *err) {
    bench_seqs_options so = {.n_prompt = (int32_t)o->n_prompt, .n_gen = (int32_t)o->n_gen,
                             .first_seq = (int32_t)o->first_seq, .kv_memory_bytes = o->kv_memory,
                             .greedy = o->greedy, .json = o->json, .threads = (int)o->threads};
    if (bench_seqs_parse_list(o->seqs_list, &so, err)) return -1;
    return bench_seqs_run(m, be, &so, err);
}

/* The most tokens one sequence holds: the prompt batch or the decode steps. */
static int32_t bench_max_tokens(const bench_options *o) {
    return (int32_t)(o->n_prompt > o->n_gen ? o->n_prompt : o->n_gen);
}

/* Speeds measured, in tokens per second. */
typedef struct bench_result {
    double prefill_tok_s, decode_tok_s;
    int64_t *expert_counts;         /* --expert-stats: (n_layers, n_expert) of the prompt, or NULL */
} bench_result;

/* The expert statistics of res: the fewest distinct experts a layer used,
 * the largest share of the prompt's tokens one expert of a layer took. */
static void bench_expert_summary(const model *m, const bench_result *res, int64_t n_tokens, int64_t *distinct_min,
                                 double *top_share_max) {
    *distinct_min = m->hp.n_expert;
    *top_share_max = 0;
    for (int32_t il = 0; il < m->hp.n_layers; il++) {
        const int64_t *c = res->expert_counts + (int64_t)il * m->hp.n_expert;
        int64_t distinct = 0, top = 0;
        for (int32_t e = 0; e < m->hp.n_expert; e++) {
            distinct += c[e] > 0;
            if (c[e] > top) top = c[e];
        }
        if (distinct < *distinct_min) *distinct_min = distinct;
        if ((double)top / (double)n_tokens > *top_share_max) *top_share_max = (double)top / (double)n_tokens;
    }
}

/* Times the prompt batch and the decode steps (after a one-token warm-up),
 * each from an empty sequence, into *res. -1 with err. */
static int bench_measure(runner *r, const bench_options *o, bench_result *res, larder_error *err) {
    int32_t n_vocab = r->m->hp.n_vocab, max_tokens = bench_max_tokens(o);
    int rc = -1;
    kv_seq seq;
    kv_seq_init(&seq);
    int32_t *tokens = malloc((size_t)max_tokens * sizeof *tokens);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    if (!tokens || !logits) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    unsigned seed = 1234; /* the same pseudo-random prompt as llama_min */
    for (int32_t i = 0; i < max_tokens; i++) {
        seed = seed * 1103515245u + 12345u;
        tokens[i] = (int32_t)((seed >> 8) % (unsigned)n_vocab);
    }
    if (runner_eval(r, &seq, tokens, 1, false, logits, err)) goto cleanup;
    kv_seq_release(&seq, r->pool);

    if (res->expert_counts) forward_ctx_count_experts(r->fw, res->expert_counts);
    double t0 = timing_now_ms();
    if (runner_eval(r, &seq, tokens, (int32_t)o->n_prompt, false, logits, err)) goto cleanup;
    double pp_ms = timing_now_ms() - t0;
    forward_ctx_count_experts(r->fw, NULL);

    kv_seq_release(&seq, r->pool);
    t0 = timing_now_ms();
    for (int32_t i = 0; i < o->n_gen; i++)
        if (runner_eval(r, &seq, &tokens[i % o->n_prompt], 1, false, logits, err)) goto cleanup;
    double tg_ms = timing_now_ms() - t0;

    res->prefill_tok_s = o->n_prompt / (pp_ms / 1000.0);
    res->decode_tok_s = o->n_gen / (tg_ms / 1000.0);
    rc = 0;
cleanup:
    kv_seq_release(&seq, r->pool);
    free(tokens);
    free(logits);
    return rc;
}

/* One line of speeds, or with --json one object with the model's details
 * and the bytes of weights read per decoded token. */
static void bench_print(const bench_options *o, const model *m, const bench_result *res) {
    double pp = res->prefill_tok_s, tg = res->decode_tok_s;
    const tensor_type_traits *tt = tensor_type_get(m->layers[0].wq.type);
    if (o->json)
        printf("{\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,\"threads\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,"
               "\"arch\":\"%s\",\"type\":\"%s\",\"layers\":%d,\"dim\":%d,\"n_vocab\":%d,\"weight_bytes\":%zu,"
               "\"decode_bytes_per_token\":%zu,\"decode_gb_s\":%.2f,\"cpu_kernels\":\"%s\"",
               pp, tg, (int)o->threads, (int)o->n_prompt, (int)o->n_gen, m->hp.arch->name, tt ? tt->name : "?",
               m->hp.n_layers, m->hp.dim, m->hp.n_vocab, m->weight_bytes, model_decode_bytes_per_token(m),
               tg * (double)model_decode_bytes_per_token(m) / 1e9, cpu_level_name(cpu_level_active()));
    else
        printf("larder: prefill %.2f tok/s (%d tokens), decode %.2f tok/s (%d tokens), %d threads\n", pp,
               (int)o->n_prompt, tg, (int)o->n_gen, (int)o->threads);
    int64_t distinct = 0;
    double share = 0;
    if (res->expert_counts) bench_expert_summary(m, res, o->n_prompt, &distinct, &share);
    if (o->json && res->expert_counts)
        printf(",\"experts\":%d,\"experts_used\":%d,\"experts_distinct_min\":%lld,\"experts_top_share_max\":%.4f",
               m->hp.n_expert, m->hp.n_expert_used, (long long)distinct, share);
    else if (res->expert_counts)
        printf("larder: experts: every layer routed the prompt to >= %lld of %d experts; one expert took at most %.1f%% "
               "of the tokens (%d experts per token)\n", (long long)distinct, m->hp.n_expert, 100 * share,
               m->hp.n_expert_used);
    if (o->json) printf("}\n");
}

int cmd_bench(int argc, char **argv) {
    bench_options o;
    int status;
    if (!bench_parse_options(argc, argv, &o, &status)) return status;
    status = 1;
    larder_error err = {0};
    backend *be = NULL;
    runner *r = NULL;
    bench_result res = {0};

    model *m = model_load(o.model_path, &err);
    if (m && o.expert_stats && m->hp.n_expert > 0 &&
        !(res.expert_counts = calloc((size_t)m->hp.n_layers * (size_t)m->hp.n_expert, sizeof *res.expert_counts))) {
        error_set(&err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!m || !(be = cli_backend_for_model(m, (int)o.threads, &o.dev, &err))) goto fail;
    if (o.seqs_list) {
        if (bench_run_seqs(&o, m, be, &err)) goto fail;
        status = 0;
        goto cleanup;
    }
    if (!(r = runner_create(m, be, &(runner_config){.kv_type = TYPE_F16, .max_seq_tokens = bench_max_tokens(&o)}, &err)) ||
        bench_measure(r, &o, &res, &err))
        goto fail;
    bench_print(&o, m, &res);
    status = 0;
    goto cleanup;

fail:
    fprintf(stderr, "larder bench: %s\n", err.message);
cleanup:
    free(res.expert_counts);
    runner_free(r);
    model_free(m);
    backend_free(be);
    return status;
}
