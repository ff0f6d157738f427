/*
 * cli_args.h — a small table-driven option parser shared by the cmd_*.c files.
 *
 * Each subcommand declares its options as a table of cli_option; cli_parse
 * walks argv once, accepts `--name value` and `--name=value`, converts each
 * value to its type (with range checks) and stores it, collects positional
 * arguments, and fails with one clear message for an unknown option, a
 * missing value, or a value that does not parse. `--` ends the options.
 *
 *   int64_t threads = 2; const char *model = NULL; bool json = false;
 *   cli_option opts[] = {
 *       CLI_STR("--model", &model, "FILE", "the GGUF model"),
 *       CLI_INT("--threads", &threads, 1, 1024, "N", "compute threads"),
 *       CLI_FLAG("--json", &json, "print one JSON object"),
 *   };
 *   int rc = cli_parse(argc, argv, opts, CLI_COUNT(opts), NULL, NULL, &err);
 *   // rc: 0 ok, CLI_HELP when --help/-h was given, -1 error (err set)
 */
#ifndef LARDER_CLI_ARGS_H
#define LARDER_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

typedef enum cli_kind {
    CLI_KIND_STRING, /* const char ** */
    CLI_KIND_INT,    /* int64_t *, within [min, max] */
    CLI_KIND_FLOAT,  /* double *, within [min, max] */
    CLI_KIND_SIZE,   /* uint64_t * bytes ("32M", "1GiB": base/size_parse.h) */
    CLI_KIND_FLAG,   /* bool *, takes no value; set to true */
} cli_kind;

typedef struct cli_option {
    const char *name;      /* "--threads" */
    cli_kind kind;
    void *out;             /* where the value goes (type per kind) */
    double min, max;       /* INT / FLOAT range, inclusive */
    const char *metavar;   /* "N", "FILE" (help text) */
    const char *help;      /* one line */
    bool seen;             /* set by cli_parse when the option was given */
} cli_option;

#define CLI_STR(n, p, mv, h) {(n), CLI_KIND_STRING, (p), 0, 0, (mv), (h), false}
#define CLI_INT(n, p, lo, hi, mv, h) {(n), CLI_KIND_INT, (p), (lo), (hi), (mv), (h), false}
#define CLI_FLOAT(n, p, lo, hi, mv, h) {(n), CLI_KIND_FLOAT, (p), (lo), (hi), (mv), (h), false}
#define CLI_SIZE(n, p, mv, h) {(n), CLI_KIND_SIZE, (p), 0, 0, (mv), (h), false}
#define CLI_FLAG(n, p, h) {(n), CLI_KIND_FLAG, (p), 0, 0, NULL, (h), false}
#define CLI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Returned by cli_parse when --help or -h was given. */
#define CLI_HELP 1

/* Parses argv[1..argc) (argv[0] is the subcommand name). Positional
 * arguments are stored in positional[0..*n_positional) (an array of at least
 * argc entries); pass NULL to reject any positional argument. */
int cli_parse(int argc, char **argv, cli_option *opts, size_t n_opts, char **positional,
              int *n_positional, larder_error *err);

/* cli_parse (no positional arguments) with the usual endings of a
 * subcommand: --help prints usage and options to stdout, a parse error
 * prints "larder <cmd>: <message>" to stderr. *done is true in both cases and
 * the return value is the exit status (0 or 1); otherwise *done is false
 * (the options are set) and it returns 0. */
int cli_parse_or_exit(const char *cmd, const char *usage, int argc, char **argv, cli_option *opts, size_t n_opts,
                      bool *done);

/* Prints "usage: <usage>" and one line per option to out. */
void cli_print_help(FILE *out, const char *usage, const cli_option *opts, size_t n_opts);

/* The option named name in opts (for `.seen`), or NULL. */
const cli_option *cli_find(const cli_option *opts, size_t n_opts, const char *name);

/* Parses comma-separated token ids ("1,2,3") onto list; -1 with err on a
 * malformed id. Range against a vocabulary is the caller's check. */
int cli_parse_ids(const char *s, token_list *list, larder_error *err);

#endif
