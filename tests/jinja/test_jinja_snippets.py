#!/usr/bin/env python3
"""test_jinja_snippets.py — small templates covering each statement, operator,
filter, test and method larder's Jinja engine implements, rendered by larder
and by Jinja2 as Hugging Face configures it (templates/render_ref.py) with one
shared context; each must give identical bytes, or both must refuse.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "templates"))
import render_ref  # noqa: E402

LARDER = os.environ.get("LARDER", os.path.join(HERE, "..", "..", "build", "larder"))

CTX = {
    "s": "  Hello, World!  ", "name": "larder", "n": 7, "f": 2.5, "neg": -3, "big": 10 ** 15, "t": True, "nul": None,
    "items": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"b": 2, "a": 1, "c": {"x": [1, 2]}},
    "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "tool_calls": [{"name": "f"}]},
             {"role": "user", "content": "bye"}],
    "uni": "héllo wörld ✓ 日本", "quote": "it's \"q\" <a&b>", "nested": [[1, [2, 3]], {"k": None}], "empty": [],
    "multiline": "line1\nline2\n\nline4", "fl": [0.1, 1.5, 1e20, 1e-7, 3.25e5, -0.0],
}

SNIPPETS = [
    # printing and Python semantics
    "{{ items }}|{{ d }}|{{ nul }}|{{ t }}|{{ f }}|{{ 1.0 }}|{{ 10/4 }}|{{ 10//4 }}|{{ -7//2 }}|{{ -7%3 }}|{{ 2**10 }}|{{ 2**-1 }}",
    "{{ nested }}|{{ (1,) }}|{{ (1, 'a') }}|{{ quote }}|{{ [quote] }}|{{ {'k': quote} }}|{{ fl }}",
    "{{ missing }}|{{ missing is defined }}|{{ missing | default('dflt') }}|{{ '' | default('x', true) }}|{{ nul | d('y', boolean=true) }}",
    "{{ 'a' ~ 1 ~ none ~ 2.0 }}|{{ 'x' * 3 }}|{{ [1] * 2 }}|{{ [1] + [2] }}|{{ 3 > 2 > 1 }}|{{ 1 < 2 < 1 }}|{{ 'b' in 'abc' }}|{{ 4 not in items }}",
    "{{ n if t else 0 }}|{{ n if not t }}|{{ t and n }}|{{ nul or 'o' }}|{{ not n }}|{{ -n }}|{{ +f }}|{{ 'a' == 'a' }}|{{ 1 == 1.0 }}|{{ true == 1 }}",
    "{{ items[0] }}|{{ items[-1] }}|{{ items[1:] }}|{{ items[::-1] }}|{{ items[::2] }}|{{ uni[1:4] }}|{{ uni[::-1] }}|{{ s[2:7] }}|{{ d.c.x[1] }}|{{ d['c']['x'][0] }}|{{ items[10] }}",
    "{{ msgs[1].tool_calls[0].name }}|{{ msgs[0]['role'] }}|{{ d.items is defined }}|{{ d.get('a') }}|{{ d.get('zz', 5) }}|{{ d.zz }}|{{ d.keys() | list }}|{{ d.values() | list }}",
    "{{ items[0, 1] }}|{{ d[(1, 2)] }}",  # tuple subscripts
    "{{ items[1:2, 0] }}",  # Jinja2 compiles this to invalid Python; larder refuses too (found by fuzzing)
    # statements
    "{% for m in msgs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ m.role }};{% endfor %}",
    "{% for m in msgs %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if loop.nextitem else '-' }} {{ loop.cycle('odd', 'even') }}|{% endfor %}",
    "{% for x in empty %}no{% else %}empty{% endfor %}|{% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}",
    "{% set x = 1 %}{% for i in items %}{% set x = x + i %}{% endfor %}{{ x }}|{% set ns = namespace(total=0, seen=[]) %}{% for i in items %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set blk %}inner {{ n }}{% endset %}{{ blk }}|{% set up | upper %}shout{% endset %}{{ up }}",
    "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', who='c') }}",
    "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ n }}{% endcall %}",
    "{% macro lst(xs) %}{% for x in xs %}[{{ caller(x) }}]{% endfor %}{% endmacro %}{% call(v) lst(items) %}{{ v * 2 }}{% endcall %}",
    "{% filter upper %}hello {{ name }}{% endfilter %}|{% raw %}{{ not rendered }}{% endraw %}",
    "{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}|{% if nul %}x{% elif missing %}y{% endif %}",
    # whitespace control
    "a\n  {% if t %}\n    yes\n  {% endif %}\nb",
    "a\n  {%- if t -%}\n    yes\n  {%- endif -%}\nb",
    "a  {{- n -}}  b\n{# comment #}\nc\n  {#- c2 -#}  d",
    "x\n    {%+ if t %}keep{% endif %}\ny {%- if t +%}  z{% endif %}\n",
    "{% for i in items %}\n  - {{ i }}\n{% endfor %}\nend\n",
    # filters
    "{{ s | trim }}|{{ s | length }}|{{ uni | length }}|{{ s | lower }}|{{ s | upper }}|{{ 'hello world-foo(bar' | title }}|{{ 'hELLO wORLD' | capitalize }}",
    "{{ s | replace('l', 'L') }}|{{ s | replace('l', 'L', 2) }}|{{ words | join(', ') }}|{{ msgs | map(attribute='role') | join(',') }}|{{ words | map('upper') | list }}",
    "{{ items | select('odd') | list }}|{{ items | reject('odd') | list }}|{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}|{{ msgs | rejectattr('tool_calls') | map(attribute='content') | list }}",
    "{{ msgs | selectattr('tool_calls', 'defined') | list | count }}|{{ items | first }}|{{ items | last }}|{{ empty | first }}|{{ d | items | list }}|{{ d | list }}",
    "{{ items | string }}|{{ '42' | int + 1 }}|{{ '3.5' | float }}|{{ 'x' | int(7) }}|{{ 4.9 | int }}|{{ 5 | float }}|{{ items | sum }}|{{ items | max }}|{{ words | min }}|{{ fl | sum }}",
    "{{ words | unique | list }}|{{ ['a', 'A', 'b'] | unique(case_sensitive=true) | list }}|{{ d | dictsort }}|{{ d | dictsort(reverse=true) }}|{{ 'a b  c' | wordcount }}",
    "{{ multiline | indent }}|{{ multiline | indent(2, true) }}|{{ multiline | indent(first=true, blank=true) }}|{{ multiline | indent('>> ') }}",
    "{{ 2.567 | round }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 2.561 | round(1, 'floor') }}|{{ 2.561 | round(1, 'ceil') }}|{{ -4 | abs }}|{{ -2.5 | abs }}",
    "{{ items | batch(2) | list }}|{{ items | batch(2, 0) | list }}|{{ 'ab' | center(6) }}|{{ quote | escape }}|{{ quote | e }}|{{ items | reverse | list }}|{{ 'abc' | reverse }}",
    "{{ words | sort }}|{{ words | sort(reverse=true) }}|{{ words | sort(case_sensitive=true) }}|{{ msgs | sort(attribute='content') | map(attribute='content') | list }}",
    "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ uni | tojson }}|{{ quote | tojson }}|{{ fl | tojson }}|{{ nested | tojson(separators=(',', ':')) }}",
    "{{ {'b': 1, 'a': [1, {'z': 2, 'y': none}]} | tojson(sort_keys=true, indent=4) }}|{{ empty | tojson(indent=2) }}|{{ {} | tojson }}|{{ 'ü' | tojson(ensure_ascii=true) }}",
    "{{ 'x' | safe }}|{{ '<b>' | safe + '<i>' }}|{{ '%s-%d' | format('a', 3) }}|{{ 'a,b' ~ ('x' | string) }}|{{ 'hello' | truncate(3) }}",
    # tests
    "{{ n is odd }}{{ n is even }}{{ n is divisibleby 7 }}{{ n is number }}{{ f is float }}{{ n is integer }}{{ t is boolean }}{{ s is string }}{{ d is mapping }}",
    "{{ items is iterable }}{{ items is sequence }}{{ nul is none }}{{ t is true }}{{ nul is false }}{{ missing is undefined }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ n is eq 7 }}{{ n is ne 7 }}",
    "{{ n is gt 3 }}{{ n is lt 3 }}{{ n is ge 7 }}{{ n is le 6 }}{{ 2 is in items }}{{ greet is defined }}{{ n is not none }}{{ s is not string }}",
    # methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}",
    "{{ name.startswith('lar') }}|{{ name.endswith(('x', 'der')) }}|{{ name.upper() }}|{{ 'ABC'.lower() }}|{{ 'hello world'.title() }}|{{ 'hello'.capitalize() }}|{{ name.replace('r', 'R') }}",
    "{{ name.find('d') }}|{{ name.rfind('r') }}|{{ name.find('z') }}|{{ name.index('a') }}|{{ name.count('r') }}|{{ uni.find('w') }}|{{ '-'.join(words) }}",
    "{{ '{} and {}'.format('a', 'b') }}|{{ '{0}{1}{0}'.format('x', 'y') }}|{{ '{name}!'.format(name='n') }}|{{ '{:>5}|{:<4}|{:^7}|{:.2f}|{:05d}'.format('r', 'l', 'c', 3.14159, 42) }}",
    "{{ '123'.isdigit() }}{{ 'abc'.isalpha() }}{{ ' \\t'.isspace() }}{{ 'a1'.isalnum() }}{{ 'abc'.islower() }}{{ 'ABC'.isupper() }}{{ '12a'.isdigit() }}",
    "{{ items.index(2) }}|{{ items.count(3) }}|{{ d.copy() }}|{{ msgs[0].get('content') }}|{{ msgs[0].items() | list }}",
    # mutation: the template's own lists and dicts change (SandboxedEnvironment); the context's do not
    "{% set ns = namespace(ids=[]) %}{% set _ = ns.ids.append('a') %}{% set _ = ns.ids.append('b') %}{{ ns.ids }}|{{ ns.ids.pop(0) }}|{{ ns.ids }}|{{ ns.ids.pop() }}|{{ ns.ids }}",
    "{% set l = [1] %}{{ l.append(2) }}{{ l.extend([3, 4]) }}{{ l.insert(0, 0) }}{{ l }}|{% set c = items[:] %}{{ c.append(9) }}{{ c }}|{{ items }}",
    "{% set d2 = {'a': 1} %}{{ d2.update({'b': 2}) }}{{ d2.setdefault('c', 3) }}{{ d2.pop('a') }}{{ d2 }}|{% set d3 = d.copy() %}{{ d3.update(z=1) }}{{ d3 | length }}|{{ d | length }}",
    "{% set l = [] %}{% for m in msgs %}{% set _ = l.append(m.role) %}{% endfor %}{{ l | join(',') }}",
    # globals
    "{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}|{{ strftime_now('%Y-%m-%d %H:%M %A %B %d') }}",
    # errors: both must refuse
    "{{ raise_exception('custom failure') }}",
    "{{ missing.attr }}",
    "{{ 1 + 'a' }}",
    "{{ items.append(4) }}",
    "{{ d.update({'x': 1}) }}",
    "{{ msgs[0].pop('role') }}",
    "{{ (1, 2).append(3) }}",
    "{{ ns }}{% set ns = namespace(ids=msgs) %}{{ ns.ids.append(1) }}",
    "{% for x in 5 %}{% endfor %}",
    "{{ 1 / 0 }}",
    "{% if %}",
    "{{ x | nosuchfilter }}",
    "{% for %}",
    "{{ 'abc' | tojson(indent=missing_kw) }}{{ missing() }}",
    "{{ range(1000000) | list | length }}",
    "{{ '{0} {}'.format(1, 2) }}",
    "{{ 'ab'.strip('a', 'b') }}",
]


def main():
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        cpath = os.path.join(tmp, "ctx.json")
        with open(cpath, "w", encoding="utf-8") as f:
            json.dump(CTX, f)
        for i, src in enumerate(SNIPPETS):
            name = f"snippet_{i:02d}"
            tpath = os.path.join(tmp, f"{name}.jinja")
            with open(tpath, "w", encoding="utf-8") as f:
                f.write(src)
            try:
                want, want_err = render_ref.render(src, CTX), None
            except Exception as e:  # noqa: BLE001
                want, want_err = None, f"{type(e).__name__}: {e}"
            p = subprocess.run([LARDER, "render-template", "--template", tpath, "--context", cpath, "--now",
                                render_ref.DEFAULT_NOW], capture_output=True, timeout=30)
            got = p.stdout.decode("utf-8", "replace")
            err = p.stderr.decode("utf-8", "replace").strip()
            if p.returncode not in (0, 1) or (p.returncode == 1 and (not err or "\n" in err)):
                print(f"FAIL {name}: exit {p.returncode} stderr {err[:200]!r} for {src!r}")
                failed += 1
            elif want_err is not None:
                if p.returncode == 1:
                    print(f"PASS {name} (both refuse)")
                else:
                    print(f"FAIL {name}: Jinja2 raised {want_err!r}, larder printed {got!r} for {src!r}")
                    failed += 1
            elif p.returncode != 0:
                print(f"FAIL {name}: larder refused ({err}) for {src!r}; Jinja2 gave {want!r}")
                failed += 1
            elif got != want:
                print(f"FAIL {name}: {src!r}\n  larder: {got!r}\n  jinja2: {want!r}")
                failed += 1
            else:
                print(f"PASS {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
