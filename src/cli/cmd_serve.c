/*
 * cmd_serve.c — `larder serve`: load a model, print the memory plan, start
 * the engine and the HTTP server, run until SIGINT/SIGTERM.
 *
 * With no --model it serves the bundled default model (models/, found next
 * to the binary's repository or through LARDER_DEFAULT_MODEL).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/platform.h"
#include "base/size_parse.h"
#include "base/timing.h"
#include "chat/chat_prompt.h"
#include "cli/cli_args.h"
#include "cli/cli_model.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kv/kv_disk.h"
#include "kv/kv_pool.h"
#include "model/model.h"
#include "model/runner.h"
#include "server/http_checks.h"
#include "server/routes.h"
#include "tensor/dtype.h"
#include "tokenizer/tokenizer.h"

/* The bundled model, relative to the repository root (make run). */
#define DEFAULT_MODEL_PATH "models/larder-brown-35m-q8_0.gguf"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static const char *default_model_path(void) {
    const char *env = getenv("LARDER_DEFAULT_MODEL");
    if (env && *env) return env;
    if (access(DEFAULT_MODEL_PATH, R_OK) == 0) return DEFAULT_MODEL_PATH;
    /* build/larder run from elsewhere: look beside the binary's folder. */
    static char path[4096];
    if (platform_executable_path(path, sizeof path) > 0) {
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(path, '/');
            if (slash) *slash = 0;
        }
        size_t len = strlen(path);
        if (len + 1 + sizeof DEFAULT_MODEL_PATH < sizeof path) {
            snprintf(path + len, sizeof path - len, "/%s", DEFAULT_MODEL_PATH);
            if (access(path, R_OK) == 0) return path;
        }
    }
    return DEFAULT_MODEL_PATH;
}

/* <arch>.context_length from the file's metadata (0 when absent). */
static int64_t context_length(const gguf_file *f) {
    size_t len;
    const char *arch = gguf_get_string(f, "general.architecture", &len);
    if (!arch) return 0;
    char key[128];
    snprintf(key, sizeof key, "%s.context_length", arch);
    uint32_t v = 0;
    return gguf_get_u32(f, key, &v) ? v : 0;
}

/* Reads one byte of every 4 KiB page of the weights so they are resident
 * before the first request (instead of faulting in during it), drawing a
 * progress bar when stderr is a terminal. */
static void prefault_weights(const gguf_file *f) {
    bool tty = isatty(STDERR_FILENO);
    int64_t n = gguf_tensor_count(f);
    size_t total = 0, done = 0;
    for (int64_t i = 0; i < n; i++) total += gguf_tensor_at(f, i)->size_bytes;
    volatile unsigned char sink = 0;
    int last_pct = -1;
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const unsigned char *p = t->data;
        for (size_t off = 0; off < t->size_bytes; off += 4096) sink ^= p[off];
        done += t->size_bytes;
        int pct = total ? (int)(done * 100 / total) : 100;
        if (tty && pct != last_pct) {
            char bar[41];
            int filled = pct * 40 / 100;
            for (int k = 0; k < 40; k++) bar[k] = k < filled ? '#' : ' ';
            bar[40] = 0;
            fprintf(stderr, "\rloading weights [%s] %3d%%", bar, pct);
            last_pct = pct;
        }
    }
    if (tty) fputc('\n', stderr);
    (void)sink;
}

/* The model's identity for the disk tier (a file of another model must
 * never serve): the file's whole header (metadata and tensor table) and the
 * first and last 4 KiB of every tensor's data. */
static uint64_t model_fingerprint(const gguf_file *f) {
    uint64_t h = hash_combine(gguf_file_size(f), (uint64_t)gguf_tensor_count(f));
    const gguf_tensor *t0 = gguf_tensor_at(f, 0);
    if (t0 && (size_t)t0->offset_bytes + gguf_data_offset(f) <= gguf_file_size(f)) {
        const unsigned char *base = (const unsigned char *)t0->data - t0->offset_bytes - gguf_data_offset(f);
        h = hash_combine(h, hash_bytes(base, gguf_data_offset(f)));
    }
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t n = t->size_bytes < 4096 ? t->size_bytes : 4096;
        h = hash_combine(h, hash_bytes(t->data, n));
        h = hash_combine(h, hash_bytes((const unsigned char *)t->data + t->size_bytes - n, n));
    }
    return h;
}

