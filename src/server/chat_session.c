/*
 * chat_session.c — one chat generation for the Messages and Responses
 * routes (see chat_session.h): prompt rendering and tokenizing, the engine
 * job, and the read side (detokenizer → stop strings → tool-call /
 * reasoning parser), whose events are copied into the session so that one
 * step's pieces (a feed and, at the end, a finish of the parser) are listed
 * together.
 */
#include "server/chat_session.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/timing.h"
#include "server/prewarm.h"
#include "server/stop_matcher.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

typedef struct session_event {
    toolcall_event_kind kind;
    size_t index, off, len;
    const char *id, *name; /* CALL_START: owned by the parser's result */
} session_event;

struct chat_session {
    server_app *app;
    openai_request req;
    channel *ch;
    detok dt;
    stop_matcher sm;
    toolcall_parser *tp;
    strbuf fresh;              /* released text not yet parsed */
    session_event *events;
    size_t n_events, cap_events;
    strbuf evtext;
    bool opens_reasoning;
    char *forced_prefix;       /* a forced call's opener (the answer's start), or NULL */
    bool prefix_events;        /* the listed events are the opener's: the first step keeps them */
    bool stopped, done;
    channel_finish finish;
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    int64_t created_s, start_us, first_token_us, last_token_us;
    int error_status;
    char error[256];
    char id[48];
};

static atomic_uint_least64_t session_counter;

/* ---- the prompt */

const cJSON *chat_request_prompt_tools(const openai_request *req) {
    return req->tool_mode == OPENAI_TOOLS_NONE ? NULL : req->tools;
}

int chat_request_prompt_tokens(server_app *app, const openai_request *req, size_t max_tokens,
                               int (*after_render)(void *ctx, larder_error *err), void *ctx, token_list *out,
                               chat_prompt_tokens_result *res, larder_error *err) {
    if (!app->chat) return error_set(err, ERR_INVALID, "this model has no chat template; use /v1/completions");
    chat_prompt_input in = {req->messages, chat_request_prompt_tools(req), req->reasoning_effort,
                            req->chat_template_kwargs};
    chat_prompt_tokens_options o = {
        .mark_content = !app->parse_special_in_content, /* content's control-token text is plain text */
        .max_tokens = max_tokens,
        .fmt = &app->tool_format,
        .force_call = req->tool_mode == OPENAI_TOOLS_REQUIRED || req->tool_mode == OPENAI_TOOLS_NAMED,
        .force_name = req->forced_tool,
        .after_render = after_render,
        .ctx = ctx,
    };
    return chat_prompt_tokens(app->chat, app->tok, &in, &o, out, res, err);
}

/* generating (res non-NULL): stop once past the context; counting: no bound */
static int render_prompt(server_app *app, const openai_request *req, token_list *out, chat_prompt_tokens_result *res,
                         larder_error *err) {
    int rc = chat_request_prompt_tokens(app, req, res ? (size_t)app->ctx_tokens : 0, NULL, NULL, out, res, err);
    if (rc && err->code == ERR_LIMIT) err->code = ERR_INVALID; /* the request's own text is too long */
    return rc;
}

int chat_session_count_tokens(server_app *app, const openai_request *req, int32_t *n_tokens, larder_error *err) {
    token_list prompt = {0};
    int rc = render_prompt(app, req, &prompt, NULL, err);
    *n_tokens = rc ? 0 : (int32_t)prompt.n; /* (a forced call's opener counts: the request's prompt holds it) */
    token_list_free(&prompt);
    return rc;
}

int chat_request_parser_tools(const openai_request *req, char **tools_json) {
    *tools_json = NULL;
    if (!req->tools || cJSON_GetArraySize(req->tools) == 0 || req->tool_mode == OPENAI_TOOLS_NONE) return 0;
    if (!req->forced_tool) return (*tools_json = cJSON_PrintUnformatted(req->tools)) ? 0 : -1;
    cJSON *one = cJSON_CreateArray();
    if (!one) return -1;
    const cJSON *t;
    cJSON_ArrayForEach(t, req->tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(cJSON_IsObject(fn) ? fn : t, "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, req->forced_tool)) {
            cJSON *dup = cJSON_Duplicate(t, true);
            if (!dup || !cJSON_AddItemToArray(one, dup)) {
                cJSON_Delete(dup);
                cJSON_Delete(one);
                return -1;
            }
        }
    }
    *tools_json = cJSON_PrintUnformatted(one);
    cJSON_Delete(one);
    return *tools_json ? 0 : -1;
}

