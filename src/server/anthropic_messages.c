/*
 * anthropic_messages.c — the Messages routes (see anthropic_messages.h):
 * parse and convert (anthropic_request), run (chat_session), and write the
 * answer as one message or as Anthropic's event stream. In a stream the
 * parser's pieces open content blocks in order: a change of kind (thinking,
 * text, a new tool call) closes the open block and starts the next index.
 */
#include "server/anthropic_messages.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timing.h"
#include "server/anthropic_request.h"
#include "server/chat_session.h"
#include "server/routes.h"

/* How long a stream waits for the next event before sending a ping (also
 * how soon a vanished client is noticed while nothing flows). */
#define MESSAGES_PING_MS 1000
/* How often a whole response checks that its client is still there. */
#define MESSAGES_CLIENT_CHECK_MS 100
/* A whole response gives up after this long without an engine event. */
#define MESSAGES_EVENT_TIMEOUT_MS 600000

static atomic_bool billing_header_logged;

static const char *error_type(int status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    default: return status < 500 ? "invalid_request_error" : "api_error";
    }
}

static void write_error_object(strbuf *b, int status, const char *message) {
    strbuf_printf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", error_type(status));
    strbuf_json_string(b, message, strlen(message));
    strbuf_puts(b, "}}");
}

void anthropic_reply_error(http_reply *reply, int status, const char *message) {
    strbuf b = STRBUF_INIT;
    write_error_object(&b, status, message);
    free(reply->body);
    reply->body = NULL;
    http_reply_json(reply, status, &b);
    if (status == 503) reply->retry_after_s = 1;
}

static const char *stop_reason(chat_finish f) {
    switch (f) {
    case CHAT_FINISH_LENGTH: return "max_tokens";
    case CHAT_FINISH_STOP_STRING: return "stop_sequence";
    case CHAT_FINISH_TOOL_CALLS: return "tool_use";
    default: return "end_turn";
    }
}

/* "usage":{...}: Anthropic counts uncached prompt tokens as input_tokens. */
static void write_usage(strbuf *b, chat_usage u) {
    strbuf_printf(b, "\"usage\":{\"input_tokens\":%d,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%d,"
                     "\"output_tokens\":%d}",
                  u.prompt_tokens - u.cached_tokens, u.cached_tokens, u.completion_tokens);
}

static void write_stop(strbuf *b, const chat_session *s) {
    strbuf_printf(b, "\"stop_reason\":\"%s\",\"stop_sequence\":", stop_reason(chat_session_finish(s)));
    const char *stop = chat_session_stop_string(s);
    if (stop) strbuf_json_string(b, stop, strlen(stop));
    else strbuf_puts(b, "null");
}

