#!/usr/bin/env python3
"""test_jinja_requests.py — real agent requests rendered as `larder serve`
renders them, against Python's Jinja2 (templates/render_ref.py).

The requests are OpenCode's captured in $SHARED/traces (the first turn with
its 10 tools, the turn after a tool call with the call and its result, the
title request). larder renders each with `larder render-template --request`
(the server's path: openai_request parses the body, chat_prompt builds the
context); Jinja2 renders the same conversation built the way Hugging Face
chat templates expect it: text-part arrays joined into one string, tool-call
arguments (JSON strings on the wire) parsed into objects, tools as sent,
add_generation_prompt true, empty bos/eos texts. A case passes when the bytes
are identical. Templates: those of the models larder's users run with
agents (MiniMax-M2, Qwen3-Coder, Qwen3, Qwen2.5, Kimi K2 Instruct and Thinking,
whose tool-call queue mutates a list the template made).
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "templates"))
import render_ref  # noqa: E402

LARDER = os.environ.get("LARDER", os.path.join(HERE, "..", "..", "build", "larder"))
SHARED = os.environ.get("SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
TEMPLATES = ["MiniMax-M2", "Qwen3-Coder", "Qwen-Qwen3-0.6B", "Qwen-Qwen2.5-7B-Instruct", "Kimi-K2-Instruct",
             "Kimi-K2-Thinking"]
TRACES = ["opencode-turn1", "opencode-turn2-tool-result", "opencode-title-request"]


def hf_context(request):
    """The template variables a chat request becomes (see the module comment)."""
    messages = []
    for m in request["messages"]:
        m = dict(m)
        if isinstance(m.get("content"), list):
            m["content"] = "".join(p.get("text", "") for p in m["content"] if p.get("type") == "text")
        if m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                c = json.loads(json.dumps(c))
                args = c.get("function", {}).get("arguments")
                if isinstance(args, str):
                    try:
                        parsed = json.loads(args)
                        if isinstance(parsed, dict):
                            c["function"]["arguments"] = parsed
                    except ValueError:
                        pass
                calls.append(c)
            m["tool_calls"] = calls
        messages.append(m)
    ctx = {"messages": messages, "add_generation_prompt": True, "bos_token": "", "eos_token": ""}
    if request.get("tools"):
        ctx["tools"] = request["tools"]
    return ctx


def main():
    failed = passed = 0
    for tname in TEMPLATES:
        tpath = os.path.join(SHARED, "templates", tname + ".jinja")
        with open(tpath, encoding="utf-8") as f:
            compiled = render_ref.compile_template(f.read(), render_ref.DEFAULT_NOW)
        for trace in TRACES:
            name = f"{tname}/{trace}"
            rpath = os.path.join(SHARED, "traces", trace + ".json")
            with open(rpath, encoding="utf-8") as f:
                request = json.load(f)
            want = compiled.render(**hf_context(request))
            p = subprocess.run([LARDER, "render-template", "--template", tpath, "--request", rpath],
                               capture_output=True, timeout=60)
            got = p.stdout.decode("utf-8", "replace")
            if p.returncode != 0:
                failed += 1
                print(f"FAIL {name}: larder exit {p.returncode}: {p.stderr.decode()[:200]!r}")
            elif got != want:
                failed += 1
                i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
                print(f"FAIL {name}: differs at char {i} of {len(want)}: larder {got[max(0, i - 30):i + 40]!r} "
                      f"vs Jinja2 {want[max(0, i - 30):i + 40]!r}")
            elif len(want) < 1000:
                failed += 1
                print(f"FAIL {name}: the rendering is only {len(want)} characters (tools or history lost?)")
            else:
                passed += 1
                print(f"PASS {name}: {len(want)} characters identical")
    print(f"{passed} identical, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