static void collect_events(chat_session *s);

void chat_request_sampling(const openai_request *r, sampler_params *p) {
    sampler_params_default(p);
    p->temperature = (float)r->temperature;
    p->top_p = (float)r->top_p;
    p->top_k = r->top_k;
    p->min_p = (float)r->min_p;
    p->repeat_penalty = (float)r->repetition_penalty;
    p->presence_penalty = (float)r->presence_penalty;
    p->frequency_penalty = (float)r->frequency_penalty;
    p->penalty_last_n = r->repeat_last_n;
}

static engine_job session_job(const chat_session *s, const token_list *prompt) {
    const openai_request *r = &s->req;
    engine_job jb = {0};
    jb.prompt = prompt->ids;
    jb.n_prompt = (int32_t)prompt->n;
    jb.n_choices = 1;
    jb.max_tokens = r->max_tokens < 0 ? -1 : (int32_t)(r->max_tokens > INT32_MAX ? INT32_MAX : r->max_tokens);
    if (jb.max_tokens == 0) jb.max_tokens = 1;
    chat_request_sampling(r, &jb.sampling);
    jb.seed = r->has_seed ? r->seed
                          : (uint64_t)timing_now_us() * 0x9E3779B97F4A7C15ULL ^ atomic_fetch_add(&session_counter, 1);
    jb.top_logprobs = -1;
    return jb;
}

