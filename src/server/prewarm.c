/*
 * prewarm.c — next-turn pre-warming (see prewarm.h): the next request's
 * messages, its rendered prefix as tokens, and the background thread that
 * submits them to the engine as a pre-warming job.
 */
#include "server/prewarm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "chat/chat_prompt_tokens.h"

/* ---- the next request */

/* The answer as the assistant message of the response (routes.c writes the
 * same shape): content (null when only tool calls; "" with empty_content, as
 * agents such as OpenCode send it back), reasoning_content when any,
 * tool_calls with arguments as JSON text. */
static cJSON *answer_message(const toolcall_result *a, bool empty_content) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    bool ok = cJSON_AddStringToObject(m, "role", "assistant") != NULL;
    if (a->n_calls && !a->content_len && !empty_content) ok = ok && cJSON_AddNullToObject(m, "content");
    else ok = ok && cJSON_AddStringToObject(m, "content", a->content ? a->content : "");
    if (a->reasoning_len) ok = ok && cJSON_AddStringToObject(m, "reasoning_content", a->reasoning);
    if (a->n_calls) {
        cJSON *calls = cJSON_AddArrayToObject(m, "tool_calls");
        ok = ok && calls;
        for (size_t k = 0; ok && k < a->n_calls; k++) {
            cJSON *c = cJSON_CreateObject(), *fn = NULL;
            ok = c && cJSON_AddItemToArray(calls, c);
            ok = ok && cJSON_AddStringToObject(c, "id", a->calls[k].id) && cJSON_AddStringToObject(c, "type", "function");
            ok = ok && (fn = cJSON_AddObjectToObject(c, "function")) != NULL;
            ok = ok && cJSON_AddStringToObject(fn, "name", a->calls[k].name) &&
                 cJSON_AddStringToObject(fn, "arguments", a->calls[k].arguments);
        }
    }
    if (!ok) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* prewarm_next_messages, the answer's missing content given as null or "". */
static cJSON *next_messages(const prewarm_turn *turn, bool empty_content) {
    cJSON *msgs = turn->messages ? cJSON_Duplicate(turn->messages, true) : cJSON_CreateArray();
    if (!msgs) return NULL;
    cJSON *answer = answer_message(&turn->answer, empty_content);
    if (!answer || !cJSON_AddItemToArray(msgs, answer)) {
        cJSON_Delete(answer);
        cJSON_Delete(msgs);
        return NULL;
    }
    cJSON *next = cJSON_CreateObject();
    if (!next || !cJSON_AddItemToArray(msgs, next)) {
        cJSON_Delete(next);
        cJSON_Delete(msgs);
        return NULL;
    }
    bool ok;
    if (turn->answer.n_calls) /* the client answers the first call */
        ok = cJSON_AddStringToObject(next, "role", "tool") &&
             cJSON_AddStringToObject(next, "tool_call_id", turn->answer.calls[0].id) &&
             cJSON_AddStringToObject(next, "name", turn->answer.calls[0].name);
    else
        ok = cJSON_AddStringToObject(next, "role", "user") != NULL;
    if (!ok || !cJSON_AddStringToObject(next, "content", PREWARM_PLACEHOLDER)) {
        cJSON_Delete(msgs);
        return NULL;
    }
    return msgs;
}

cJSON *prewarm_next_messages(const prewarm_turn *turn) { return next_messages(turn, false); }

int prewarm_prefix_tokens(const chat_prompt *chat, const tokenizer *tok, const prewarm_turn *turn, bool empty_content,
                          token_list *out, larder_error *err) {
    if (empty_content && !(turn->answer.n_calls && !turn->answer.content_len)) return 1;
    cJSON *msgs = next_messages(turn, empty_content);
    if (!msgs) return error_set(err, ERR_NOMEM, "out of memory");
    chat_prompt_input in = {msgs, turn->tools, turn->reasoning_effort, turn->template_kwargs};
    /* the request's path (chat_prompt_tokens), cut before the next
     * message's content; content's control-token text is plain text, as the
     * request will have it */
    chat_prompt_tokens_options o = {.mark_content = true, .cut_before_last = PREWARM_PLACEHOLDER};
    int rc = chat_prompt_tokens(chat, tok, &in, &o, out, NULL, err);
    cJSON_Delete(msgs);
    if (rc) return -1;
    if (out->n) out->n--; /* its merge may depend on the next message's text */
    return 0;
}

