/*
 * routes.c — the OpenAI API handlers (see routes.h).
 *
 * A generation request goes: parse (openai_request) → prompt tokens (chat
 * template or completion prompt) → engine_submit → read the channel. The
 * reading is the same for streamed and whole responses: `gen_state` keeps,
 * per choice, a streaming detokenizer and a stop-string matcher, and turns
 * each engine event into released text (plus logprobs). A whole response
 * accumulates that text; a stream writes it as SSE chunks as it comes.
 */
#include "server/routes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/timing.h"
#include "chat/toolcall_parser.h"
#include "server/anthropic_messages.h"
#include "server/chat_session.h"
#include "server/disk_stats.h"
#include "server/openai_request.h"
#include "server/openai_responses.h"
#include "server/stop_matcher.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

/* How long a stream waits for the next event before sending a keep-alive
 * comment (also how soon a vanished client is noticed while nothing flows). */
#define STREAM_KEEPALIVE_MS 1000
/* How long a whole (non-streamed) response waits between events before it
 * gives up on the engine: a bound against a wedged engine, not a timeout on
 * long generations (each event resets it). */
#define GENERATION_EVENT_TIMEOUT_MS 600000
/* How often a non-streamed request checks that its client is still there. */
#define CLIENT_CHECK_MS 100

typedef struct choice_state {
    detok dt;
    stop_matcher sm;
    strbuf text;              /* whole response: all released text */
    strbuf fresh;             /* released since the last chunk (completions: text; chat: parser input) */
    toolcall_parser *tp;      /* chat: model text -> content, reasoning, tool calls */
    strbuf delta_content;     /* chat stream: parsed deltas not yet sent */
    strbuf delta_reasoning;
    strbuf delta_calls;       /* chat stream: comma-separated tool_calls delta objects */
    strbuf logprobs;          /* JSON entries (comma-separated) not yet sent / all */
    int32_t n_tokens;         /* generated tokens */
    bool stopped;             /* a stop string matched */
    bool done;
    channel_finish finish;
} choice_state;

typedef struct gen_state {
    server_app *app;
    openai_request req;
    channel *ch;
    choice_state *choices;    /* (req.n) */
    int32_t n_done;
    int32_t prompt_tokens, cached_tokens;
    char id[48];
    int64_t created_s;
    int64_t start_us, first_token_us, last_token_us;
    bool role_sent;           /* chat stream: the first chunk carries the role */
    bool opens_reasoning;     /* chat: the rendered prompt opened the reasoning block */
    char *forced_prefix;      /* chat: a forced tool call's opener, the answer's start (or NULL) */
    bool finished;            /* stream: [DONE] written */
    const http_request *hreq; /* while the prompt is built: the client to check between stages */
    bool client_gone;         /* it went away before the engine got the job */
    int error_status;
    char error[256];
} gen_state;

static atomic_uint_least64_t request_counter;

/* ---- small JSON helpers */

static void json_str(strbuf *b, const char *s) { strbuf_json_string(b, s, strlen(s)); }

static const char *finish_name(const choice_state *c) {
    if (c->tp && c->finish != FINISH_LENGTH && toolcall_parser_result(c->tp).n_calls) return "tool_calls";
    if (c->stopped) return "stop";
    return c->finish == FINISH_LENGTH ? "length" : "stop";
}

static void write_usage(strbuf *b, const gen_state *g) {
    int32_t completion = 0;
    for (int32_t i = 0; i < g->req.n; i++) completion += g->choices[i].n_tokens;
    strbuf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                  g->prompt_tokens, completion, g->prompt_tokens + completion, g->cached_tokens);
}

/* One token's logprob entry (chat format: token, logprob, bytes, top_logprobs). */
static void write_logprob_entry(strbuf *b, const server_app *app, const channel_event *ev, bool chat) {
    size_t len;
    const char *piece = tokenizer_piece(app->tok, ev->token, true, &len);
    if (chat) {
        strbuf_puts(b, "{\"token\":");
        strbuf_json_string(b, piece, len);
        strbuf_printf(b, ",\"logprob\":%.7g,\"bytes\":[", ev->logprob);
        for (size_t k = 0; k < len; k++) strbuf_printf(b, "%s%u", k ? "," : "", (unsigned char)piece[k]);
        strbuf_puts(b, "],\"top_logprobs\":[");
        for (int32_t t = 0; t < ev->n_top; t++) {
            size_t tl;
            const char *tp = tokenizer_piece(app->tok, ev->top_tokens[t], true, &tl);
            strbuf_puts(b, t ? ",{\"token\":" : "{\"token\":");
            strbuf_json_string(b, tp, tl);
            strbuf_printf(b, ",\"logprob\":%.7g,\"bytes\":[", ev->top_logprobs[t]);
            for (size_t k = 0; k < tl; k++) strbuf_printf(b, "%s%u", k ? "," : "", (unsigned char)tp[k]);
            strbuf_puts(b, "]}");
        }
        strbuf_puts(b, "]}");
    } else {
        /* completions: parallel arrays are assembled at the end; here one
         * object per token {token, logprob, top:{tok:lp}} (joined later). */
        strbuf_puts(b, "{\"token\":");
        strbuf_json_string(b, piece, len);
        strbuf_printf(b, ",\"logprob\":%.7g,\"top\":{", ev->logprob);
        for (int32_t t = 0; t < ev->n_top; t++) {
            size_t tl;
            const char *tp = tokenizer_piece(app->tok, ev->top_tokens[t], true, &tl);
            if (t) strbuf_puts(b, ",");
            strbuf_json_string(b, tp, tl);
            strbuf_printf(b, ":%.7g", ev->top_logprobs[t]);
        }
        strbuf_puts(b, "}}");
    }
}

