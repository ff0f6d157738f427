/*
 * main.c — the `larder` command: dispatches to one subcommand per file
 * (src/cli/cmd_<name>.c, each defining `int cmd_<name>(int argc, char **argv)`).
 *
 * Subcommands are declared weak so the program links while one is still being
 * written; a missing one answers "not built". Subcommands print their own
 * errors (one line on stderr) and return the process exit status.
 */
#include <stdio.h>
#include <string.h>

typedef int (*cmd_fn)(int argc, char **argv);

#define DECLARE_CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak))
DECLARE_CMD(serve);
DECLARE_CMD(logits);
DECLARE_CMD(bench);
DECLARE_CMD(make_model);
DECLARE_CMD(tokenize);
DECLARE_CMD(detokenize);
DECLARE_CMD(generate);
DECLARE_CMD(render_template);
DECLARE_CMD(gguf_info);
DECLARE_CMD(perplexity);

static const struct {
    const char *name;
    cmd_fn fn;
    const char *summary;
} commands[] = {
    {"serve", cmd_serve, "serve a model over an OpenAI-compatible HTTP API"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cmd_detokenize, "print the text of token ids"},
    {"logits", cmd_logits, "print top next-token probabilities per position"},
    {"perplexity", cmd_perplexity, "perplexity of a model over a text file"},
    {"bench", cmd_bench, "measure prompt-processing and generation speed"},
    {"make-model", cmd_make_model, "write a random-weight GGUF model"},
    {"render-template", cmd_render_template, "render a chat template with a JSON context"},
    {"gguf-info", cmd_gguf_info, "print a GGUF file's metadata and tensors"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: larder <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`larder <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        /* No command: serve the default model (make run). */
        if (cmd_serve) return cmd_serve(argc, argv);
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (!commands[i].fn) {
            fprintf(stderr, "larder: command '%s' is not built in this version\n", argv[1]);
            return 1;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "larder: unknown command '%s' (try `larder --help`)\n", argv[1]);
    return 1;
}
