/*
 * cmd_render_template.c — `larder render-template --template FILE --context
 * FILE.json [--now ISO-8601]`: renders a chat template (src/jinja/jinja.h)
 * with the context object's top-level keys as variables and prints exactly
 * the rendered text, with no newline added. A parse or render error prints
 * one line on stderr and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "jinja/jinja.h"

/* Reads a whole file (at most max_bytes); NULL with err. */
static char *read_file(const char *path, size_t max_bytes, size_t *len, larder_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { error_set(err, ERR_IO, "cannot open %s", path); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max_bytes) { free(buf); fclose(f); error_set(err, ERR_LIMIT, "%s is larger than %zu bytes", path, max_bytes); return NULL; }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (!buf) { fclose(f); error_set(err, ERR_NOMEM, "out of memory reading %s", path); return NULL; }
    if (ferror(f)) { free(buf); fclose(f); error_set(err, ERR_IO, "cannot read %s", path); return NULL; }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cmd_render_template(int argc, char **argv) {
    const char *tpath = NULL, *cpath = NULL, *now = NULL;
    cli_option opts[] = {
        CLI_STR("--template", &tpath, "FILE", "the Jinja chat template"),
        CLI_STR("--context", &cpath, "FILE.json", "a JSON object whose keys are the template's variables"),
        CLI_STR("--now", &now, "ISO-8601", "the local time strftime_now() reads (default: now)"),
    };
    static const char *usage = "larder render-template --template FILE --context FILE.json [--now ISO-8601]";
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("render-template", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    if (!tpath || !cpath) { cli_print_help(stderr, usage, opts, CLI_COUNT(opts)); return 1; }
    jinja_render_options ro = {0};
    if (now) {
        if (jinja_options_set_now(&ro, now, &err)) { fprintf(stderr, "larder render-template: %s\n", err.message); return 1; }
    }
    size_t tlen, clen;
    char *tsrc = read_file(tpath, JINJA_MAX_TEMPLATE_BYTES, &tlen, &err);
    if (!tsrc) { fprintf(stderr, "larder render-template: %s\n", err.message); return 1; }
    char *csrc = read_file(cpath, (size_t)1 << 30, &clen, &err);
    if (!csrc) { free(tsrc); fprintf(stderr, "larder render-template: %s\n", err.message); return 1; }
    int status = 1;
    jinja_template *t = NULL;
    t = jinja_template_parse(tsrc, tlen, &err);
    if (!t) { fprintf(stderr, "larder render-template: %s: %s\n", tpath, err.message); goto done; }
    size_t n;
    char *out = jinja_render_json_text(t, csrc, clen, &ro, &n, &err);
    if (!out) {
        fprintf(stderr, "larder render-template: %s: %s\n", strncmp(err.message, "context JSON", 12) ? tpath : cpath, err.message);
        goto done;
    }
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout)) fprintf(stderr, "larder render-template: write failed\n");
    else status = 0;
    free(out);
done:
    jinja_template_free(t);
    free(csrc);
    free(tsrc);
    return status;
}