/* ---- reading the engine */

static void gen_free(gen_state *g) {
    if (!g) return;
    if (g->choices) {
        for (int32_t i = 0; i < g->req.n; i++) {
            choice_state *c = &g->choices[i];
            detok_free(&c->dt);
            stop_matcher_free(&c->sm);
            strbuf_free(&c->text);
            strbuf_free(&c->fresh);
            toolcall_parser_free(c->tp);
            strbuf_free(&c->delta_content);
            strbuf_free(&c->delta_reasoning);
            strbuf_free(&c->delta_calls);
            strbuf_free(&c->logprobs);
        }
        free(g->choices);
    }
    if (g->ch) {
        channel_cancel(g->ch, -1, FINISH_CANCELLED);
        channel_release(g->ch);
    }
    free(g->forced_prefix);
    openai_request_free(&g->req);
    free(g);
}

/* Chat: feeds the text released since the last call to the tool-call /
 * reasoning parser and turns its events into stream deltas. */
static void chat_parse_events(choice_state *c);

static void chat_parse(choice_state *c, bool finish) {
    if (!c->tp) return;
    /* each feed/finish replaces the parser's events: take them after each */
    if (c->fresh.len) {
        toolcall_parser_feed(c->tp, c->fresh.data, c->fresh.len, NULL);
        chat_parse_events(c);
    }
    strbuf_reset(&c->fresh);
    if (finish) {
        toolcall_parser_finish(c->tp, NULL);
        chat_parse_events(c);
    }
}

static void chat_parse_events(choice_state *c) {
    size_t n = toolcall_parser_event_count(c->tp);
    for (size_t i = 0; i < n; i++) {
        toolcall_event ev = toolcall_parser_event(c->tp, i);
        switch (ev.kind) {
        case TOOLCALL_EVENT_CONTENT: strbuf_append(&c->delta_content, ev.text, ev.len); break;
        case TOOLCALL_EVENT_REASONING: strbuf_append(&c->delta_reasoning, ev.text, ev.len); break;
        case TOOLCALL_EVENT_CALL_START:
            if (c->delta_calls.len) strbuf_puts(&c->delta_calls, ",");
            strbuf_printf(&c->delta_calls, "{\"index\":%zu,\"id\":", ev.index);
            strbuf_json_string(&c->delta_calls, ev.id, strlen(ev.id));
            strbuf_puts(&c->delta_calls, ",\"type\":\"function\",\"function\":{\"name\":");
            strbuf_json_string(&c->delta_calls, ev.name, strlen(ev.name));
            strbuf_puts(&c->delta_calls, ",\"arguments\":\"\"}}");
            break;
        case TOOLCALL_EVENT_CALL_ARGS:
            if (c->delta_calls.len) strbuf_puts(&c->delta_calls, ",");
            strbuf_printf(&c->delta_calls, "{\"index\":%zu,\"function\":{\"arguments\":", ev.index);
            strbuf_json_string(&c->delta_calls, ev.text, ev.len);
            strbuf_puts(&c->delta_calls, "}}");
            break;
        }
    }
}

