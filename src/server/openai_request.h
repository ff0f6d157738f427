/*
 * openai_request.h — an OpenAI API request body, parsed and validated.
 *
 * One function turns the raw body of POST /v1/chat/completions or
 * POST /v1/completions into a plain struct, checking every field's type and
 * range. A bad body gives ERR_INVALID with a message that names the field
 * (the server answers 400 with it). Unknown fields are ignored, as OpenAI's
 * own server and the popular local servers do.
 *
 * Chat messages, tools and chat_template_kwargs stay as cJSON trees: they are
 * handed to the chat template as they are (the template engine reads JSON).
 */
#ifndef LARDER_SERVER_OPENAI_REQUEST_H
#define LARDER_SERVER_OPENAI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/error.h"

/* Limits on what a request may ask for; each is checked and answered 400. */
#define OPENAI_MAX_STOP_STRINGS 16       /* OpenAI allows 4; local clients send more */
#define OPENAI_MAX_STOP_BYTES 1024       /* per stop string */
#define OPENAI_MAX_CHOICES 16            /* n */
#define OPENAI_MAX_TOP_LOGPROBS 20       /* as OpenAI */
#define OPENAI_MAX_LOGIT_BIAS 1024       /* entries */
#define OPENAI_MAX_PROMPT_IDS 1048576    /* a prompt given as token ids */

typedef enum { OPENAI_CHAT, OPENAI_COMPLETION } openai_kind;

/* What tool_choice asks for. "auto" (or absent); "none": the tools stay out
 * of the prompt and no call is parsed; "required": the answer is a call of
 * some tool; {"type": "function", "function": {"name": N}}: a call of N.
 * The last two force it: the answer starts with the model's call opener
 * (toolcall_force_prefix). Anything else, a name not in `tools`, or a
 * forced call without tools: 400. Messages' any/tool and Responses'
 * required/{type: function, name} are converted to these forms. */
typedef enum {
    OPENAI_TOOLS_AUTO = 0,
    OPENAI_TOOLS_NONE,
    OPENAI_TOOLS_REQUIRED,
    OPENAI_TOOLS_NAMED,
} openai_tool_mode;

typedef struct openai_logit_bias {
    int32_t token;
    float bias;
} openai_logit_bias;

typedef struct openai_request {
    openai_kind kind;
    char *model;                 /* may be NULL: the served model */

    /* chat */
    cJSON *messages;             /* array (owned; detached from the body) */
    cJSON *tools;                /* array or NULL */
    cJSON *tool_choice;          /* string or object, or NULL (as sent; tool_mode is what it means) */
    openai_tool_mode tool_mode;  /* from tool_choice, checked against tools */
    char *forced_tool;           /* OPENAI_TOOLS_NAMED: the function's name; else NULL */
    cJSON *chat_template_kwargs; /* object or NULL */
    char *reasoning_effort;      /* NULL if absent */

    /* completions: either text or token ids */
    char *prompt;                /* NULL when prompt_ids is used */
    int32_t *prompt_ids;
    int32_t n_prompt_ids;
    bool echo;

    /* generation */
    int64_t max_tokens;          /* -1: up to the end of the context */
    double temperature;          /* default 1 */
    double top_p;                /* default 1 */
    int32_t top_k;               /* 0: off */
    double min_p;                /* 0: off */
    double presence_penalty, frequency_penalty; /* [-2, 2] */
    double repetition_penalty;   /* default 1: off */
    int32_t repeat_last_n;       /* window of the penalties, default 64 */
    openai_logit_bias *logit_bias;
    int32_t n_logit_bias;
    bool has_seed;
    uint64_t seed;
    char **stop;                 /* n_stop NUL-terminated strings */
    int32_t n_stop;
    int32_t n;                   /* choices, default 1 */

    /* output */
    bool stream;
    bool include_usage;          /* stream_options.include_usage */
    bool logprobs;
    int32_t top_logprobs;        /* alternatives per token, 0..20 */
} openai_request;

/* Parses body[0, len) (must be valid UTF-8 JSON with an object at the top).
 * On success returns 0 and fills *req (free with openai_request_free); on
 * failure returns -1 with err (ERR_INVALID, message naming the field) and
 * *req needs no freeing. */
int openai_request_parse(const char *body, size_t len, openai_kind kind, openai_request *req,
                         larder_error *err);

void openai_request_free(openai_request *req);

#endif
