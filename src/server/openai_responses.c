/*
 * openai_responses.c — the Responses route (see openai_responses.h).
 *
 * One writer serves both shapes: the parser's pieces open output items in
 * order (a change of kind — reasoning, message, a new function call — closes
 * the open item), each closed item's JSON is kept for the final response
 * object, and in a stream every step is also written as its SSE event. A
 * whole response runs the same writer with no event output.
 */
#include "server/openai_responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/chat_session.h"
#include "server/responses_request.h"
#include "server/routes.h"

#define RESPONSES_KEEPALIVE_MS 1000
#define RESPONSES_CLIENT_CHECK_MS 100
#define RESPONSES_EVENT_TIMEOUT_MS 600000

enum { ITEM_NONE, ITEM_MESSAGE, ITEM_REASONING, ITEM_CALL };

typedef struct responses_writer {
    server_app *app;
    chat_session *s;
    cJSON *echo;             /* request fields the response object repeats (owned) */
    strbuf items;            /* closed output items' JSON, comma-separated */
    int n_items;
    int open;                /* ITEM_*: the item being written */
    size_t open_call;        /* ITEM_CALL: the parser's call index */
    char open_id[96];
    char call_id[64], call_name[TOOLCALL_MAX_NAME_BYTES + 1];
    strbuf text;             /* the open item's text or arguments so far */
    int64_t seq;             /* sequence_number of the next event */
    bool started, finished;
} responses_writer;

/* ---- the response object */

static void write_usage(strbuf *b, chat_usage u) {
    strbuf_printf(b, "\"usage\":{\"input_tokens\":%d,\"input_tokens_details\":{\"cached_tokens\":%d},"
                     "\"output_tokens\":%d,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":%d}",
                  u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.prompt_tokens + u.completion_tokens);
}

static void echo_field(strbuf *b, const cJSON *echo, const char *name, const char *absent) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(echo, name);
    strbuf_printf(b, ",\"%s\":", name);
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    strbuf_puts(b, s ? s : absent);
    cJSON_free(s);
}

/* The response object; status "in_progress" (no output, no usage yet),
 * "completed" or "incomplete". */
static void write_response(strbuf *b, const responses_writer *w, const char *status) {
    const chat_session *s = w->s;
    const char *name = chat_session_request(s)->model ? chat_session_request(s)->model : w->app->model_name;
    strbuf_printf(b, "{\"id\":\"%s\",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\",\"model\":",
                  chat_session_id(s), (long long)chat_session_created_s(s), status);
    strbuf_json_string(b, name, strlen(name));
    strbuf_puts(b, ",\"output\":[");
    if (strcmp(status, "in_progress") != 0 && w->items.len) strbuf_append(b, w->items.data, w->items.len);
    strbuf_puts(b, "],\"error\":null,\"incomplete_details\":");
    strbuf_puts(b, !strcmp(status, "incomplete") ? "{\"reason\":\"max_output_tokens\"}" : "null");
    echo_field(b, w->echo, "instructions", "null");
    echo_field(b, w->echo, "max_output_tokens", "null");
    echo_field(b, w->echo, "metadata", "{}");
    echo_field(b, w->echo, "parallel_tool_calls", "true");
    strbuf_puts(b, ",\"previous_response_id\":null");
    echo_field(b, w->echo, "reasoning", "{\"effort\":null,\"summary\":null}");
    echo_field(b, w->echo, "store", "false");
    echo_field(b, w->echo, "temperature", "1");
    strbuf_puts(b, ",\"text\":{\"format\":{\"type\":\"text\"}}");
    echo_field(b, w->echo, "tool_choice", "\"auto\"");
    echo_field(b, w->echo, "tools", "[]");
    echo_field(b, w->echo, "top_p", "1");
    strbuf_puts(b, ",\"truncation\":\"disabled\",");
    if (!strcmp(status, "in_progress")) strbuf_puts(b, "\"usage\":null");
    else write_usage(b, chat_session_usage(s));
    strbuf_puts(b, "}");
}

