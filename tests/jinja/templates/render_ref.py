#!/usr/bin/env python3
"""render_ref.py — the reference renderer for larder's chat-template engine.

Renders a chat template with Python's Jinja2 configured the way Hugging Face
transformers configures its chat-template environment
(transformers/utils/chat_template_utils.py, _compile_jinja_template):
a sandboxed environment (trim_blocks=True, lstrip_blocks=True,
extensions=[AssistantTracker, loopcontrols]), `tojson` replaced by json.dumps with
ensure_ascii=False / indent / separators / sort_keys, and the globals
raise_exception(message) and strftime_now(format) — here with a fixed clock.

The sandbox is Jinja2's SandboxedEnvironment (as llama.cpp's engine, it lets
a template mutate its own lists and dicts: Kimi K2's namespace(ids=[]) queue
calls append and pop) with one restriction of ImmutableSandboxedEnvironment
kept for the caller's data: the lists and dicts of the render's context may
not be mutated (CallerDataSandbox). That is larder's mutate_own_values.

  render_ref.py TEMPLATE CONTEXT.json [--now 2025-03-07T10:30:00]
prints the rendering with no added newline, or one error line on stderr and
exit status 1. Imported, render(source, context, now) does the same.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import SandboxedEnvironment, modifies_known_mutable

DEFAULT_NOW = "2025-03-07T10:30:00"


class AssistantTracker(Extension):
    """transformers' {% generation %}...{% endgeneration %} tag: renders its
    body through a call block (HF also records the assistant-token span, which
    does not change the text)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


class CallerDataSandbox(SandboxedEnvironment):
    """SandboxedEnvironment, except that the containers of the context being
    rendered (their ids in `frozen`) are immutable, as in
    ImmutableSandboxedEnvironment."""

    frozen = frozenset()

    def is_safe_attribute(self, obj, attr, value):
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return not (id(obj) in self.frozen and modifies_known_mutable(obj, attr))


def container_ids(value, out):
    """The ids of every list and dict inside value."""
    if isinstance(value, (list, dict)):
        if id(value) in out:
            return out
        out.add(id(value))
        for v in value.values() if isinstance(value, dict) else value:
            container_ids(v, out)
    return out


class Compiled:
    """A compiled template whose render(**context) freezes that context."""

    def __init__(self, env, template):
        self.env, self.template = env, template

    def render(self, **context):
        ids = set()
        for v in context.values():  # (the values stay alive during the render: their ids are not reused)
            container_ids(v, ids)
        self.env.frozen = frozenset(ids)
        try:
            return self.template.render(**context)
        finally:
            self.env.frozen = frozenset()


def make_env(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = CallerDataSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def compile_template(source, now=DEFAULT_NOW):
    """The compiled template (raises TemplateSyntaxError like HF would)."""
    env = make_env(datetime.fromisoformat(now))
    return Compiled(env, env.from_string(source))


def render(source, context, now=DEFAULT_NOW):
    return compile_template(source, now).render(**context)


def main(argv):
    if len(argv) < 3:
        print("usage: render_ref.py TEMPLATE CONTEXT.json [--now ISO-8601]", file=sys.stderr)
        return 2
    now = DEFAULT_NOW
    if len(argv) >= 5 and argv[3] == "--now":
        now = argv[4]
    with open(argv[1], encoding="utf-8") as f:
        source = f.read()
    with open(argv[2], encoding="utf-8") as f:
        context = json.load(f)
    try:
        out = render(source, context, now)
    except Exception as e:  # noqa: BLE001 - any Jinja2 failure is a refusal
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
