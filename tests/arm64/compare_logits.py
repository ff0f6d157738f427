#!/usr/bin/env python3
# compare_logits.py REF GOT TOL — two `larder logits --top 40` outputs (32
# positions, JSON lines) agree: |Δp| <= TOL for every id in the union of both
# top-10 sets (an id missing from one top 40 counts with that side's 40th
# probability, a lower bound of the difference), and the same top token where
# REF's top two differ by more than 0.05 (tests/model/test_agreement.mjs's
# rules). Prints the worst |Δp|; exit 1 when over.
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
tol = float(sys.argv[3])
assert len(ref) == len(got) == 32, (len(ref), len(got))
worst, at, bad_top = 0.0, None, []
for pos, (r, g) in enumerate(zip(ref, got)):
    rm, gm = dict(map(tuple, r)), dict(map(tuple, g))
    rfloor, gfloor = r[-1][1], g[-1][1]
    for i in {e[0] for e in r[:10]} | {e[0] for e in g[:10]}:
        if i in rm and i in gm: d = abs(rm[i] - gm[i])
        elif i in rm: d = max(0.0, rm[i] - gfloor)   # missing from GOT's top 40
        else: d = max(0.0, gm[i] - rfloor)
        if d > worst: worst, at = d, (pos, i)
    if r[0][1] - r[1][1] > 0.05 and g[0][0] != r[0][0]: bad_top.append(pos)
msg = f"worst |dp| {worst:.2e} (position/id {at}; tolerance {tol:g})"
if worst > tol or bad_top:
    print(msg + (f", top token differs at positions {bad_top}" if bad_top else "")); sys.exit(1)
print(msg)