/* Applies one engine event to the choice states. Returns false on an error event. */
static bool gen_apply(gen_state *g, const channel_event *ev) {
    server_app *app = g->app;
    if (ev->kind == CHANNEL_EVENT_ERROR) {
        g->error_status = ev->http_status;
        snprintf(g->error, sizeof g->error, "%s", ev->message);
        return false;
    }
    if (ev->choice < 0 || ev->choice >= g->req.n) return true;
    choice_state *c = &g->choices[ev->choice];
    if (c->done) return true;
    if (ev->kind == CHANNEL_EVENT_DONE) {
        if (!c->stopped) {
            const char *t;
            size_t n;
            if (detok_flush(&c->dt, &t, &n, NULL) == 0 && n) {
                if (stop_matcher_feed(&c->sm, t, n, &c->fresh)) c->stopped = true;
            }
            if (!c->stopped) stop_matcher_flush(&c->sm, &c->fresh);
        }
        chat_parse(c, true);
        c->finish = ev->finish;
        c->done = true;
        g->n_done++;
        g->prompt_tokens = ev->prompt_tokens;
        if (ev->choice == 0 || ev->cached_tokens > g->cached_tokens) g->cached_tokens = ev->cached_tokens;
        strbuf_append(&c->text, c->fresh.data ? c->fresh.data : "", c->fresh.len);
        return true;
    }
    /* A token. */
    int64_t now = timing_now_us();
    if (!g->first_token_us) {
        g->first_token_us = now;
        metrics_observe_us(&app->metrics.ttft, now - g->start_us);
    } else {
        metrics_observe_us(&app->metrics.inter_token, now - g->last_token_us);
    }
    g->last_token_us = now;
    if (c->stopped) return true;
    c->n_tokens++;
    atomic_fetch_add(&app->metrics.generated_tokens, 1);
    if (g->req.logprobs) {
        if (c->logprobs.len) strbuf_puts(&c->logprobs, ",");
        write_logprob_entry(&c->logprobs, app, ev, g->req.kind == OPENAI_CHAT);
    }
    const char *t;
    size_t n;
    if (detok_push(&c->dt, ev->token, &t, &n, NULL) == 0 && n) {
        if (stop_matcher_feed(&c->sm, t, n, &c->fresh)) {
            c->stopped = true;
            channel_cancel(g->ch, ev->choice, FINISH_STOP);
        }
        chat_parse(c, false);
    }
    return true;
}

/* ---- building the prompt and the job */

/* Between stages: when the client has gone, nobody reads the answer. */
static int gen_check_client(gen_state *g, larder_error *err) {
    if (!g->hreq || !http_client_gone(g->hreq)) return 0;
    g->client_gone = true;
    return error_set(err, ERR_IO, "the client went away");
}

static int gen_after_render(void *ctx, larder_error *err) { return gen_check_client(ctx, err); }

static int build_prompt(gen_state *g, server_app *app, const openai_request *req, token_list *out, larder_error *err) {
    if (req->kind == OPENAI_COMPLETION) {
        if (req->prompt_ids) {
            for (int32_t i = 0; i < req->n_prompt_ids; i++) {
                if (tokenizer_check_id(app->tok, req->prompt_ids[i], err)) return -1;
                if (token_list_push(out, req->prompt_ids[i], err)) return -1;
            }
            return 0;
        }
        tokenize_options topt = {.flags = TOKENIZE_ADD_SPECIAL | TOKENIZE_PARSE_SPECIAL,
                                 .max_tokens = (size_t)app->ctx_tokens}; /* stop once past the context */
        return tokenizer_encode_opts(app->tok, req->prompt, strlen(req->prompt), &topt, out, err);
    }
    /* the client is checked once rendered, before tokenizing; stop once past the context */
    chat_prompt_tokens_result res = {0};
    if (chat_request_prompt_tokens(app, req, (size_t)app->ctx_tokens, gen_after_render, g, out, &res, err)) return -1;
    g->opens_reasoning = res.opens_reasoning;
    g->forced_prefix = res.forced_prefix;
    return 0;
}

static uint64_t fresh_seed(void) {
    return (uint64_t)timing_now_us() * 0x9E3779B97F4A7C15ULL ^ atomic_fetch_add(&request_counter, 1);
}

/* A new generation state with its id and clock started; NULL when out of memory. */
static gen_state *gen_create(server_app *app, openai_kind kind) {
    gen_state *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->app = app;
    g->start_us = timing_now_us();
    g->created_s = timing_unix_s();
    snprintf(g->id, sizeof g->id, "%s-%llx%06llx", kind == OPENAI_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)g->created_s, (unsigned long long)(atomic_fetch_add(&request_counter, 1) & 0xffffff));
    return g;
}

/* The prompt's tokens, checked against the context. A limit the prompt's
 * own text hits (too long to tokenize) is the request's fault: ERR_INVALID. */
static int gen_prompt(gen_state *g, token_list *prompt, larder_error *err) {
    server_app *app = g->app;
    if (gen_check_client(g, err)) return -1;
    if (build_prompt(g, app, &g->req, prompt, err)) {
        if (err->code == ERR_LIMIT) {
            err->code = ERR_INVALID;
            error_prefix(err, "the prompt does not fit the context of %d tokens (--ctx-size)", app->ctx_tokens);
        }
        return -1;
    }
    if (prompt->n == 0) return error_set(err, ERR_INVALID, "the prompt is empty");
    if ((int64_t)prompt->n >= app->ctx_tokens)
        return error_set(err, ERR_INVALID,
                         "the prompt has %zu tokens but the context holds %d tokens (--ctx-size); shorten the prompt",
                         prompt->n, app->ctx_tokens);
    g->prompt_tokens = (int32_t)prompt->n;
    return gen_check_client(g, err);
}