/* ---- events (out NULL: a whole response, nothing is written) */

static void event_begin(responses_writer *w, strbuf *out, const char *type) {
    strbuf_printf(out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%lld,", type, type, (long long)w->seq++);
}

/* The open item's JSON (status: in_progress while open, completed at the end). */
static void write_item(strbuf *b, const responses_writer *w, bool done) {
    const char *status = done ? "completed" : "in_progress";
    const char *t = w->text.data ? w->text.data : "";
    size_t n = done ? w->text.len : 0;
    switch (w->open) {
    case ITEM_MESSAGE:
        strbuf_printf(b, "{\"type\":\"message\",\"id\":\"%s\",\"status\":\"%s\",\"role\":\"assistant\",\"content\":[", w->open_id, status);
        if (done) {
            strbuf_puts(b, "{\"type\":\"output_text\",\"text\":");
            strbuf_json_string(b, t, n);
            strbuf_puts(b, ",\"annotations\":[],\"logprobs\":[]}");
        }
        strbuf_puts(b, "]}");
        break;
    case ITEM_REASONING:
        strbuf_printf(b, "{\"type\":\"reasoning\",\"id\":\"%s\",\"summary\":[],\"content\":[", w->open_id);
        if (done) {
            strbuf_puts(b, "{\"type\":\"reasoning_text\",\"text\":");
            strbuf_json_string(b, t, n);
            strbuf_puts(b, "}");
        }
        strbuf_puts(b, "]}");
        break;
    case ITEM_CALL:
        strbuf_printf(b, "{\"type\":\"function_call\",\"id\":\"%s\",\"call_id\":", w->open_id);
        strbuf_json_string(b, w->call_id, strlen(w->call_id));
        strbuf_puts(b, ",\"name\":");
        strbuf_json_string(b, w->call_name, strlen(w->call_name));
        strbuf_puts(b, ",\"arguments\":");
        strbuf_json_string(b, t, n);
        strbuf_printf(b, ",\"status\":\"%s\"}", status);
        break;
    }
}

static void item_close(responses_writer *w, strbuf *out) {
    if (w->open == ITEM_NONE) return;
    int index = w->n_items;
    const char *t = w->text.data ? w->text.data : "";
    if (out) {
        if (w->open == ITEM_MESSAGE || w->open == ITEM_REASONING) {
            bool msg = w->open == ITEM_MESSAGE;
            event_begin(w, out, msg ? "response.output_text.done" : "response.reasoning_text.done");
            strbuf_printf(out, "\"item_id\":\"%s\",\"output_index\":%d,\"content_index\":0,\"text\":", w->open_id, index);
            strbuf_json_string(out, t, w->text.len);
            strbuf_puts(out, msg ? ",\"logprobs\":[]}\n\n" : "}\n\n");
            event_begin(w, out, "response.content_part.done");
            strbuf_printf(out, "\"item_id\":\"%s\",\"output_index\":%d,\"content_index\":0,\"part\":{\"type\":\"%s\",\"text\":",
                          w->open_id, index, msg ? "output_text" : "reasoning_text");
            strbuf_json_string(out, t, w->text.len);
            strbuf_puts(out, msg ? ",\"annotations\":[]}}\n\n" : "}}\n\n");
        } else {
            event_begin(w, out, "response.function_call_arguments.done");
            strbuf_printf(out, "\"item_id\":\"%s\",\"output_index\":%d,\"name\":", w->open_id, index);
            strbuf_json_string(out, w->call_name, strlen(w->call_name));
            strbuf_puts(out, ",\"arguments\":");
            strbuf_json_string(out, t, w->text.len);
            strbuf_puts(out, "}\n\n");
        }
        event_begin(w, out, "response.output_item.done");
        strbuf_printf(out, "\"output_index\":%d,\"item\":", index);
        write_item(out, w, true);
        strbuf_puts(out, "}\n\n");
    }
    if (w->items.len) strbuf_puts(&w->items, ",");
    write_item(&w->items, w, true);
    w->n_items++;
    w->open = ITEM_NONE;
    strbuf_reset(&w->text);
}

static void item_open(responses_writer *w, strbuf *out, int kind, const toolcall_event *ev) {
    item_close(w, out);
    w->open = kind;
    const char *prefix = kind == ITEM_MESSAGE ? "msg" : kind == ITEM_REASONING ? "rs" : "fc";
    snprintf(w->open_id, sizeof w->open_id, "%s_%s_%d", prefix, chat_session_id(w->s), w->n_items);
    if (kind == ITEM_CALL) {
        snprintf(w->call_id, sizeof w->call_id, "%s", ev->id);
        snprintf(w->call_name, sizeof w->call_name, "%s", ev->name);
        w->open_call = ev->index;
    }
    if (!out) return;
    event_begin(w, out, "response.output_item.added");
    strbuf_printf(out, "\"output_index\":%d,\"item\":", w->n_items);
    write_item(out, w, false);
    strbuf_puts(out, "}\n\n");
    if (kind != ITEM_CALL) {
        event_begin(w, out, "response.content_part.added");
        strbuf_printf(out, "\"item_id\":\"%s\",\"output_index\":%d,\"content_index\":0,\"part\":", w->open_id, w->n_items);
        strbuf_puts(out, kind == ITEM_MESSAGE ? "{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n"
                                              : "{\"type\":\"reasoning_text\",\"text\":\"\"}}\n\n");
    }
}

static void item_delta(responses_writer *w, strbuf *out, const toolcall_event *ev) {
    strbuf_append(&w->text, ev->text, ev->len);
    if (!out || !ev->len) return;
    const char *type = w->open == ITEM_MESSAGE ? "response.output_text.delta"
                     : w->open == ITEM_REASONING ? "response.reasoning_text.delta"
                                                 : "response.function_call_arguments.delta";
    event_begin(w, out, type);
    strbuf_printf(out, "\"item_id\":\"%s\",\"output_index\":%d,", w->open_id, w->n_items);
    if (w->open != ITEM_CALL) strbuf_puts(out, "\"content_index\":0,");
    strbuf_puts(out, "\"delta\":");
    strbuf_json_string(out, ev->text, ev->len);
    strbuf_puts(out, w->open == ITEM_MESSAGE ? ",\"logprobs\":[]}\n\n" : "}\n\n");
}

static void write_events(responses_writer *w, strbuf *out) {
    size_t n = chat_session_event_count(w->s);
    for (size_t i = 0; i < n; i++) {
        toolcall_event ev = chat_session_event(w->s, i);
        switch (ev.kind) {
        case TOOLCALL_EVENT_CONTENT:
            if (w->open != ITEM_MESSAGE) item_open(w, out, ITEM_MESSAGE, &ev);
            item_delta(w, out, &ev);
            break;
        case TOOLCALL_EVENT_REASONING:
            if (w->open != ITEM_REASONING) item_open(w, out, ITEM_REASONING, &ev);
            item_delta(w, out, &ev);
            break;
        case TOOLCALL_EVENT_CALL_START:
            item_open(w, out, ITEM_CALL, &ev);
            break;
        case TOOLCALL_EVENT_CALL_ARGS:
            if (w->open == ITEM_CALL && w->open_call == ev.index) item_delta(w, out, &ev);
            break;
        }
    }
}

static const char *final_status(const responses_writer *w) {
    return chat_session_finish(w->s) == CHAT_FINISH_LENGTH ? "incomplete" : "completed";
}

static void writer_free(responses_writer *w, bool aborted) {
    if (!w) return;
    chat_session_free(w->s, aborted);
    cJSON_Delete(w->echo);
    strbuf_free(&w->items);
    strbuf_free(&w->text);
    free(w);
}

/* ---- streams */

static int stream_next(void *ctx, strbuf *out) {
    responses_writer *w = ctx;
    if (w->finished) return 0;
    if (!w->started) {
        w->started = true;
        event_begin(w, out, "response.created");
        strbuf_puts(out, "\"response\":");
        write_response(out, w, "in_progress");
        strbuf_puts(out, "}\n\n");
        event_begin(w, out, "response.in_progress");
        strbuf_puts(out, "\"response\":");
        write_response(out, w, "in_progress");
        strbuf_puts(out, "}\n\n");
        return 1;
    }
    int r = chat_session_step(w->s, RESPONSES_KEEPALIVE_MS);
    if (r == 0) {
        strbuf_puts(out, ": keep-alive\n\n");
        return 1;
    }
    if (r < 0) {
        const char *msg;
        int status = chat_session_error(w->s, &msg);
        event_begin(w, out, "error");
        strbuf_printf(out, "\"code\":\"%s\",\"message\":", status == 503 ? "server_overloaded" : status < 500 ? "invalid_request" : "server_error");
        strbuf_json_string(out, msg, strlen(msg));
        strbuf_puts(out, ",\"param\":null}\n\n");
        w->finished = true;
        return 1;
    }
    write_events(w, out);
    if (chat_session_done(w->s)) {
        item_close(w, out);
        const char *status = final_status(w);
        event_begin(w, out, !strcmp(status, "completed") ? "response.completed" : "response.incomplete");
        strbuf_puts(out, "\"response\":");
        write_response(out, w, status);
        strbuf_puts(out, "}\n\n");
        w->finished = true;
    }
    return 1;
}

static void stream_done(void *ctx, bool aborted) { writer_free(ctx, aborted); }

/* ---- whole responses */

static bool respond_whole(responses_writer *w, const http_request *hreq, http_reply *reply) {
    int64_t waited_ms = 0;
    while (!chat_session_done(w->s)) {
        int r = chat_session_step(w->s, RESPONSES_CLIENT_CHECK_MS);
        if (r < 0) {
            const char *msg;
            int status = chat_session_error(w->s, &msg);
            http_reply_error(reply, status, msg);
            return true;
        }
        if (http_client_gone(hreq)) {
            reply->status = 499;
            return false;
        }
        if (r == 0 && (waited_ms += RESPONSES_CLIENT_CHECK_MS) >= RESPONSES_EVENT_TIMEOUT_MS) {
            http_reply_error(reply, 500, "the engine stopped answering");
            return true;
        }
        if (r > 0) waited_ms = 0;
        write_events(w, NULL);
    }
    item_close(w, NULL);
    strbuf b = STRBUF_INIT;
    write_response(&b, w, final_status(w));
    http_reply_json(reply, 200, &b);
    return true;
}

void openai_responses_handle(void *a, const http_request *req, http_reply *reply) {
    server_app *app = a;
    larder_error err = {0};
    responses_request rr;
    if (responses_request_parse(req->body, req->body_bytes, &rr, &err)) {
        http_reply_error_of(reply, &err);
        metrics_count_status(&app->metrics, reply->status);
        return;
    }
    bool stream = rr.chat.stream;
    responses_writer *w = calloc(1, sizeof *w);
    if (!w) {
        responses_request_free(&rr);
        http_reply_error(reply, 500, "out of memory");
        metrics_count_status(&app->metrics, reply->status);
        return;
    }
    w->app = app;
    w->echo = rr.echo;
    rr.echo = NULL;
    chat_session_options so = {"resp_"};
    w->s = chat_session_start(app, &rr.chat, &so, &err);
    responses_request_free(&rr);
    if (!w->s) {
        http_reply_error_of(reply, &err);
        writer_free(w, false);
    } else if (stream) {
        reply->status = 200;
        reply->stream = (http_stream){stream_next, stream_done, w};
    } else {
        writer_free(w, !respond_whole(w, req, reply));
    }
    metrics_count_status(&app->metrics, reply->status);
}