/* ---- the background rendering */

typedef struct prewarm_task {
    prewarm_ctx *ctx;
    cJSON *messages, *tools, *kwargs;
    char *reasoning_effort;
    toolcall_result answer;
    toolcall_call *calls;
    char *content, *reasoning;
} prewarm_task;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void task_free(prewarm_task *t) {
    if (!t) return;
    cJSON_Delete(t->messages);
    cJSON_Delete(t->tools);
    cJSON_Delete(t->kwargs);
    free(t->reasoning_effort);
    free(t->content);
    free(t->reasoning);
    for (size_t k = 0; t->calls && k < t->answer.n_calls; k++) {
        free(t->calls[k].id);
        free(t->calls[k].name);
        free(t->calls[k].arguments);
    }
    free(t->calls);
    free(t);
}

/* A deep copy of the turn; NULL when out of memory. */
static prewarm_task *task_create(prewarm_ctx *ctx, const prewarm_turn *turn) {
    prewarm_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ctx = ctx;
    bool ok = true;
    if (turn->messages) ok = ok && (t->messages = cJSON_Duplicate(turn->messages, true));
    if (turn->tools) ok = ok && (t->tools = cJSON_Duplicate(turn->tools, true));
    if (turn->template_kwargs) ok = ok && (t->kwargs = cJSON_Duplicate(turn->template_kwargs, true));
    if (turn->reasoning_effort) ok = ok && (t->reasoning_effort = strdup(turn->reasoning_effort));
    const toolcall_result *a = &turn->answer;
    ok = ok && (t->content = malloc(a->content_len + 1)) && (t->reasoning = malloc(a->reasoning_len + 1));
    if (ok) {
        if (a->content_len) memcpy(t->content, a->content, a->content_len);
        t->content[a->content_len] = 0;
        if (a->reasoning_len) memcpy(t->reasoning, a->reasoning, a->reasoning_len);
        t->reasoning[a->reasoning_len] = 0;
    }
    if (ok && a->n_calls) {
        ok = (t->calls = calloc(a->n_calls, sizeof *t->calls)) != NULL;
        for (size_t k = 0; ok && k < a->n_calls; k++) {
            t->calls[k].id = dup_or_null(a->calls[k].id);
            t->calls[k].name = dup_or_null(a->calls[k].name);
            t->calls[k].arguments = dup_or_null(a->calls[k].arguments);
            t->answer.n_calls = k + 1; /* freed up to here on failure */
            ok = t->calls[k].id && t->calls[k].name && t->calls[k].arguments;
        }
    }
    if (!ok) {
        task_free(t);
        return NULL;
    }
    t->answer = (toolcall_result){t->content, a->content_len, t->reasoning, a->reasoning_len, t->calls, a->n_calls};
    return t;
}

