#!/usr/bin/env python3
"""test_jinja_reference.py — larder's chat-template engine against Python's
Jinja2 (configured as Hugging Face does: templates/render_ref.py).

Every template in $SHARED/templates × every conversation in
templates/contexts/*.json is rendered by both; a case passes when the bytes
are identical, or when both refuse (Jinja2 raises and larder exits 1 with a
message). Prints one PASS/FAIL line per case and the count of identical
renderings. JINJA_DIFF=1 prints the first differing position of failures.
"""
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "templates"))
import render_ref  # noqa: E402

LARDER = os.environ.get("LARDER", os.path.join(HERE, "..", "..", "build", "larder"))
SHARED = os.environ.get("SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
NOW = render_ref.DEFAULT_NOW


def main():
    templates = sorted(glob.glob(os.path.join(SHARED, "templates", "*.jinja")))
    contexts = sorted(glob.glob(os.path.join(HERE, "templates", "contexts", "*.json")))
    if not templates or not contexts:
        print(f"FAIL setup: no templates ({len(templates)}) or contexts ({len(contexts)})")
        return 1
    show = os.environ.get("JINJA_DIFF")
    identical = refused_both = failed = 0
    for tpath in templates:
        with open(tpath, encoding="utf-8") as f:
            source = f.read()
        tname = os.path.basename(tpath)[:-6]
        try:
            compiled, compile_err = render_ref.compile_template(source, NOW), None
        except Exception as e:  # noqa: BLE001
            compiled, compile_err = None, f"{type(e).__name__}: {e}"
        for cpath in contexts:
            cname = os.path.basename(cpath)[:-5]
            name = f"{tname}/{cname}"
            with open(cpath, encoding="utf-8") as f:
                ctx = json.load(f)
            want, want_err = None, compile_err
            if compiled is not None:
                try:
                    want = compiled.render(**ctx)
                except Exception as e:  # noqa: BLE001
                    want_err = f"{type(e).__name__}: {e}"
            p = subprocess.run([LARDER, "render-template", "--template", tpath, "--context", cpath, "--now", NOW],
                               capture_output=True, timeout=60)
            got = p.stdout.decode("utf-8", "replace")
            err_line = p.stderr.decode("utf-8", "replace").strip()
            if p.returncode not in (0, 1) or (p.returncode == 1 and (not err_line or "\n" in err_line)):
                failed += 1
                print(f"FAIL {name}: larder exit {p.returncode}, stderr {err_line[:200]!r}")
                continue
            if want_err is not None:
                if p.returncode == 1:
                    refused_both += 1
                    print(f"PASS {name} (both refuse: {want_err[:80]!r})")
                else:
                    failed += 1
                    print(f"FAIL {name}: Jinja2 raised {want_err[:120]!r} but larder rendered {len(got)} chars")
                continue
            if p.returncode != 0:
                failed += 1
                print(f"FAIL {name}: larder refused: {err_line[:200]}")
                continue
            if got == want:
                identical += 1
                print(f"PASS {name}")
                continue
            failed += 1
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            print(f"FAIL {name}: differs at char {i}: larder {got[max(0, i - 30):i + 40]!r} vs Jinja2 {want[max(0, i - 30):i + 40]!r}")
            if show:
                print("---- larder\n" + got + "\n---- jinja2\n" + want + "\n----")
    total = len(templates) * len(contexts)
    print(f"identical renderings: {identical}/{total - refused_both} ({refused_both} refused by both, {failed} differ)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
