/*
 * channel.h — how the engine thread hands a request's output to the HTTP
 * thread that serves it.
 *
 * One channel per request: the engine pushes events (a sampled token, the end
 * of a choice, an error), the HTTP thread pops them, blocking with a timeout
 * (so it can send SSE keep-alives during a long prefill). Either side may
 * cancel: the HTTP thread when the client went away or a stop string matched,
 * the engine when it refuses the request. A channel is reference counted: the
 * engine and the HTTP thread each hold one reference and the last release
 * frees it, so neither side outlives the other's pointer.
 *
 * Thread-safe (a mutex and a condition variable); events are small and
 * copied in.
 */
#ifndef LARDER_ENGINE_CHANNEL_H
#define LARDER_ENGINE_CHANNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Most choices (n) one request may ask for; the server checks it first. */
#define CHANNEL_MAX_CHOICES 16
/* Most alternatives a token event carries (top_logprobs). */
#define CHANNEL_MAX_TOP_LOGPROBS 20

typedef enum {
    CHANNEL_EVENT_TOKEN,   /* a sampled token of one choice */
    CHANNEL_EVENT_DONE,    /* a choice ended; finish is set */
    CHANNEL_EVENT_ERROR,   /* the request failed; status/message set; no more events */
} channel_event_kind;

typedef enum {
    FINISH_NONE = 0,
    FINISH_STOP,           /* end-of-generation token or stop string */
    FINISH_LENGTH,         /* max_tokens or the end of the context */
    FINISH_CANCELLED,      /* the HTTP side cancelled */
} channel_finish;

typedef struct channel_event {
    channel_event_kind kind;
    int32_t choice;                 /* which of the n choices */
    int32_t token;                  /* TOKEN: the sampled id */
    float logprob;                  /* TOKEN: its log-probability */
    int32_t n_top;                  /* TOKEN: alternatives below */
    int32_t top_tokens[CHANNEL_MAX_TOP_LOGPROBS];
    float top_logprobs[CHANNEL_MAX_TOP_LOGPROBS];
    channel_finish finish;          /* DONE */
    int32_t prompt_tokens;          /* DONE/ERROR: usage so far */
    int32_t cached_tokens;          /* DONE: prompt tokens that came from the cache */
    int32_t http_status;            /* ERROR: 400, 503, 500 ... */
    char message[256];              /* ERROR: why */
} channel_event;

typedef struct channel channel;

/* A channel with two references (engine and HTTP side). NULL on no memory. */
channel *channel_create(void);

/* Drops one reference; the last frees the channel. */
void channel_release(channel *ch);

/* Engine side: appends an event and wakes the reader. Returns -1 when the
 * queue cannot grow (out of memory); the engine then cancels the request. */
int channel_push(channel *ch, const channel_event *ev);

/* HTTP side: waits up to timeout_ms for an event. Returns 1 with *ev filled,
 * 0 on timeout. */
int channel_pop(channel *ch, channel_event *ev, int timeout_ms);

/* Either side: asks the request to stop; `reason` is reported back in the DONE
 * event of choices it ends (FINISH_STOP for a stop string, FINISH_CANCELLED
 * for a disconnect). Choice -1 cancels every choice. Idempotent. */
void channel_cancel(channel *ch, int32_t choice, channel_finish reason);

/* Events pushed and not yet popped (the engine pauses a sequence whose
 * reader stalls, so a stalled stream's buffer stays bounded). */
int32_t channel_backlog(channel *ch);

/* Engine side: the finish reason a choice was cancelled with, or FINISH_NONE. */
channel_finish channel_cancelled(channel *ch, int32_t choice);

#endif
