/*
 * toolcall_block.h — inside the streaming output parser: its state, the kit
 * that parses one tool-call block (toolcall_block.c), and the interface each
 * tool-call syntax implements in a file of its own
 * (toolcall_syntax_<name>.c). Not for use outside src/chat/toolcall_*.c;
 * the contract is toolcall_parser.h.
 *
 * A block's bytes stay in `buf` until it resolves (buf[0] is its first byte,
 * usually the open marker); `cur` is the scan position, so every byte is
 * looked at a bounded number of times however the text is split. A syntax's
 * step reads from cur, moves `sub` (the syntax's own sub-states) and returns
 * true when it made progress, false to wait for more text. It ends the block
 * with tc_block_done (its calls are valid: they are emitted and the bytes
 * dropped) or tc_block_fail (the bytes become content from the failure
 * point on, never rescanned).
 */
#ifndef LARDER_CHAT_TOOLCALL_BLOCK_H
#define LARDER_CHAT_TOOLCALL_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "chat/toolcall_args.h"
#include "chat/toolcall_json.h"
#include "chat/toolcall_parser.h"

#define NPOS ((size_t)-1)

/* The parser's top-level states (the block's own are `sub`). */
enum toolcall_state { ST_START, ST_REASONING, ST_ANSWER, ST_CONTENT, ST_BLOCK, ST_LLAMA_NEXT, ST_FINISHED };

typedef struct span { size_t a, b; } span;          /* [a, b) in buf */
typedef struct xml_param { span key, val; } xml_param;
/* call: the parser's call index once its arguments stream (NPOS before). */
typedef struct xml_call { span name; size_t first_param, n_params, call; } xml_call;
/* call: as xml_call's, for a call that was streamed while its block was parsed. */
typedef struct pending_call { char *name; char *args; size_t call; } pending_call;

enum { CH_CONTENT, CH_REASONING };
typedef struct channel {
    strbuf text;      /* everything emitted: the result string */
    strbuf held_ws;   /* trailing whitespace not yet emitted */
    bool started;     /* a non-whitespace byte was emitted */
} channel;

typedef struct event_rec { toolcall_event_kind kind; size_t index, off, len; } event_rec;

struct toolcall_parser {
    toolcall_format fmt;
    const struct toolcall_syntax_ops *syntax; /* the block parser of fmt.syntax; NULL: none */
    toolcall_tools *tools;     /* NULL: tool calls off */
    bool calls_on;
    bool starts_in_reasoning;  /* the prompt opened the reasoning block */
    uint64_t rng;              /* id generator state */

    enum toolcall_state state;
    int sub;                   /* the syntax's sub-state inside ST_BLOCK */
    strbuf buf;                /* unresolved bytes; in ST_BLOCK buf[0] is the block's first byte */
    size_t cur;                /* scan position in buf */

    /* the block being parsed */
    tjson_scan js;
    size_t json_start, json_end;
    bool json_is_array;
    span name;                 /* current function name (Mistral) */
    size_t name_a, key_a, val_a;
    span key;
    xml_param *params; size_t n_params, cap_params;
    xml_call *xcalls; size_t n_xcalls, cap_xcalls;
    pending_call *pend; size_t n_pend, cap_pend;

    /* streaming an XML-style call's arguments while its block is parsed
     * (toolcall_stream.c) */
    size_t block_calls;        /* n_calls when the block began: later calls were committed by it */
    size_t stream_call;        /* the call whose arguments are being written; NPOS: none */
    strbuf stream_args;        /* its arguments so far (every byte also sent as CALL_ARGS) */
    size_t stream_members;     /* members written into it */
    size_t stream_key_a;       /* key.a of the parameter being streamed; NPOS: none */
    int stream_mode;           /* that parameter: STREAM_SKIP, STREAM_TEXT, STREAM_TYPED */
    bool stream_trimmed;       /* STREAM_TEXT: its leading newline is decided */
    size_t stream_lead;        /* STREAM_TEXT: bytes trimmed at its start (0 or 1) */
    size_t stream_done;        /* STREAM_TEXT: raw value bytes sent (after the trim) */
    bool stream_json;          /* the streamed call is a JSON-style one (below) */
    /* streaming a JSON-style call: {"name": N, "arguments"|"parameters": {..}}
     * recognised up to its arguments object, which is then validated as it comes */
    int jrec;                  /* the recognizer's step; JREC_OFF: not streaming */
    size_t jcur;               /* its scan position in buf */
    size_t jlit;               /* bytes of the expected literal matched */
    span jname;                /* the function name (between its quotes) */
    size_t jkey_a;             /* the second key's first byte */
    size_t jargs_a;            /* the arguments object's first byte */
    size_t jsent;              /* its bytes sent */
    size_t jcall;              /* the call it committed; NPOS: none */
    tjson_stream jst;
    /* Gemma 4's argument syntax converted to JSON as it comes (toolcall_syntax_gemma.c) */
    strbuf gconv;              /* the JSON so far */
    size_t gcur;               /* scan position in buf */
    char gstack[TJSON_MAX_DEPTH];
    int gdepth;

