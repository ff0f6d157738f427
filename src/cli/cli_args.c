/*
 * cli_args.c — the table-driven option parser (see cli_args.h).
 */
#include "cli/cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/size_parse.h"

static int set_value(cli_option *o, const char *v, larder_error *err) {
    char *end = NULL;
    switch (o->kind) {
    case CLI_KIND_STRING:
        *(const char **)o->out = v;
        return 0;
    case CLI_KIND_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno == ERANGE)
            return error_set(err, ERR_INVALID, "%s: '%s' is not an integer", o->name, v);
        if ((double)x < o->min || (double)x > o->max)
            return error_set(err, ERR_INVALID, "%s: %lld is out of range [%.0f, %.0f]", o->name, x, o->min, o->max);
        *(int64_t *)o->out = x;
        return 0;
    }
    case CLI_KIND_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || errno == ERANGE || !isfinite(x))
            return error_set(err, ERR_INVALID, "%s: '%s' is not a number", o->name, v);
        if (x < o->min || x > o->max)
            return error_set(err, ERR_INVALID, "%s: %g is out of range [%g, %g]", o->name, x, o->min, o->max);
        *(double *)o->out = x;
        return 0;
    }
    case CLI_KIND_SIZE:
        if (size_parse(v, (uint64_t *)o->out, err) != 0) return error_prefix(err, "%s", o->name);
        return 0;
    case CLI_KIND_FLAG:
        *(bool *)o->out = true;
        return 0;
    }
    return error_set(err, ERR_INVALID, "%s: bad option kind", o->name);
}

int cli_parse(int argc, char **argv, cli_option *opts, size_t n_opts, char **positional,
              int *n_positional, larder_error *err) {
    int n_pos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) return CLI_HELP;
        if (!options_done && strcmp(a, "--") == 0) { options_done = true; continue; }
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (!positional) return error_set(err, ERR_INVALID, "unexpected argument '%s'", a);
            positional[n_pos++] = argv[i];
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        cli_option *o = NULL;
        for (size_t k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, a, name_len) == 0) o = &opts[k];
        if (!o) return error_set(err, ERR_INVALID, "unknown option '%.*s' (see --help)", (int)name_len, a);
        const char *v;
        if (o->kind == CLI_KIND_FLAG) {
            if (eq) return error_set(err, ERR_INVALID, "%s takes no value", o->name);
            v = "";
        } else if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return error_set(err, ERR_INVALID, "%s needs a value", o->name);
            v = argv[++i];
        }
        if (set_value(o, v, err) != 0) return -1;
        o->seen = true;
    }
    if (n_positional) *n_positional = n_pos;
    return 0;
}

void cli_print_help(FILE *out, const char *usage, const cli_option *opts, size_t n_opts) {
    fprintf(out, "usage: %s\n\noptions:\n", usage);
    for (size_t k = 0; k < n_opts; k++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[k].name, opts[k].metavar ? " " : "",
                 opts[k].metavar ? opts[k].metavar : "");
        fprintf(out, "  %-24s %s\n", left, opts[k].help ? opts[k].help : "");
    }
}

const cli_option *cli_find(const cli_option *opts, size_t n_opts, const char *name) {
    for (size_t k = 0; k < n_opts; k++)
        if (strcmp(opts[k].name, name) == 0) return &opts[k];
    return NULL;
}

int cli_parse_ids(const char *s, token_list *list, larder_error *err) {
    const char *p = s;
    while (*p == ' ') p++;
    if (!*p) return 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX)
            return error_set(err, ERR_INVALID, "bad token id at '%.20s'", p);
        if (token_list_push(list, (int32_t)v, err)) return -1;
        p = end;
        while (*p == ' ') p++;
        if (!*p) return 0;
        if (*p != ',') return error_set(err, ERR_INVALID, "bad token id list at '%.20s'", p);
        p++;
    }
}

int cli_parse_or_exit(const char *cmd, const char *usage, int argc, char **argv, cli_option *opts, size_t n_opts,
                      bool *done) {
    larder_error err = {0};
    int rc = cli_parse(argc, argv, opts, n_opts, NULL, NULL, &err);
    *done = rc != 0;
    if (rc == CLI_HELP) {
        cli_print_help(stdout, usage, opts, n_opts);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "larder %s: %s\n", cmd, err.message);
        return 1;
    }
    return 0;
}