static const char *special_text(const tokenizer *tok, int32_t id) {
    if (id == TOKEN_NONE) return "";
    size_t len;
    const char *t = tokenizer_piece(tok, id, true, &len);
    return t ? t : "";
}

/* Tells the chat renderer which texts are control tokens (so that such
 * text in message content is tokenized as text). */
static int serve_set_control_texts(chat_prompt *chat, const tokenizer *tok, larder_error *err) {
    uint32_t n = tokenizer_n_tokens(tok), k = 0;
    const char **texts = malloc((n ? n : 1) * sizeof *texts);
    if (!texts) return error_set(err, ERR_NOMEM, "out of memory");
    for (uint32_t id = 0; id < n; id++)
        if (tokenizer_token_attr(tok, (int32_t)id) & (TOKEN_ATTR_CONTROL | TOKEN_ATTR_UNKNOWN))
            texts[k++] = tokenizer_token_text(tok, (int32_t)id);
    int rc = chat_prompt_set_control_texts(chat, texts, k, err);
    free(texts);
    return rc;
}

/* What `larder serve` was asked for: the command line, with the defaults
 * that need no model filled in. */
typedef struct serve_options {
    const char *model_path, *model_name, *host, *api_key, *cors, *kv_type_name, *cache_dir;
    const char *api_key_file, *allowed_hosts;
    char *api_key_from_file;  /* malloc'd: the key read from --api-key-file */
    int64_t port, threads, cache_entries, page_tokens, ctx, parallel, batch;
    int64_t max_queue, max_kv_size, keep, max_connections, max_n;
    bool parse_special_in_content;
    uint64_t kv_memory, cache_bytes, max_body, cache_disk_bytes;
    double cache_ttl;
    bool verbose, no_prewarm, keep_billing_header;
    uint32_t kv_type;   /* kv_type_name as a KV pool type */
    cli_device dev; /* --device, --gpu */
} serve_options;

/* The key in the file's first line (surrounding whitespace dropped);
 * malloc'd, or NULL with err. */
static char *serve_read_key_file(const char *path, larder_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) {
        error_set(err, ERR_IO, "cannot open it");
        return NULL;
    }
    char line[4096];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got) {
        error_set(err, ERR_INVALID, "it is empty");
        return NULL;
    }
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n') {
        error_set(err, ERR_INVALID, "its first line is longer than %zu bytes", sizeof line - 2);
        return NULL;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
    char *start = line;
    while (*start == ' ' || *start == '\t') start++;
    if (!*start) {
        error_set(err, ERR_INVALID, "its first line holds no key");
        return NULL;
    }
    char *key = strdup(start);
    if (!key) error_set(err, ERR_NOMEM, "out of memory");
    memset(line, 0, sizeof line);
    return key;
}

/* Parses argv into o and checks it. Returns true when serving goes on;
 * false with *exit_status set after --help (0) or a bad option (1, printed). */