/* One choice_state per choice: detokenizer, stop matcher and (chat) the
 * tool-call / reasoning parser. Tools are parsed only when the request
 * offers them (and tool_choice is not "none"); a forced call's opener is
 * the parser's first input. */
static int gen_init_choices(gen_state *g, larder_error *err) {
    server_app *app = g->app;
    bool chat = g->req.kind == OPENAI_CHAT;
    g->choices = calloc((size_t)g->req.n, sizeof *g->choices);
    if (!g->choices) return error_set(err, ERR_NOMEM, "out of memory");
    char *tools_json = NULL;
    if (chat && chat_request_parser_tools(&g->req, &tools_json)) return error_set(err, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (int32_t i = 0; i < g->req.n && rc == 0; i++) {
        /* Chat renders control tokens: tool-call and reasoning markers may be ones. */
        detok_init(&g->choices[i].dt, app->tok, chat, false);
        stop_matcher_init(&g->choices[i].sm, g->req.stop, g->req.n_stop);
        if (!chat) continue;
        toolcall_parser_options po = {&app->tool_format, tools_json, g->opens_reasoning, 0};
        g->choices[i].tp = toolcall_parser_create(&po, err);
        if (!g->choices[i].tp) rc = -1;
        /* a forced call: the parser reads the answer from its opener on */
        else if (g->forced_prefix && toolcall_parser_feed(g->choices[i].tp, g->forced_prefix, strlen(g->forced_prefix), err))
            rc = -1;
        else if (g->forced_prefix) chat_parse_events(&g->choices[i]);
    }
    cJSON_free(tools_json);
    return rc;
}

/* The sampler's bias array from the request's logit_bias (ids checked
 * against the vocabulary): *out is NULL when the request has none. */
static int gen_bias(const gen_state *g, sample_bias **out, larder_error *err) {
    *out = NULL;
    if (!g->req.n_logit_bias) return 0;
    sample_bias *bias = calloc((size_t)g->req.n_logit_bias, sizeof *bias);
    if (!bias) return error_set(err, ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < g->req.n_logit_bias; i++) {
        if (g->req.logit_bias[i].token >= g->app->n_vocab) {
            free(bias);
            return error_set(err, ERR_INVALID, "'logit_bias' token %d is out of range (vocabulary of %d)",
                             g->req.logit_bias[i].token, g->app->n_vocab);
        }
        bias[i].id = g->req.logit_bias[i].token;
        bias[i].bias = g->req.logit_bias[i].bias;
    }
    *out = bias;
    return 0;
}

/* The engine job for the request (pointers into prompt and bias). */
static engine_job gen_job(const gen_state *g, const token_list *prompt, const sample_bias *bias) {
    const openai_request *r = &g->req;
    engine_job jb = {0};
    jb.prompt = prompt->ids;
    jb.n_prompt = (int32_t)prompt->n;
    jb.n_choices = r->n;
    jb.max_tokens = r->max_tokens < 0 ? -1 : (int32_t)(r->max_tokens > INT32_MAX ? INT32_MAX : r->max_tokens);
    chat_request_sampling(r, &jb.sampling);
    jb.sampling.bias = bias;
    jb.sampling.n_bias = (size_t)r->n_logit_bias;
    jb.seed = r->has_seed ? r->seed : fresh_seed();
    jb.top_logprobs = r->logprobs ? r->top_logprobs : -1;
    if (jb.max_tokens == 0) jb.max_tokens = 1; /* OpenAI rejects 0; llama servers generate at least one */
    return jb;
}

/* Parses, tokenizes and submits. Returns the state, or NULL with the error
 * already in reply (its status from http_status_of). */
static gen_state *gen_start(server_app *app, const http_request *hreq, openai_kind kind, http_reply *reply) {
    larder_error err = {0};
    token_list prompt = {0};
    sample_bias *bias = NULL;
    gen_state *g = gen_create(app, kind);
    if (!g) {
        error_set(&err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    g->hreq = hreq;
    if (openai_request_parse(hreq->body, hreq->body_bytes, kind, &g->req, &err)) goto fail;
    if (g->req.n > CHANNEL_MAX_CHOICES || (app->max_n > 0 && g->req.n > app->max_n)) {
        error_set(&err, ERR_INVALID, "'n' is %d; this server allows at most %d (--max-n)", g->req.n,
                  app->max_n > 0 && app->max_n < CHANNEL_MAX_CHOICES ? app->max_n : CHANNEL_MAX_CHOICES);
        goto fail;
    }
    if (gen_prompt(g, &prompt, &err) || gen_init_choices(g, &err) || gen_bias(g, &bias, &err)) goto fail;
    engine_job jb = gen_job(g, &prompt, bias);
    g->ch = channel_create();
    if (!g->ch) {
        error_set(&err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (engine_submit(app->eng, &jb, g->ch, &err)) {
        channel_release(g->ch); /* both references: the engine took none */
        channel_release(g->ch);
        g->ch = NULL;
        goto fail;
    }
    free(bias); /* the engine copied the job */
    token_list_free(&prompt);
    g->hreq = NULL;
    return g;
fail:
    http_reply_error_of(reply, &err);
    if (g && g->client_gone) {
        reply->status = 499; /* nobody reads it; logged as client closed */
        log_info("%s client went away before its prompt was ready", g->id);
    }
    free(bias);
    token_list_free(&prompt);
    gen_free(g);
    return NULL;
}

static void gen_log(const gen_state *g) {
    int32_t gen = 0;
    for (int32_t i = 0; i < g->req.n; i++) gen += g->choices[i].n_tokens;
    double ttft_ms = g->first_token_us ? (double)(g->first_token_us - g->start_us) / 1000 : 0;
    double dec_s = g->first_token_us && g->last_token_us > g->first_token_us ? (double)(g->last_token_us - g->first_token_us) / 1e6 : 0;
    log_info("%s prompt=%d cached=%d generated=%d ttft=%.1fms decode=%.1f tok/s", g->id, g->prompt_tokens,
             g->cached_tokens, gen, ttft_ms, dec_s > 0 && gen > 1 ? (gen - 1) / dec_s : 0.0);
    atomic_fetch_add(&g->app->metrics.prompt_tokens, (uint64_t)g->prompt_tokens);
    atomic_fetch_add(&g->app->metrics.cached_prompt_tokens, (uint64_t)g->cached_tokens);
}

/* After a chat answer of one choice: pre-warm the conversation's next turn
 * (prewarm.h) in the background. */
static void gen_prewarm(gen_state *g) {
    if (g->req.kind != OPENAI_CHAT || g->req.n != 1 || g->error_status || !g->choices[0].tp ||
        g->choices[0].finish == FINISH_CANCELLED)
        return;
    prewarm_turn turn = {g->req.messages, chat_request_prompt_tools(&g->req), g->req.reasoning_effort,
                         g->req.chat_template_kwargs,
                         toolcall_parser_result(g->choices[0].tp)};
    larder_error err = {0};
    if (prewarm_chat_turn(&g->app->prewarm, &turn, &err) < 0) log_warn("%s pre-warming: %s", g->id, err.message);
}

/* ---- whole responses */

static void write_completion_logprobs(strbuf *b, const choice_state *c) {
    /* From [{token,logprob,top}] entries to OpenAI's parallel arrays. */
    strbuf tmp = STRBUF_INIT;
    strbuf_puts(&tmp, "[");
    strbuf_append(&tmp, c->logprobs.data ? c->logprobs.data : "", c->logprobs.len);
    strbuf_puts(&tmp, "]");
    cJSON *entries = cJSON_Parse(tmp.data);
    strbuf_free(&tmp);
    strbuf_puts(b, "{\"tokens\":[");
    const cJSON *e;
    int k = 0;
    cJSON_ArrayForEach(e, entries) {
        const cJSON *t = cJSON_GetObjectItem(e, "token");
        strbuf_puts(b, k++ ? "," : "");
        json_str(b, cJSON_IsString(t) ? t->valuestring : "");
    }
    strbuf_puts(b, "],\"token_logprobs\":[");
    k = 0;
    cJSON_ArrayForEach(e, entries) strbuf_printf(b, "%s%.7g", k++ ? "," : "", cJSON_GetObjectItem(e, "logprob")->valuedouble);
    strbuf_puts(b, "],\"top_logprobs\":[");
    k = 0;
    cJSON_ArrayForEach(e, entries) {
        char *s = cJSON_PrintUnformatted(cJSON_GetObjectItem(e, "top"));
        strbuf_printf(b, "%s%s", k++ ? "," : "", s ? s : "{}");
        cJSON_free(s);
    }
    strbuf_puts(b, "],\"text_offset\":[]}");
    cJSON_Delete(entries);
}

/* Collects every event, then writes the whole answer. While it waits, the
 * client is checked every CLIENT_CHECK_MS: if it has gone, the generation is
 * cancelled (the engine drops it within a step; its pages go to the cache)
 * and false is returned. */
static bool respond_whole(gen_state *g, const http_request *req, http_reply *reply) {
    server_app *app = g->app;
    channel_event ev;
    int64_t waited_ms = 0, checked_us = timing_now_us();
    while (g->n_done < g->req.n) {
        bool got = channel_pop(g->ch, &ev, CLIENT_CHECK_MS);
        if (timing_now_us() - checked_us >= CLIENT_CHECK_MS * 1000) {
            checked_us = timing_now_us();
            if (http_client_gone(req)) {
                gen_log(g);
                log_info("%s client went away; generation cancelled", g->id);
                return false;
            }
        }
        if (!got) {
            if ((waited_ms += CLIENT_CHECK_MS) < GENERATION_EVENT_TIMEOUT_MS) continue;
            http_reply_error(reply, 500, "the engine stopped answering");
            return true;
        }
        waited_ms = 0;
        if (!gen_apply(g, &ev)) {
            http_reply_error(reply, g->error_status ? g->error_status : 500, g->error); /* 503: Retry-After */
            return true;
        }
    }
    gen_log(g);
    gen_prewarm(g);
    strbuf b = STRBUF_INIT;
    bool chat = g->req.kind == OPENAI_CHAT;
    strbuf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", g->id,
                  chat ? "chat.completion" : "text_completion", (long long)g->created_s);
    json_str(&b, app->model_name);
    strbuf_puts(&b, ",\"choices\":[");
    for (int32_t i = 0; i < g->req.n; i++) {
        choice_state *c = &g->choices[i];
        if (i) strbuf_puts(&b, ",");
        strbuf_printf(&b, "{\"index\":%d,", i);
        if (chat) {
            toolcall_result r = toolcall_parser_result(c->tp);
            strbuf_puts(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
            if (r.n_calls && !r.content_len) strbuf_puts(&b, "null");
            else strbuf_json_string(&b, r.content, r.content_len);
            if (r.reasoning_len) {
                strbuf_puts(&b, ",\"reasoning_content\":");
                strbuf_json_string(&b, r.reasoning, r.reasoning_len);
            }
            if (r.n_calls) {
                strbuf_puts(&b, ",\"tool_calls\":[");
                for (size_t k = 0; k < r.n_calls; k++) {
                    strbuf_puts(&b, k ? ",{\"id\":" : "{\"id\":");
                    json_str(&b, r.calls[k].id);
                    strbuf_puts(&b, ",\"type\":\"function\",\"function\":{\"name\":");
                    json_str(&b, r.calls[k].name);
                    strbuf_puts(&b, ",\"arguments\":");
                    json_str(&b, r.calls[k].arguments);
                    strbuf_puts(&b, "}}");
                }
                strbuf_puts(&b, "]");
            }
            strbuf_puts(&b, "},\"logprobs\":");
            if (g->req.logprobs) {
                strbuf_puts(&b, "{\"content\":[");
                strbuf_append(&b, c->logprobs.data ? c->logprobs.data : "", c->logprobs.len);
                strbuf_puts(&b, "]}");
            } else {
                strbuf_puts(&b, "null");
            }
        } else {
            strbuf_puts(&b, "\"text\":");
            strbuf_json_string(&b, c->text.data ? c->text.data : "", c->text.len);
            strbuf_puts(&b, ",\"logprobs\":");
            if (g->req.logprobs) write_completion_logprobs(&b, c);
            else strbuf_puts(&b, "null");
        }
        strbuf_printf(&b, ",\"finish_reason\":\"%s\"}", finish_name(c));
    }
    strbuf_puts(&b, "],");
    write_usage(&b, g);
    strbuf_puts(&b, "}");
    http_reply_json(reply, 200, &b);
    return true;
}

/* ---- streams */

static void chunk_begin(strbuf *out, const gen_state *g) {
    bool chat = g->req.kind == OPENAI_CHAT;
    strbuf_printf(out, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", g->id,
                  chat ? "chat.completion.chunk" : "text_completion", (long long)g->created_s);
    json_str(out, g->app->model_name);
    strbuf_puts(out, ",\"choices\":[");
}

/* Writes one chunk for choice i with its fresh text, logprobs and finish. */
static void write_choice_chunk(strbuf *out, gen_state *g, int32_t i, bool with_finish) {
    choice_state *c = &g->choices[i];
    bool chat = g->req.kind == OPENAI_CHAT;
    chunk_begin(out, g);
    strbuf_printf(out, "{\"index\":%d,", i);
    if (chat) {
        strbuf_puts(out, "\"delta\":{");
        if (!g->role_sent) {
            strbuf_puts(out, "\"role\":\"assistant\",");
        }
        strbuf_puts(out, "\"content\":");
        strbuf_json_string(out, c->delta_content.data ? c->delta_content.data : "", c->delta_content.len);
        if (c->delta_reasoning.len) {
            strbuf_puts(out, ",\"reasoning_content\":");
            strbuf_json_string(out, c->delta_reasoning.data, c->delta_reasoning.len);
        }
        if (c->delta_calls.len) {
            strbuf_puts(out, ",\"tool_calls\":[");
            strbuf_append(out, c->delta_calls.data, c->delta_calls.len);
            strbuf_puts(out, "]");
        }
        strbuf_puts(out, "},\"logprobs\":");
        if (g->req.logprobs && c->logprobs.len) {
            strbuf_puts(out, "{\"content\":[");
            strbuf_append(out, c->logprobs.data, c->logprobs.len);
            strbuf_puts(out, "]}");
        } else {
            strbuf_puts(out, "null");
        }
    } else {
        strbuf_puts(out, "\"text\":");
        strbuf_json_string(out, c->fresh.data ? c->fresh.data : "", c->fresh.len);
        strbuf_puts(out, ",\"logprobs\":");
        if (g->req.logprobs && c->logprobs.len) write_completion_logprobs(out, c);
        else strbuf_puts(out, "null");
    }
    if (with_finish) strbuf_printf(out, ",\"finish_reason\":\"%s\"}]}\n\n", finish_name(c));
    else strbuf_puts(out, ",\"finish_reason\":null}]}\n\n");
    strbuf_reset(&c->fresh);
    strbuf_reset(&c->delta_content);
    strbuf_reset(&c->delta_reasoning);
    strbuf_reset(&c->delta_calls);
    strbuf_reset(&c->logprobs);
}

static int stream_next(void *ctx, strbuf *out) {
    gen_state *g = ctx;
    if (g->finished) return 0;
    channel_event ev;
    if (!channel_pop(g->ch, &ev, STREAM_KEEPALIVE_MS)) {
        strbuf_puts(out, ": keep-alive\n\n");
        return 1;
    }
    if (!gen_apply(g, &ev)) {
        strbuf_puts(out, "data: {\"error\":{\"message\":");
        json_str(out, g->error);
        strbuf_printf(out, ",\"type\":\"server_error\",\"code\":%d}}\n\ndata: [DONE]\n\n", g->error_status);
        g->finished = true;
        return 1;
    }
    if (ev.choice >= 0 && ev.choice < g->req.n) {
        choice_state *c = &g->choices[ev.choice];
        bool finishing = ev.kind == CHANNEL_EVENT_DONE;
        bool pending = c->fresh.len || c->delta_content.len || c->delta_reasoning.len || c->delta_calls.len || c->logprobs.len;
        if (finishing || pending || (!g->role_sent && g->req.kind == OPENAI_CHAT)) {
            write_choice_chunk(out, g, ev.choice, finishing);
            g->role_sent = true;
        }
    }
    if (g->n_done == g->req.n) {
        gen_log(g);
        gen_prewarm(g);
        if (g->req.include_usage) {
            chunk_begin(out, g);
            strbuf_puts(out, "],");
            write_usage(out, g);
            strbuf_puts(out, "}\n\n");
        }
        strbuf_puts(out, "data: [DONE]\n\n");
        g->finished = true;
    }
    return 1;
}

static void stream_done(void *ctx, bool aborted) {
    gen_state *g = ctx;
    if (aborted) {
        gen_log(g); /* what it got to */
        log_info("%s client went away; generation cancelled", g->id);
    }
    gen_free(g); /* cancels the channel: the engine stops within one step */
}

static void handle_generation(server_app *app, const http_request *req, http_reply *reply, openai_kind kind) {
    gen_state *g = gen_start(app, req, kind, reply);
    if (g) {
        if (g->req.stream) {
            reply->status = 200;
            reply->stream = (http_stream){stream_next, stream_done, g};
            return;
        }
        if (!respond_whole(g, req, reply)) reply->status = 499; /* nobody reads it; logged as client closed */
        gen_free(g); /* cancels the channel if the engine is still at it */
    }
}

static void h_chat(void *a, const http_request *req, http_reply *reply) { handle_generation(a, req, reply, OPENAI_CHAT); }
static void h_completions(void *a, const http_request *req, http_reply *reply) { handle_generation(a, req, reply, OPENAI_COMPLETION); }

/* ---- side routes */

static void h_health(void *a, const http_request *req, http_reply *reply) {
    (void)a;
    (void)req;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "{\"status\":\"ok\"}");
    http_reply_json(reply, 200, &b);
}

static void h_models(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    (void)req;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    json_str(&b, app->model_name);
    strbuf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"larder\",\"meta\":{\"n_ctx\":%d,\"n_vocab\":%d}}]}",
                  (long long)app->created_unix_s, app->ctx_tokens, app->n_vocab);
    http_reply_json(reply, 200, &b);
}

static void h_metrics(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    (void)req;
    engine_stats st = engine_get_stats(app->eng);
    metrics_gauges gauges = {st.kv_bytes_total, st.kv_bytes_running, st.kv_bytes_cached_idle, st.kv_bytes_free,
                             st.cache_entries, st.cache_evictions, st.running, st.waiting};
    atomic_store(&app->metrics.preemptions, (uint64_t)st.preemptions);
    strbuf b = STRBUF_INIT;
    metrics_render(&app->metrics, &gauges, &b);
    prewarm_render_metrics(&app->prewarm, &st, &b);
    disk_stats_metrics(&b, app->disk);
    http_reply_json(reply, 200, &b);
    reply->content_type = "text/plain; version=0.0.4";
}

static void write_cache_stats(strbuf *b, const engine_stats *st, struct kv_disk *disk) {
    strbuf_printf(b, "{\"entries\":%lld,\"nodes\":%lld,\"pages\":%lld,\"page_bytes\":%lld,"
                     "\"kv_bytes_total\":%lld,\"kv_bytes_running\":%lld,\"kv_bytes_cached_idle\":%lld,\"kv_bytes_free\":%lld,"
                     "\"evictions\":%lld,\"evicted_pages\":%lld,\"lookups\":%lld,\"hit_tokens\":%lld,\"lookup_tokens\":%lld,"
                     "\"running\":%lld,\"waiting\":%lld,\"preemptions\":%lld,"
                     "\"engine_busy_s\":%.3f,\"cache_bookkeeping_s\":%.4f,"
                     "\"prewarm\":{\"jobs\":%lld,\"stopped\":%lld,\"dropped\":%lld,\"tokens\":%lld,\"hit_tokens\":%lld}",
                  (long long)st->cache_entries, (long long)st->cache_nodes, (long long)st->cache_pages,
                  (long long)st->page_bytes, (long long)st->kv_bytes_total, (long long)st->kv_bytes_running,
                  (long long)st->kv_bytes_cached_idle, (long long)st->kv_bytes_free, (long long)st->cache_evictions,
                  (long long)st->cache_evicted_pages, (long long)st->cache_lookups, (long long)st->cache_hit_tokens,
                  (long long)st->cache_lookup_tokens, (long long)st->running, (long long)st->waiting,
                  (long long)st->preemptions, st->engine_busy_s, st->cache_bookkeeping_s, (long long)st->prewarm_jobs,
                  (long long)st->prewarm_stopped, (long long)st->prewarm_dropped, (long long)st->prewarm_tokens,
                  (long long)st->prewarm_hit_tokens);
    disk_stats_json(b, disk);
    strbuf_puts(b, "}");
}

static void h_cache_get(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    (void)req;
    engine_stats st = engine_get_stats(app->eng);
    strbuf b = STRBUF_INIT;
    write_cache_stats(&b, &st, app->disk);
    http_reply_json(reply, 200, &b);
}

static void h_cache_delete(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    (void)req;
    engine_clear_cache(app->eng);
    /* Stats are published after the engine's next loop: wait for one. */
    engine_stats st = engine_get_stats(app->eng);
    for (int i = 0; i < 50 && st.cache_entries > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        st = engine_get_stats(app->eng);
    }
    strbuf b = STRBUF_INIT;
    write_cache_stats(&b, &st, app->disk);
    http_reply_json(reply, 200, &b);
}

static const http_route table[] = {
    {"POST", "/v1/chat/completions", h_chat, false},
    {"POST", "/v1/completions", h_completions, false},
    {"POST", "/chat/completions", h_chat, false},
    {"POST", "/completions", h_completions, false},
    {"GET", "/v1/models", h_models, false},
    {"GET", "/models", h_models, false},
    {"GET", "/health", h_health, true},
    {"GET", "/metrics", h_metrics, false},
    {"GET", "/v1/cache", h_cache_get, false},
    {"DELETE", "/v1/cache", h_cache_delete, false},
    /* other protocols, in their own files */
    {"POST", "/v1/messages", anthropic_messages_handle, false},
    {"POST", "/v1/messages/count_tokens", anthropic_count_tokens_handle, false},
    {"POST", "/v1/responses", openai_responses_handle, false},
    {"POST", "/responses", openai_responses_handle, false},
};

const http_route *routes_table(int *n_routes) {
    *n_routes = (int)(sizeof table / sizeof table[0]);
    return table;
}

bool routes_error_for_path(const char *path, int status, const char *message, http_reply *reply) {
    static const char messages[] = "/v1/messages";
    size_t n = sizeof messages - 1;
    if (strncmp(path, messages, n) != 0 || (path[n] != '\0' && path[n] != '/')) return false;
    anthropic_reply_error(reply, status, message);
    return true;
}