    channel ch[2];
    toolcall_call *calls; size_t n_calls, cap_calls;

    event_rec *events; size_t n_events, cap_events;
    strbuf evtext;             /* the events' text bytes */
    bool oom;
};

/* One tool-call syntax: begin starts parsing a block at p->cur (just after
 * the open marker, or at the JSON for Llama 3), step is one sub-step. */
typedef struct toolcall_syntax_ops {
    void (*begin)(toolcall_parser *p);
    bool (*step)(toolcall_parser *p);
} toolcall_syntax_ops;

extern const toolcall_syntax_ops toolcall_syntax_hermes;   /* toolcall_syntax_hermes.c */
extern const toolcall_syntax_ops toolcall_syntax_xml;      /* toolcall_syntax_xml.c */
extern const toolcall_syntax_ops toolcall_syntax_llama3;   /* toolcall_syntax_llama3.c */
extern const toolcall_syntax_ops toolcall_syntax_mistral;  /* toolcall_syntax_mistral.c */
extern const toolcall_syntax_ops toolcall_syntax_minimax;  /* toolcall_syntax_minimax.c: MiniMax-M2, DeepSeek V3.2 DSML */
extern const toolcall_syntax_ops toolcall_syntax_glm;      /* toolcall_syntax_glm.c */
extern const toolcall_syntax_ops toolcall_syntax_gemma;    /* toolcall_syntax_gemma.c: Gemma 4 */
extern const toolcall_syntax_ops toolcall_syntax_harmony;  /* toolcall_syntax_harmony.c: gpt-oss */
extern const toolcall_syntax_ops toolcall_syntax_section;  /* toolcall_syntax_section.c: Kimi K2, DeepSeek V3.1 */
extern const toolcall_syntax_ops toolcall_syntax_command_r_plus; /* toolcall_syntax_command_r_plus.c */

/* ---- memory */

static inline bool tc_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
/* arr grown to hold need elements (NULL and *oom set when out of memory). */
void *tc_grow(void *arr, size_t *cap, size_t need, size_t elem, bool *oom);
char *tc_dup_n(const char *s, size_t n, bool *oom);

/* ---- scanning buf */

/* 1: marker m starts at buf[i]; -1: buf ends inside a prefix of m; 0: no. */
int tc_match_at(const toolcall_parser *p, size_t i, const char *m);
/* Which of two markers (NULL: never matches) starts at i: 1 or 2, 0 none,
 * -1 wait (a prefix of one). */
int tc_which_marker(const toolcall_parser *p, size_t i, const char *m1, const char *m2);
/* First index >= from where m occurs, or NPOS; then *hold is the start of the
 * longest suffix (at or after from) that is a proper prefix of m (len if none). */
size_t tc_find_from(const toolcall_parser *p, size_t from, const char *m, size_t *hold);
size_t tc_skip_ws(const toolcall_parser *p, size_t i);
/* Skips whitespace from cur (cur follows) and looks there for m1 or m2
 * (either may be NULL: never matches). 1 or 2: that marker starts at *at.
 * -1: wait for more text. 0: neither can start there, and the block has
 * failed at that byte (tc_block_fail done). A step ends with
 * `if (w < 1) return w == 0;`. */
int tc_next_marker(toolcall_parser *p, const char *m1, const char *m2, size_t *at);
/* Drops buf[0, n); cur goes back to 0. */
void tc_consume(toolcall_parser *p, size_t n);
/* Scans a name from p->cur that ends at `term`; Returns the index of term,
 * NPOS to wait (cur advanced), or sets *fail_at. Names hold no '<', no newline. */
size_t tc_scan_name(toolcall_parser *p, size_t a, char term, size_t *fail_at);

/* ---- events */

/* Queues an event; consecutive content (or reasoning) deltas merge. */
void tc_event_push(toolcall_parser *p, toolcall_event_kind kind, size_t index, const char *s, size_t n);

/* ---- the block's calls */

