/*
 * cmd_render_template.c — `larder render-template --template FILE --context
 * FILE.json [--now ISO-8601]`: renders a chat template (src/jinja/jinja.h)
 * with the context object's top-level keys as variables and prints exactly
 * the rendered text, with no newline added. With --request FILE.json
 * instead of --context, the file is a chat-completions request body and the
 * prompt is rendered exactly as `larder serve` renders it (the request
 * parsed by server/openai_request, the context built by chat/chat_prompt:
 * text parts joined, tool-call arguments parsed, add_generation_prompt;
 * --bos/--eos give the model's special-token texts). A parse or render
 * error prints one line on stderr and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_prompt.h"
#include "cli/cli_args.h"
#include "jinja/jinja.h"
#include "server/openai_request.h"

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

/* The prompt `larder serve` renders for the chat request in rpath. */
static int render_request(const char *tpath, const char *rpath, const char *bos, const char *eos) {
    larder_error err = {0};
    size_t tlen, rlen, n = 0;
    int status = 1;
    openai_request req;
    bool parsed = false;
    chat_prompt *cp = NULL;
    char *out = NULL, *rsrc = NULL, *tsrc = read_file(tpath, JINJA_MAX_TEMPLATE_BYTES, &tlen, &err);
    if (!tsrc || !(rsrc = read_file(rpath, (size_t)1 << 30, &rlen, &err))) goto fail;
    if (!(cp = chat_prompt_create(tsrc, bos ? bos : "", eos ? eos : "", &err))) goto fail;
    if (openai_request_parse(rsrc, rlen, OPENAI_CHAT, &req, &err)) goto fail;
    parsed = true;
    chat_prompt_input in = {req.messages, req.tools, req.reasoning_effort, req.chat_template_kwargs};
    if (!(out = chat_prompt_render(cp, &in, &n, &err))) goto fail;
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout)) fprintf(stderr, "larder render-template: write failed\n");
    else status = 0;
    goto done;
fail:
    fprintf(stderr, "larder render-template: %s\n", err.message);
done:
    free(out);
    if (parsed) openai_request_free(&req);
    chat_prompt_free(cp);
    free(rsrc);
    free(tsrc);
    return status;
}

int cmd_render_template(int argc, char **argv) {
    const char *tpath = NULL, *cpath = NULL, *rpath = NULL, *now = NULL, *bos = NULL, *eos = NULL;
    cli_option opts[] = {
        CLI_STR("--template", &tpath, "FILE", "the Jinja chat template"),
        CLI_STR("--context", &cpath, "FILE.json", "a JSON object whose keys are the template's variables"),
        CLI_STR("--request", &rpath, "FILE.json", "instead: a chat-completions request, rendered as larder serve does"),
        CLI_STR("--bos", &bos, "TEXT", "with --request: the model's BOS token text (default empty)"),
        CLI_STR("--eos", &eos, "TEXT", "with --request: the model's EOS token text (default empty)"),
        CLI_STR("--now", &now, "ISO-8601", "the local time strftime_now() reads (default: now)"),
    };
    static const char *usage = "larder render-template --template FILE (--context FILE.json | --request FILE.json)\n"
                               "                       [--now ISO-8601] [--bos TEXT] [--eos TEXT]";
    larder_error err = {0};
    bool done;
    int rc = cli_parse_or_exit("render-template", usage, argc, argv, opts, CLI_COUNT(opts), &done);
    if (done) return rc;
    if (tpath && rpath && !cpath) return render_request(tpath, rpath, bos, eos);
    if (!tpath || !cpath || rpath) { cli_print_help(stderr, usage, opts, CLI_COUNT(opts)); return 1; }
    jinja_render_options ro = {.mutate_own_values = true}; /* as chat_prompt renders */
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