static bool serve_parse_options(int argc, char **argv, serve_options *o, int *exit_status) {
    *o = (serve_options){.host = "127.0.0.1", .kv_type_name = "f16", .port = 8080, .cache_entries = 10,
                         .page_tokens = 16, .parallel = 4, .batch = 512, .max_queue = 64, .max_body = 16u << 20,
                         .max_connections = 128, .max_n = 16, .cache_disk_bytes = (uint64_t)8 << 30};
    cli_option opts[] = {
        CLI_STR("--model", &o->model_path, "FILE", "GGUF model (default: the bundled model)"),
        CLI_STR("--model-name", &o->model_name, "NAME", "model id in responses (default: the file name)"),
        CLI_STR("--host", &o->host, "ADDR", "address to listen on (default 127.0.0.1)"),
        CLI_INT("--port", &o->port, 0, 65535, "N", "port (default 8080; 0: any free port)"),
        CLI_STR("--api-key", &o->api_key, "KEY", "require 'Authorization: Bearer KEY' or 'x-api-key: KEY' (all routes but /health); visible in ps: prefer --api-key-file"),
        CLI_STR("--api-key-file", &o->api_key_file, "FILE", "read the API key from FILE (its first line)"),
        CLI_STR("--allowed-hosts", &o->allowed_hosts, "NAMES", "Host names accepted besides IP literals and localhost (comma-separated; '*': any)"),
        CLI_INT("--max-connections", &o->max_connections, 1, 1 << 16, "N", "open connections (default 128; idle and slow ones give way, then 503)"),
        CLI_INT("--max-n", &o->max_n, 1, 16, "N", "most choices per request ('n', default 16)"),
        CLI_FLAG("--parse-special-in-content", &o->parse_special_in_content, "tokenize special-token text in message content as special tokens (the old behaviour; unsafe)"),
        CLI_STR("--cors-origin", &o->cors, "ORIGIN", "send CORS headers for this origin"),
        CLI_SIZE("--max-body", &o->max_body, "SIZE", "largest request body (default 16M; 413 past it)"),
        CLI_INT("--threads", &o->threads, 0, 1024, "N", "compute threads (default: the number of cores)"),
        CLI_DEVICE_OPTIONS(&o->dev),
        CLI_SIZE("--kv-memory", &o->kv_memory, "SIZE", "the whole KV pool, running sequences and cache (default: ctx-size x parallel)"),
        CLI_STR("--kv-type", &o->kv_type_name, "TYPE", "KV type: f16 (default), bf16, f32, q8_0, q4_0"),
        CLI_INT("--page-tokens", &o->page_tokens, 1, 4096, "N", "tokens per KV page (default 16)"),
        CLI_INT("--ctx-size", &o->ctx, 0, 1 << 24, "N", "most tokens of one sequence (default: the model's)"),
        CLI_INT("--parallel", &o->parallel, 1, 256, "N", "sequences computed together (default 4)"),
        CLI_INT("--batch-tokens", &o->batch, 1, 1 << 16, "N", "most tokens per forward pass (default 512)"),
        CLI_INT("--max-queue", &o->max_queue, 0, 1 << 20, "N", "requests waiting beyond --parallel before 503 (default 64)"),
        CLI_INT("--prompt-cache-size", &o->cache_entries, 0, 1 << 30, "N", "idle cached conversations kept (default 10; 0: none)"),
        CLI_SIZE("--prompt-cache-bytes", &o->cache_bytes, "SIZE", "most KV bytes held by idle cached entries (default: no limit)"),
        CLI_FLOAT("--prompt-cache-ttl", &o->cache_ttl, 0, 1e9, "SECONDS", "idle cached entries older than this go (default: never)"),
        CLI_INT("--max-kv-size", &o->max_kv_size, 0, 1 << 24, "N", "rotating window: a sequence keeps K/V of its first --keep and last N - keep tokens"),
        CLI_INT("--keep", &o->keep, 0, 1 << 24, "N", "with --max-kv-size: tokens kept at the start (default 0)"),
        CLI_STR("--cache-dir", &o->cache_dir, "DIR", "keep cached KV pages on disk too: survives restarts and evictions"),
        CLI_SIZE("--cache-disk-bytes", &o->cache_disk_bytes, "SIZE", "most bytes of page files in --cache-dir (default 8G)"),
        CLI_FLAG("--no-prewarm", &o->no_prewarm, "do not pre-warm a chat's next turn while idle"),
        CLI_FLAG("--keep-billing-header", &o->keep_billing_header,
                 "keep Claude Code's x-anthropic-billing-header system block in the prompt (it defeats the prompt cache)"),
        CLI_FLAG("--verbose", &o->verbose, "debug logging"),
    };
    bool done;
    *exit_status = cli_parse_or_exit("serve", "larder serve [options]", argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return false;
    *exit_status = 1;
    if (o->max_kv_size > 0 && o->keep >= o->max_kv_size) {
        fprintf(stderr, "larder serve: --keep (%lld) must be smaller than --max-kv-size (%lld)\n", (long long)o->keep,
                (long long)o->max_kv_size);
        return false;
    }
    int kv_type_id = kv_pool_type_from_name(o->kv_type_name);
    if (kv_type_id < 0) {
        fprintf(stderr, "larder serve: --kv-type %s is not supported (f16, f32, bf16, q8_0, q4_0)\n", o->kv_type_name);
        return false;
    }
    o->kv_type = (uint32_t)kv_type_id;
    if (o->api_key && o->api_key_file) {
        fprintf(stderr, "larder serve: give --api-key or --api-key-file, not both\n");
        return false;
    }
    if (o->api_key_file) {
        larder_error err = {0};
        o->api_key_from_file = serve_read_key_file(o->api_key_file, &err);
        if (!o->api_key_from_file) {
            fprintf(stderr, "larder serve: --api-key-file %s: %s\n", o->api_key_file, err.message);
            return false;
        }
        o->api_key = o->api_key_from_file;
    }
    if (o->api_key && !o->api_key[0]) {
        fprintf(stderr, "larder serve: the API key is empty\n");
        return false;
    }
    if (!o->model_path) o->model_path = default_model_path();
    if (o->threads == 0) o->threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    *exit_status = 0;
    return true;
}

/* The memory plan's defaults, from the model: the context it was trained
 * for (else 4096), and a KV pool that holds --parallel whole sequences. */
static void serve_plan_memory(serve_options *o, int64_t ctx_train, size_t kv_bytes_per_token) {
    if (o->ctx == 0) o->ctx = ctx_train > 0 ? ctx_train : 4096;
    if (o->kv_memory == 0) {
        /* a windowed sequence holds about N tokens (+ a batch and page edges) */
        uint64_t per_seq = (uint64_t)o->ctx;
        if (o->max_kv_size > 0 && (uint64_t)(o->max_kv_size + o->batch + 2 * o->page_tokens) < per_seq)
            per_seq = (uint64_t)(o->max_kv_size + o->batch + 2 * o->page_tokens);
        o->kv_memory = per_seq * (uint64_t)o->parallel * kv_bytes_per_token;
    }
}

/* Logs the memory plan: what the budget buys. */
static void serve_log_plan(const serve_options *o, const model *m, const tokenizer *tok, engine *eng, int64_t ctx_train) {
    engine_stats st = engine_get_stats(eng);
    char b1[32], b2[32], b3[32], b4[32];
    size_t per_token = engine_kv_bytes_per_token(eng);
    log_info("model %s: %s, weights %s (mmapped), vocabulary %u, context %lld (trained %lld)", o->model_path,
             m->hp.arch->name, size_format(m->weight_bytes, b1, sizeof b1), tokenizer_n_tokens(tok), (long long)o->ctx,
             (long long)ctx_train);
    if (m->hp.n_expert > 0)
        log_info("experts: %s of the weights in %d layers x %d experts, %d used per token",
                 size_format(model_expert_bytes(m), b1, sizeof b1), m->hp.n_layers, m->hp.n_expert, m->hp.n_expert_used);
    log_info("weights read per decoded token: %s", size_format(model_decode_bytes_per_token(m), b1, sizeof b1));
    log_info("KV pool %s (--kv-memory): %s per token (%s), %lld pages of %lld tokens = %lld tokens",
             size_format((uint64_t)st.kv_bytes_total, b2, sizeof b2), size_format(per_token, b3, sizeof b3), o->kv_type_name,
             (long long)st.pages_total, (long long)o->page_tokens, (long long)(st.pages_total * o->page_tokens));
    log_info("prompt cache: at most %lld idle conversations, %s idle bytes, ttl %s; %lld sequences in parallel, queue %lld",
             (long long)o->cache_entries, o->cache_bytes ? size_format(o->cache_bytes, b4, sizeof b4) : "no limit on",
             o->cache_ttl > 0 ? "set" : "none", (long long)o->parallel, (long long)o->max_queue);
    if (o->max_kv_size > 0)
        log_info("rotating window: a sequence keeps K/V of its first %lld and last %lld tokens (--max-kv-size %lld)",
                 (long long)o->keep, (long long)(o->max_kv_size - o->keep), (long long)o->max_kv_size);
}

/* The state the routes share; NULL when out of memory. */
static server_app *serve_app_create(const serve_options *o, engine *eng, const tokenizer *tok, const chat_prompt *chat) {
    server_app *app = calloc(1, sizeof *app);
    if (!app) return NULL;
    app->eng = eng;
    app->tok = tok;
    app->chat = chat;
    app->tool_format = toolcall_format_from_template(chat ? chat_prompt_source(chat) : NULL);
    log_info("chat: tool calls %s, reasoning markers %s", toolcall_syntax_name(app->tool_format.syntax),
             app->tool_format.think_open ? app->tool_format.think_open : "none");
    const char *base = strrchr(o->model_path, '/');
    app->model_name = o->model_name ? o->model_name : base ? base + 1 : o->model_path;
    app->ctx_tokens = (int32_t)o->ctx;
    app->n_vocab = (int32_t)tokenizer_n_tokens(tok);
    app->created_unix_s = timing_unix_s();
    app->max_n = (int32_t)o->max_n;
    app->parse_special_in_content = o->parse_special_in_content;
    app->keep_billing_header = o->keep_billing_header;
    metrics_init(&app->metrics);
    app->prewarm.eng = eng;
    app->prewarm.tok = tok;
    app->prewarm.chat = chat;
    /* Nothing pre-warmed would stay with --prompt-cache-size 0. */
    atomic_store(&app->prewarm.enabled, !o->no_prewarm && o->cache_entries > 0);
    return app;
}

/* Returns once SIGINT or SIGTERM arrives. */
/* The vocabulary's end-of-generation ids into eog (ENGINE_MAX_EOG_TOKENS
 * room): their count, or -1 with err when there are more. */
static int32_t serve_eog_tokens(const tokenizer *tok, int32_t *eog, larder_error *err) {
    int32_t n = 0;
    for (uint32_t id = 0; id < tokenizer_n_tokens(tok); id++) {
        if (!tokenizer_is_eog(tok, (int32_t)id)) continue;
        if (n == ENGINE_MAX_EOG_TOKENS)
            return error_set(err, ERR_UNSUPPORTED, "the vocabulary has more than %d end-of-generation tokens",
                             ENGINE_MAX_EOG_TOKENS);
        eog[n++] = (int32_t)id;
    }
    return n;
}

static void serve_until_signal(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!stop_requested) {
        struct timespec nap = {0, 100 * 1000 * 1000}; /* polling avoids the check-then-pause race */
        nanosleep(&nap, NULL);
    }
}