static void write_message_head(strbuf *b, const chat_session *s, const server_app *app) {
    strbuf_printf(b, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", chat_session_id(s));
    const char *name = chat_session_request(s)->model;
    name = name ? name : app->model_name;
    strbuf_json_string(b, name, strlen(name));
}

/* Parses and starts; NULL with the error in reply. */
static chat_session *messages_start(server_app *app, const http_request *hreq, http_reply *reply, bool *stream) {
    larder_error err = {0};
    anthropic_request ar;
    anthropic_parse_options po = {.keep_billing_header = app->keep_billing_header};
    if (anthropic_request_parse(hreq->body, hreq->body_bytes, &po, &ar, &err)) {
        anthropic_reply_error(reply, http_status_of(err.code), err.message);
        return NULL;
    }
    if (ar.dropped_billing_header && !atomic_exchange(&billing_header_logged, true))
        log_info("messages: dropped Claude Code's x-anthropic-billing-header system block from the prompt "
                 "(it changes on every request and would defeat the prompt cache; --keep-billing-header keeps it)");
    *stream = ar.chat.stream;
    chat_session_options so = {"msg_"};
    chat_session *s = chat_session_start(app, &ar.chat, &so, &err);
    anthropic_request_free(&ar);
    if (!s) anthropic_reply_error(reply, http_status_of(err.code), err.message);
    return s;
}

/* ---- whole message */

/* Waits for the whole answer and writes it; false when the client went away
 * first (nothing is written then). */
static bool respond_whole(server_app *app, chat_session *s, const http_request *hreq, http_reply *reply) {
    int64_t waited_ms = 0;
    while (!chat_session_done(s)) {
        int r = chat_session_step(s, MESSAGES_CLIENT_CHECK_MS);
        if (r < 0) {
            const char *msg;
            int status = chat_session_error(s, &msg);
            anthropic_reply_error(reply, status, msg);
            return true;
        }
        if (http_client_gone(hreq)) {
            reply->status = 499; /* nobody reads it; logged as client closed */
            return false;
        }
        if (r == 0 && (waited_ms += MESSAGES_CLIENT_CHECK_MS) >= MESSAGES_EVENT_TIMEOUT_MS) {
            anthropic_reply_error(reply, 500, "the engine stopped answering");
            return true;
        }
        if (r > 0) waited_ms = 0;
    }
    toolcall_result res = chat_session_result(s);
    strbuf b = STRBUF_INIT;
    write_message_head(&b, s, app);
    strbuf_puts(&b, ",\"content\":[");
    int n = 0;
    if (res.reasoning_len) {
        strbuf_puts(&b, "{\"type\":\"thinking\",\"thinking\":");
        strbuf_json_string(&b, res.reasoning, res.reasoning_len);
        strbuf_puts(&b, ",\"signature\":\"\"}");
        n++;
    }
    if (res.content_len) {
        strbuf_puts(&b, n++ ? ",{\"type\":\"text\",\"text\":" : "{\"type\":\"text\",\"text\":");
        strbuf_json_string(&b, res.content, res.content_len);
        strbuf_puts(&b, "}");
    }
    for (size_t i = 0; i < res.n_calls; i++) {
        strbuf_puts(&b, n++ ? ",{\"type\":\"tool_use\",\"id\":" : "{\"type\":\"tool_use\",\"id\":");
        strbuf_json_string(&b, res.calls[i].id, strlen(res.calls[i].id));
        strbuf_puts(&b, ",\"name\":");
        strbuf_json_string(&b, res.calls[i].name, strlen(res.calls[i].name));
        strbuf_printf(&b, ",\"input\":%s}", res.calls[i].arguments); /* a JSON object (parser contract) */
    }
    strbuf_puts(&b, "],");
    write_stop(&b, s);
    strbuf_puts(&b, ",");
    write_usage(&b, chat_session_usage(s));
    strbuf_puts(&b, "}");
    http_reply_json(reply, 200, &b);
    return true;
}

/* ---- the event stream */

enum { BLOCK_NONE, BLOCK_TEXT, BLOCK_THINKING, BLOCK_TOOL };

typedef struct messages_stream {
    server_app *app;
    chat_session *s;
    int next_index;       /* index of the next content block */
    int open;             /* BLOCK_*: the block being written */
    size_t open_call;     /* BLOCK_TOOL: its call index */
    bool started, finished;
} messages_stream;

static void sse(strbuf *out, const char *event) { strbuf_printf(out, "event: %s\ndata: ", event); }

static void block_close(messages_stream *m, strbuf *out) {
    if (m->open == BLOCK_NONE) return;
    if (m->open == BLOCK_THINKING) {
        sse(out, "content_block_delta");
        strbuf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
                      m->next_index - 1);
    }
    sse(out, "content_block_stop");
    strbuf_printf(out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", m->next_index - 1);
    m->open = BLOCK_NONE;
}

static void block_open(messages_stream *m, strbuf *out, int kind, const toolcall_event *ev) {
    block_close(m, out);
    sse(out, "content_block_start");
    strbuf_printf(out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":", m->next_index++);
    if (kind == BLOCK_TEXT) {
        strbuf_puts(out, "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else if (kind == BLOCK_THINKING) {
        strbuf_puts(out, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
    } else {
        strbuf_puts(out, "{\"type\":\"tool_use\",\"id\":");
        strbuf_json_string(out, ev->id, strlen(ev->id));
        strbuf_puts(out, ",\"name\":");
        strbuf_json_string(out, ev->name, strlen(ev->name));
        strbuf_puts(out, ",\"input\":{}}}\n\n");
        m->open_call = ev->index;
    }
    m->open = kind;
}

static void write_delta(messages_stream *m, strbuf *out, const char *type, const char *field, const toolcall_event *ev) {
    sse(out, "content_block_delta");
    strbuf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"%s\",\"%s\":", m->next_index - 1,
                  type, field);
    strbuf_json_string(out, ev->text, ev->len);
    strbuf_puts(out, "}}\n\n");
}

static void write_events(messages_stream *m, strbuf *out) {
    size_t n = chat_session_event_count(m->s);
    for (size_t i = 0; i < n; i++) {
        toolcall_event ev = chat_session_event(m->s, i);
        switch (ev.kind) {
        case TOOLCALL_EVENT_CONTENT:
            if (m->open != BLOCK_TEXT) block_open(m, out, BLOCK_TEXT, &ev);
            write_delta(m, out, "text_delta", "text", &ev);
            break;
        case TOOLCALL_EVENT_REASONING:
            if (m->open != BLOCK_THINKING) block_open(m, out, BLOCK_THINKING, &ev);
            write_delta(m, out, "thinking_delta", "thinking", &ev);
            break;
        case TOOLCALL_EVENT_CALL_START:
            block_open(m, out, BLOCK_TOOL, &ev);
            break;
        case TOOLCALL_EVENT_CALL_ARGS:
            if (m->open == BLOCK_TOOL && m->open_call == ev.index && ev.len)
                write_delta(m, out, "input_json_delta", "partial_json", &ev);
            break;
        }
    }
}

static int stream_next(void *ctx, strbuf *out) {
    messages_stream *m = ctx;
    if (m->finished) return 0;
    if (!m->started) {
        m->started = true;
        sse(out, "message_start");
        strbuf_puts(out, "{\"type\":\"message_start\",\"message\":");
        write_message_head(out, m->s, m->app);
        strbuf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
        chat_usage u = chat_session_usage(m->s);
        u.completion_tokens = 0;
        write_usage(out, u);
        strbuf_puts(out, "}}\n\n");
        sse(out, "ping");
        strbuf_puts(out, "{\"type\":\"ping\"}\n\n");
        return 1;
    }
    int r = chat_session_step(m->s, MESSAGES_PING_MS);
    if (r == 0) {
        sse(out, "ping");
        strbuf_puts(out, "{\"type\":\"ping\"}\n\n");
        return 1;
    }
    if (r < 0) {
        const char *msg;
        int status = chat_session_error(m->s, &msg);
        sse(out, "error");
        write_error_object(out, status, msg);
        strbuf_puts(out, "\n\n");
        m->finished = true;
        return 1;
    }
    write_events(m, out);
    if (chat_session_done(m->s)) {
        block_close(m, out);
        sse(out, "message_delta");
        strbuf_puts(out, "{\"type\":\"message_delta\",\"delta\":{");
        write_stop(out, m->s);
        strbuf_puts(out, "},");
        write_usage(out, chat_session_usage(m->s));
        strbuf_puts(out, "}\n\n");
        sse(out, "message_stop");
        strbuf_puts(out, "{\"type\":\"message_stop\"}\n\n");
        m->finished = true;
    }
    return 1;
}

static void stream_done(void *ctx, bool aborted) {
    messages_stream *m = ctx;
    chat_session_free(m->s, aborted);
    free(m);
}

/* ---- handlers */

void anthropic_messages_handle(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    bool stream = false;
    chat_session *s = messages_start(app, req, reply, &stream);
    if (s && stream) {
        messages_stream *m = calloc(1, sizeof *m);
        if (!m) {
            chat_session_free(s, false);
            anthropic_reply_error(reply, 500, "out of memory");
        } else {
            m->app = app;
            m->s = s;
            reply->status = 200;
            reply->stream = (http_stream){stream_next, stream_done, m};
        }
    } else if (s) {
        chat_session_free(s, !respond_whole(app, s, req, reply));
    }
    metrics_count_status(&app->metrics, reply->status);
}

void anthropic_count_tokens_handle(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    larder_error err = {0};
    anthropic_request ar;
    anthropic_parse_options po = {.count_tokens = true, .keep_billing_header = app->keep_billing_header};
    int32_t n = 0;
    if (anthropic_request_parse(req->body, req->body_bytes, &po, &ar, &err) == 0) {
        int rc = chat_session_count_tokens(app, &ar.chat, &n, &err);
        anthropic_request_free(&ar);
        if (rc == 0) {
            strbuf b = STRBUF_INIT;
            strbuf_printf(&b, "{\"input_tokens\":%d}", n);
            http_reply_json(reply, 200, &b);
            metrics_count_status(&app->metrics, 200);
            return;
        }
    }
    anthropic_reply_error(reply, http_status_of(err.code), err.message);
    metrics_count_status(&app->metrics, reply->status);
}