chat_session *chat_session_start(server_app *app, openai_request *req, const chat_session_options *o,
                                 larder_error *err) {
    chat_session *s = calloc(1, sizeof *s);
    if (!s) {
        openai_request_free(req);
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->app = app;
    s->req = *req;
    memset(req, 0, sizeof *req);
    s->start_us = timing_now_us();
    s->created_s = timing_unix_s();
    snprintf(s->id, sizeof s->id, "%s%llx%06llx", o && o->id_prefix ? o->id_prefix : "chat_",
             (unsigned long long)s->created_s, (unsigned long long)(atomic_fetch_add(&session_counter, 1) & 0xffffff));
    detok_init(&s->dt, app->tok, true, false);
    stop_matcher_init(&s->sm, s->req.stop, s->req.n_stop);

    token_list prompt = {0};
    chat_prompt_tokens_result pr = {0};
    if (render_prompt(app, &s->req, &prompt, &pr, err)) goto fail;
    s->opens_reasoning = pr.opens_reasoning;
    s->forced_prefix = pr.forced_prefix;
    if (prompt.n == 0) {
        error_set(err, ERR_INVALID, "the prompt is empty");
        goto fail;
    }
    if ((int64_t)prompt.n >= app->ctx_tokens) {
        error_set(err, ERR_INVALID, "the prompt has %zu tokens but the context holds %d tokens (--ctx-size); shorten the prompt",
                  prompt.n, app->ctx_tokens);
        goto fail;
    }
    s->prompt_tokens = (int32_t)prompt.n;
    char *tools_json = NULL;
    if (chat_request_parser_tools(&s->req, &tools_json)) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    toolcall_parser_options po = {&app->tool_format, tools_json, s->opens_reasoning, 0};
    s->tp = toolcall_parser_create(&po, err);
    cJSON_free(tools_json);
    if (!s->tp) goto fail;
    /* a forced call: the parser reads the answer from its opener on; its
     * events go out with the first step's */
    if (s->forced_prefix && toolcall_parser_feed(s->tp, s->forced_prefix, strlen(s->forced_prefix), err)) goto fail;
    collect_events(s);
    s->prefix_events = s->n_events > 0;
    engine_job jb = session_job(s, &prompt);
    s->ch = channel_create();
    if (!s->ch) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (engine_submit(app->eng, &jb, s->ch, err)) {
        channel_release(s->ch); /* both references: the engine took none */
        channel_release(s->ch);
        s->ch = NULL;
        goto fail;
    }
    token_list_free(&prompt);
    return s;
fail:
    token_list_free(&prompt);
    s->prompt_tokens = 0;
    chat_session_free(s, false);
    return NULL;
}

/* ---- reading */

static void events_push(chat_session *s, const toolcall_event *ev) {
    if (s->n_events > 0 && (ev->kind == TOOLCALL_EVENT_CONTENT || ev->kind == TOOLCALL_EVENT_REASONING ||
                            ev->kind == TOOLCALL_EVENT_CALL_ARGS)) {
        session_event *last = &s->events[s->n_events - 1];
        if (last->kind == ev->kind && last->index == ev->index && last->off + last->len == s->evtext.len) {
            if (strbuf_append(&s->evtext, ev->text, ev->len) == 0) last->len += ev->len;
            return;
        }
    }
    if (s->n_events == s->cap_events) {
        size_t cap = s->cap_events ? 2 * s->cap_events : 16;
        session_event *q = realloc(s->events, cap * sizeof *q);
        if (!q) return;
        s->events = q;
        s->cap_events = cap;
    }
    size_t off = s->evtext.len;
    if (ev->len) strbuf_append(&s->evtext, ev->text, ev->len);
    s->events[s->n_events++] = (session_event){ev->kind, ev->index, off, ev->len, ev->id, ev->name};
}

static void collect_events(chat_session *s) {
    size_t n = toolcall_parser_event_count(s->tp);
    for (size_t i = 0; i < n; i++) {
        toolcall_event ev = toolcall_parser_event(s->tp, i);
        events_push(s, &ev);
    }
}

/* Feeds the released text to the parser (and ends it when finish),
 * collecting the events of each call: they are valid only until the next. */
static void parse_fresh(chat_session *s, bool finish) {
    if (s->fresh.len) {
        toolcall_parser_feed(s->tp, s->fresh.data, s->fresh.len, NULL);
        collect_events(s);
    }
    strbuf_reset(&s->fresh);
    if (finish) {
        toolcall_parser_finish(s->tp, NULL);
        collect_events(s);
    }
}

int chat_session_step(chat_session *s, int timeout_ms) {
    if (s->prefix_events) { /* the first step lists the forced opener's events */
        s->prefix_events = false;
        return 1;
    }
    s->n_events = 0;
    strbuf_reset(&s->evtext);
    if (s->done) return 1;
    if (s->error_status) return -1;
    channel_event ev;
    if (!channel_pop(s->ch, &ev, timeout_ms)) return 0;
    if (ev.kind == CHANNEL_EVENT_ERROR) {
        s->error_status = ev.http_status ? ev.http_status : 500;
        snprintf(s->error, sizeof s->error, "%s", ev.message);
        return -1;
    }
    if (ev.choice != 0) return 1;
    if (ev.kind == CHANNEL_EVENT_DONE) {
        if (!s->stopped) {
            const char *t;
            size_t n;
            if (detok_flush(&s->dt, &t, &n, NULL) == 0 && n && stop_matcher_feed(&s->sm, t, n, &s->fresh))
                s->stopped = true;
            if (!s->stopped) stop_matcher_flush(&s->sm, &s->fresh);
        }
        parse_fresh(s, true);
        s->finish = ev.finish;
        s->done = true;
        s->prompt_tokens = ev.prompt_tokens;
        s->cached_tokens = ev.cached_tokens;
        return 1;
    }
    int64_t now = timing_now_us();
    if (!s->first_token_us) {
        s->first_token_us = now;
        metrics_observe_us(&s->app->metrics.ttft, now - s->start_us);
    } else {
        metrics_observe_us(&s->app->metrics.inter_token, now - s->last_token_us);
    }
    s->last_token_us = now;
    if (s->stopped) return 1;
    s->completion_tokens++;
    atomic_fetch_add(&s->app->metrics.generated_tokens, 1);
    const char *t;
    size_t n;
    if (detok_push(&s->dt, ev.token, &t, &n, NULL) == 0 && n) {
        if (stop_matcher_feed(&s->sm, t, n, &s->fresh)) {
            s->stopped = true;
            channel_cancel(s->ch, 0, FINISH_STOP);
        }
        parse_fresh(s, false);
    }
    return 1;
}

size_t chat_session_event_count(const chat_session *s) { return s->n_events; }

toolcall_event chat_session_event(const chat_session *s, size_t i) {
    toolcall_event e = {0};
    if (i >= s->n_events) return e;
    const session_event *r = &s->events[i];
    e.kind = r->kind;
    e.index = r->index;
    e.text = s->evtext.data ? s->evtext.data + r->off : "";
    e.len = r->len;
    e.id = r->id;
    e.name = r->name;
    return e;
}

bool chat_session_done(const chat_session *s) { return s->done; }

chat_finish chat_session_finish(const chat_session *s) {
    if (!s->done) return CHAT_FINISH_NONE;
    if (s->finish != FINISH_LENGTH && toolcall_parser_result(s->tp).n_calls) return CHAT_FINISH_TOOL_CALLS;
    if (s->stopped) return CHAT_FINISH_STOP_STRING;
    return s->finish == FINISH_LENGTH ? CHAT_FINISH_LENGTH : CHAT_FINISH_END;
}

const char *chat_session_stop_string(const chat_session *s) {
    return chat_session_finish(s) == CHAT_FINISH_STOP_STRING && s->sm.matched_index < s->req.n_stop
               ? s->req.stop[s->sm.matched_index]
               : NULL;
}

toolcall_result chat_session_result(const chat_session *s) { return toolcall_parser_result(s->tp); }

int chat_session_error(const chat_session *s, const char **message) {
    if (message) *message = s->error;
    return s->error_status;
}

chat_usage chat_session_usage(const chat_session *s) {
    return (chat_usage){s->prompt_tokens, s->cached_tokens, s->completion_tokens};
}

const char *chat_session_id(const chat_session *s) { return s->id; }
const openai_request *chat_session_request(const chat_session *s) { return &s->req; }
int64_t chat_session_created_s(const chat_session *s) { return s->created_s; }

void chat_session_free(chat_session *s, bool aborted) {
    if (!s) return;
    /* A whole answer: pre-warm the conversation's next turn (prewarm.h), as
     * chat completions do; the client sends the history back in its own
     * protocol, which converts to the same messages. */
    if (!aborted && s->done && !s->error_status && s->tp && s->finish != FINISH_CANCELLED) {
        prewarm_turn turn = {s->req.messages, chat_request_prompt_tools(&s->req), s->req.reasoning_effort,
                             s->req.chat_template_kwargs,
                             toolcall_parser_result(s->tp)};
        larder_error err = {0};
        if (prewarm_chat_turn(&s->app->prewarm, &turn, &err) < 0) log_warn("%s pre-warming: %s", s->id, err.message);
    }
    if (s->prompt_tokens && s->ch) {
        double ttft_ms = s->first_token_us ? (double)(s->first_token_us - s->start_us) / 1000 : 0;
        double dec_s = s->first_token_us && s->last_token_us > s->first_token_us
                           ? (double)(s->last_token_us - s->first_token_us) / 1e6 : 0;
        int32_t gen = s->completion_tokens;
        log_info("%s prompt=%d cached=%d generated=%d ttft=%.1fms decode=%.1f tok/s", s->id, s->prompt_tokens,
                 s->cached_tokens, gen, ttft_ms, dec_s > 0 && gen > 1 ? (gen - 1) / dec_s : 0.0);
        if (aborted) log_info("%s client went away; generation cancelled", s->id);
        atomic_fetch_add(&s->app->metrics.prompt_tokens, (uint64_t)s->prompt_tokens);
        atomic_fetch_add(&s->app->metrics.cached_prompt_tokens, (uint64_t)s->cached_tokens);
    }
    if (s->ch) {
        channel_cancel(s->ch, -1, FINISH_CANCELLED);
        channel_release(s->ch);
    }
    detok_free(&s->dt);
    stop_matcher_free(&s->sm);
    toolcall_parser_free(s->tp);
    strbuf_free(&s->fresh);
    strbuf_free(&s->evtext);
    free(s->events);
    free(s->forced_prefix);
    openai_request_free(&s->req);
    free(s);
}
