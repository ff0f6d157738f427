#!/usr/bin/env bash
# test_logits_cli.sh — `larder logits` and `larder bench` through the CLI:
# output shape (one JSON line per position, K pairs, probabilities sorted and
# summing to at most 1), clear one-line errors with exit 1 for a missing
# file, a bad token id and a malformed list; bench --json fields.
set -u
T=${TEST_TMP:-/tmp}/logits_cli; mkdir -p "$T"
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=1; }
M=$T/tiny.gguf
"$LARDER" make-model --arch llama --vocab "$SHARED/vocab/ggml-vocab-llama-spm.gguf" --dim 64 --ff 128 --heads 4 \
  --kv-heads 2 --layers 2 --type q8_0 --out "$M" --quiet >/dev/null 2>&1 || { echo "FAIL setup: make-model"; exit 1; }

out=$("$LARDER" logits --model "$M" --tokens 1,450,4996,17354 --top 5 --threads 2 2>"$T/err"); rc=$?
if [ $rc -eq 0 ] && python3 - "$out" <<'PY'
import json, sys
lines = sys.argv[1].strip().split("\n")
assert len(lines) == 4, len(lines)
for l in lines:
    row = json.loads(l)
    assert len(row) == 5
    ps = [p for _, p in row]
    assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1.0 + 1e-6
    assert all(isinstance(i, int) and 0 <= i < 32000 for i, _ in row)
PY
then pass "logits output shape"; else fail "logits output shape" "rc=$rc $(head -c 300 <<<"$out")"; fi

check_err() { # name expected-substring args...
  local name=$1 want=$2; shift 2
  local o e rc
  o=$("$LARDER" logits "$@" 2>"$T/err"); rc=$?
  e=$(cat "$T/err")
  if [ $rc -eq 1 ] && [ -z "$o" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "$want" "$T/err"; then pass "$name"
  else fail "$name" "rc=$rc stdout='${o:0:80}' stderr='$e'"; fi
}
check_err "missing file" "nope.gguf" --model "$T/nope.gguf" --tokens 1,2
check_err "token id out of range" "out of range" --model "$M" --tokens 1,32000
check_err "negative token id" "" --model "$M" --tokens 1,-3
check_err "malformed token list" "" --model "$M" --tokens 1,,x
check_err "not a gguf" "" --model "$0" --tokens 1

b=$("$LARDER" bench --model "$M" --threads 2 --prompt-tokens 32 --gen-tokens 8 --json 2>"$T/err"); rc=$?
if [ $rc -eq 0 ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["prefill_tok_s"]>0 and o["decode_tok_s"]>0 and o["threads"]==2' "$b"
then pass "bench json"; else fail "bench json" "rc=$rc $b $(cat "$T/err")"; fi
exit $fails