/* A function name the parser accepts: one of the tools, no control bytes. */
bool tc_name_ok(const toolcall_parser *p, const char *s, size_t n);
/* Adds a pending call, taking ownership of name and args (freed on failure). */
int tc_pending_add(toolcall_parser *p, char *name, char *args);
/* Starts a JSON value at buf[i] (sub = next). Returns true (progress). */
bool tc_begin_json(toolcall_parser *p, size_t i, int next);
/* Advances the JSON scan; on its end returns true with *end set; false with
 * *failed (and *end at the bad byte) or to wait. */
bool tc_feed_json(toolcall_parser *p, size_t *end, bool *failed);
/* Parses the JSON in buf[json_start, end) as one call object or an array of
 * them into pending calls; -1 when it is not that. */
int tc_json_calls_parse(toolcall_parser *p, size_t end);
/* Steps of the syntaxes that write a name, then its arguments as one JSON
 * object (Kimi, DeepSeek V3.1, gpt-oss, Mistral's [ARGS], Command R+):
 * the object's '{' after whitespace at cur (else the block fails) starts it
 * and commits the call named p->name, whose arguments then stream
 * (sub = json_sub); at the object's end it is checked (one JSON value,
 * UTF-8) and becomes the block's next pending call (sub = next_sub). */
bool tc_step_args_open(toolcall_parser *p, int json_sub);
bool tc_step_args_json(toolcall_parser *p, int next_sub);
/* XML-style calls: a function (false when over the limits) and its parameters. */
bool tc_push_xcall(toolcall_parser *p, span name);
bool tc_push_param(toolcall_parser *p, span key, span val);
/* Steps shared by the XML-style syntaxes: the next parameter open marker
 * (sub = param_sub, key_a after it) or the end marker (sub = end_sub); a
 * parameter's value up to `close` (sub = next_sub). */
bool tc_step_param_or_end(toolcall_parser *p, const char *open, const char *end, int param_sub, int end_sub);
bool tc_step_param_value(toolcall_parser *p, const char *close, int next_sub);
/* The block's close marker sits at buf[i]: its XML-style calls are built
 * and the block ends (done, or failed when no call is valid). */
bool tc_xml_block_close(toolcall_parser *p, size_t i);

/* ---- streaming calls (toolcall_stream.c)
 *
 * An XML-style call is committed as soon as its function name is parsed and
 * is one of the tools: CALL_START goes out, then its arguments object in
 * fragments — "{", each parameter as it is parsed (a string-typed value's
 * text as it arrives, escaped; other types whole when the parameter closes),
 * "}" when the next call starts or the block closes. The bytes are the ones
 * the whole-block conversion (xml_calls_build) writes. A committed call stays
 * a call: if its block fails later (or the output ends inside it), its
 * arguments are closed where they stand and the block's bytes up to the
 * failure are dropped. */
enum { STREAM_SKIP, STREAM_TEXT, STREAM_TYPED };

/* A new call (id made here, arguments NULL until finalized) and its
 * CALL_START event; NPOS when out of memory. */
size_t tc_call_open(toolcall_parser *p, const char *name, size_t n);
/* After tc_push_xcall: closes the previous streamed call, commits the new one. */
void tc_stream_xcall_begin(toolcall_parser *p);
/* Closes the streamed call (its "}") and finalizes its arguments. */
void tc_stream_xcall_end(toolcall_parser *p);
/* The current parameter's value is known up to buf[end] (closed: it ends there). */
void tc_stream_param(toolcall_parser *p, size_t end, bool closed);
/* The block failed or ended unfinished: closes the streamed call where it
 * stands. True when the block committed any call. */
bool tc_stream_abort(toolcall_parser *p);

/* JSON-style calls (Hermes, Llama 3, Mistral's array form): tc_begin_json
 * starts the recognizer on a single object; tc_feed_json runs it over the
 * bytes it scanned. A call commits when `{"name": N, "arguments": {` (or
 * "parameters") has been read with N one of the tools; its arguments are
 * sent up to the validator's safe point. Mistral's N[ARGS]{..} commits at
 * the '{' (tc_jstream_args). At tc_block_done the committed call is the
 * block's one pending call. */
enum { JREC_OFF = -1 };
void tc_jstream_begin(toolcall_parser *p);
void tc_jstream_args(toolcall_parser *p, span name);
void tc_jstream_run(toolcall_parser *p, size_t upto);
/* The streamed JSON arguments are complete: the call is finalized. */
void tc_stream_json_done(toolcall_parser *p);

/* ---- ending the block */

void tc_block_reset(toolcall_parser *p);
/* The block failed at buf[at]: its bytes become content from scanning on. */
bool tc_block_fail(toolcall_parser *p, size_t at);
/* The block ended at buf[end] and its pending calls are valid: emit them. */
bool tc_block_done(toolcall_parser *p, size_t end);

#endif