int cmd_serve(int argc, char **argv) {
    serve_options o;
    int rc;
    if (!serve_parse_options(argc, argv, &o, &rc)) return rc;
    if (o.verbose) log_set_level(LOG_DEBUG);
    rc = 1;
    larder_error err = {0};
    tokenizer *tok = NULL;
    chat_prompt *chat = NULL;
    model *m = NULL;
    backend *be = NULL;
    runner *run = NULL;
    engine *eng = NULL;
    kv_disk *disk = NULL;
    server_app *app = NULL;
    http_server *srv = NULL;

    /* One open of the file: tokenizer, template and weights come from it. */
    gguf_file *meta = gguf_open(o.model_path, &err);
    if (!meta) goto fail_model_file;
    int64_t ctx_train = context_length(meta);
    uint64_t fingerprint = model_fingerprint(meta);
    tok = tokenizer_load_gguf(meta, &err);
    if (!tok) goto fail_model_file;
    size_t tmpl_len = 0;
    const char *tmpl = gguf_get_string(meta, "tokenizer.chat_template", &tmpl_len);
    if (tmpl) {
        chat = chat_prompt_create(tmpl, special_text(tok, tokenizer_bos(tok)), special_text(tok, tokenizer_eos(tok)), &err);
        if (!chat) log_warn("the model's chat template does not parse (%s); /v1/chat/completions is off", err.message);
        else if (serve_set_control_texts(chat, tok, &err)) goto fail_model_file;
    } else {
        log_warn("the model has no chat template; /v1/chat/completions is off");
    }
    prefault_weights(meta);
    m = model_load_gguf(meta, &err); /* takes the file */
    if (!m) goto fail_model_file;
    meta = NULL;

    serve_plan_memory(&o, ctx_train, model_kv_bytes_per_token(m, o.kv_type));
    /* The model on its backend, with the KV pool and the forward pass the
     * engine drives. */
    be = cli_backend_for_model(m, (int)o.threads, &o.dev, &err);
    if (!be) goto fail;
    run = runner_create(m, be, &(runner_config){.kv_type = o.kv_type, .page_tokens = (int32_t)o.page_tokens,
                                                .kv_memory_bytes = (size_t)o.kv_memory}, &err);
    if (!run) goto fail;
    int32_t eog[ENGINE_MAX_EOG_TOKENS], n_eog;
    if ((n_eog = serve_eog_tokens(tok, eog, &err)) < 0) goto fail;
    engine_config ec = {0};
    ec.pool = run->pool;
    ec.forward = forward_batch_fn;
    ec.forward_ctx = run->fw;
    ec.n_vocab = m->hp.n_vocab;
    ec.eog_tokens = eog;
    ec.n_eog_tokens = n_eog;
    ec.ctx_tokens = (int32_t)o.ctx;
    ec.max_kv_tokens = (int32_t)o.max_kv_size;
    ec.keep_tokens = (int32_t)o.keep;
    ec.parallel = (int32_t)o.parallel;
    ec.batch_tokens = (int32_t)o.batch;
    ec.max_queue = (int32_t)o.max_queue;
    ec.cache_max_entries = o.cache_entries;
    ec.cache_max_bytes = (size_t)o.cache_bytes;
    ec.cache_ttl_s = o.cache_ttl;
    if (o.cache_dir) {
        kv_disk_config dc = {o.cache_dir, o.cache_disk_bytes, fingerprint};
        if (!(disk = kv_disk_open(&dc, run->pool, &err))) goto fail;
        kv_disk_stats ds = kv_disk_get_stats(disk);
        char b1[32], b2[32];
        log_info("disk cache %s: %lld page files, %s of %s", o.cache_dir, (long long)ds.files,
                 size_format((uint64_t)ds.bytes, b1, sizeof b1), size_format(o.cache_disk_bytes, b2, sizeof b2));
    }
    ec.disk = disk;
    eng = engine_start(&ec, &err);
    if (!eng) goto fail;
    serve_log_plan(&o, m, tok, eng, ctx_train);
    size_t dev_free, dev_total;
    if (backend_device_memory(be, &dev_free, &dev_total) == 0) {
        char b1[32], b2[32];
        log_info("device %s (GPU %d): %s of %s free with the weights and the KV pool in it", backend_name(be),
                 (int)o.dev.gpu, size_format(dev_free, b1, sizeof b1), size_format(dev_total, b2, sizeof b2));
    }

    app = serve_app_create(&o, eng, tok, chat);
    if (!app) {
        error_set(&err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    app->disk = disk;
    int n_routes;
    const http_route *routes = routes_table(&n_routes);
    http_server_config hc = {.host = o.host, .port = (uint16_t)o.port, .api_key = o.api_key, .cors_origin = o.cors,
                             .max_body_bytes = (size_t)o.max_body, .max_connections = (unsigned)o.max_connections,
                             .routes = routes, .n_routes = n_routes, .app = app, .allowed_hosts = o.allowed_hosts,
                             .metrics = &app->metrics, .error_for_path = routes_error_for_path};
    srv = http_server_start(&hc, &err);
    if (!srv) goto fail;
    log_info("listening on http://%s:%u (at most %lld connections)", o.host, http_server_port(srv),
             (long long)o.max_connections);
    if (!http_bind_is_loopback(o.host) && !o.api_key)
        log_warn("WARNING: listening on %s, beyond loopback, WITHOUT an API key: anyone who can reach this port "
                 "can use the model and read what it answers (set --api-key-file)", o.host);
    serve_until_signal();
    log_info("shutting down");
    rc = 0;
    goto cleanup;

fail_model_file:
    error_prefix(&err, "%s", o.model_path);
fail:
    fprintf(stderr, "larder serve: %s\n", err.message);
cleanup:
    http_server_stop(srv);
    if (app) { /* renderings in flight submit to the engine: let them end first */
        atomic_store(&app->prewarm.enabled, false);
        prewarm_drain(&app->prewarm, 10000);
    }
    engine_stop(eng);
    kv_disk_close(disk); /* writes what is queued */
    runner_free(run);
    chat_prompt_free(chat);
    model_free(m);
    backend_free(be);
    gguf_close(meta); /* only when the model did not take it */
    tokenizer_free(tok);
    free(app);
    free(o.api_key_from_file);
    return rc;
}