static void *task_main(void *arg) {
    prewarm_task *t = arg;
    prewarm_ctx *ctx = t->ctx;
    prewarm_turn turn = {t->messages, t->tools, t->reasoning_effort, t->kwargs, t->answer};
    token_list prefix[2] = {{0}, {0}};
    larder_error err = {0};
    bool submitted = false;
    /* Both shapes of a tool-calls-only answer (content null, or "") when the
     * template renders them differently: they share all but the answer, so
     * the second costs a few tokens. */
    for (int v = 0; v < 2; v++) {
        if (prewarm_prefix_tokens(ctx->chat, ctx->tok, &turn, v == 1, &prefix[v], &err) != 0 || prefix[v].n < 2) continue;
        if (v == 1 && prefix[0].n == prefix[1].n && !memcmp(prefix[0].ids, prefix[1].ids, prefix[0].n * sizeof *prefix[0].ids))
            continue;
        engine_job jb = {.prompt = prefix[v].ids, .n_prompt = (int32_t)prefix[v].n, .n_choices = 1, .top_logprobs = -1,
                         .prefill_only = true};
        sampler_params_default(&jb.sampling);
        channel *ch = channel_create();
        if (ch && engine_submit(ctx->eng, &jb, ch, &err) == 0) {
            submitted = true;
            channel_release(ch); /* nobody reads it: the engine frees it with the job */
        } else if (ch) {
            channel_release(ch);
            channel_release(ch);
        }
    }
    if (!submitted && err.code) log_debug("pre-warming skipped: %s", err.message);
    atomic_fetch_add(submitted ? &ctx->submitted : &ctx->skipped, 1);
    token_list_free(&prefix[0]);
    token_list_free(&prefix[1]);
    task_free(t);
    atomic_fetch_sub(&ctx->threads, 1);
    return NULL;
}

int prewarm_chat_turn(prewarm_ctx *ctx, const prewarm_turn *turn, larder_error *err) {
    if (!ctx || !atomic_load(&ctx->enabled) || !ctx->chat) return 1;
    if (atomic_fetch_add(&ctx->threads, 1) >= PREWARM_MAX_THREADS) {
        atomic_fetch_sub(&ctx->threads, 1);
        atomic_fetch_add(&ctx->skipped, 1);
        return 1;
    }
    prewarm_task *t = task_create(ctx, turn);
    pthread_t th;
    pthread_attr_t attr;
    bool started = false;
    if (t && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&th, &attr, task_main, t) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        task_free(t);
        atomic_fetch_sub(&ctx->threads, 1);
        atomic_fetch_add(&ctx->skipped, 1);
        return error_set(err, ERR_NOMEM, "cannot start a pre-warming thread");
    }
    return 0;
}

void prewarm_drain(prewarm_ctx *ctx, int timeout_ms) {
    for (int waited = 0; ctx && atomic_load(&ctx->threads) > 0 && waited < timeout_ms; waited += 5) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void prewarm_render_metrics(const prewarm_ctx *ctx, const engine_stats *st, strbuf *out) {
    strbuf_printf(out,
                  "# HELP larder_prewarm_submitted_total Finished chat turns whose next turn was submitted for pre-warming.\n"
                  "# TYPE larder_prewarm_submitted_total counter\nlarder_prewarm_submitted_total %llu\n"
                  "# HELP larder_prewarm_skipped_total Finished chat turns not pre-warmed (busy, or the template failed).\n"
                  "# TYPE larder_prewarm_skipped_total counter\nlarder_prewarm_skipped_total %llu\n"
                  "# HELP larder_prewarm_jobs_total Pre-warming jobs the engine ran to their end.\n"
                  "# TYPE larder_prewarm_jobs_total counter\nlarder_prewarm_jobs_total %lld\n"
                  "# HELP larder_prewarm_stopped_total Times pre-warming was stopped for a real request.\n"
                  "# TYPE larder_prewarm_stopped_total counter\nlarder_prewarm_stopped_total %lld\n"
                  "# HELP larder_prewarm_tokens_total Tokens whose K/V pre-warming computed.\n"
                  "# TYPE larder_prewarm_tokens_total counter\nlarder_prewarm_tokens_total %lld\n"
                  "# HELP larder_prewarm_hit_tokens_total Cached prompt tokens served from pages pre-warming computed.\n"
                  "# TYPE larder_prewarm_hit_tokens_total counter\nlarder_prewarm_hit_tokens_total %lld\n",
                  (unsigned long long)(ctx ? atomic_load(&ctx->submitted) : 0),
                  (unsigned long long)(ctx ? atomic_load(&ctx->skipped) : 0), (long long)st->prewarm_jobs,
                  (long long)st->prewarm_stopped, (long long)st->prewarm_tokens, (long long)st->prewarm_hit_tokens);
}
