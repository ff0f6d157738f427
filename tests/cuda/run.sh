#!/usr/bin/env bash
# tests/cuda/run.sh — the CUDA backend on a GPU machine (needs a GPU; not part
# of `make test`). Runs:
#   1. cuda_ops_check: every op of the CUDA backend against a reference
#   2. `larder logits --device cuda` against `--device cpu` on random-weight
#      models from `larder make-model`: archs llama (with rope_freqs), qwen2
#      (biases), qwen3 (q/k norms) x weights f32 f16 q8_0 q4_k_m x every KV
#      type, 300 tokens (two forward chunks: prefill GEMM, decode-size tail).
#      Pass: max |Δp| over the top-40 lists <= 2e-3 (f32/f16 weights) or
#      5e-2 (quantized), and the same top token wherever the CPU's top two
#      differ by more than 0.05. Where the CPU against its own other kernel
#      sets (LARDER_CPU=scalar, avx2) already differs by more than that (4-bit
#      KV, expert choices: last-bit differences become quant steps or
#      experts), within twice that floor; both figures are printed.
#   3. greedy continuations (`larder generate --temperature 0`) equal on
#      the f32 models.
#   4. the mixture-of-experts archs (qwen3moe: softmax gating; minimax-m2:
#      sigmoid gating with a selection bias, whole-row q/k norms), 16
#      experts of which 4 are used, f32 and q4_k_m weights, KV f16 and q8_0.
# Usage: LARDER=build-cuda/larder OPS=build-cuda/tests/cuda/cuda_ops_check \
#        SHARED=../shared bash tests/cuda/run.sh
# Last line: "N passed, N failed"; exit 1 on a failure.
set -u
LARDER=${LARDER:-build-cuda/larder}
OPS=${OPS:-build-cuda/tests/cuda/cuda_ops_check}
SHARED=${SHARED:-../shared}
T=${TEST_TMP:-/tmp}/cuda_run; mkdir -p "$T"
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

if [ "${SKIP_OPS:-0}" != 1 ]; then # SKIP_OPS=1: the caller ran it
  echo "== cuda_ops_check"
  if "$OPS" >"$T/ops.txt" 2>&1; then ok "cuda_ops_check ($(tail -1 "$T/ops.txt"))"
  else bad "cuda_ops_check" "$(grep -E 'FAIL|cuda_ops_check' "$T/ops.txt" | head -20)"; fi
  cat "$T/ops.txt"
fi

TOKENS=$(python3 -c 'import random; r=random.Random(7); print(",".join(str(r.randrange(3, 30000)) for _ in range(300)))')
SHAPE="--dim 256 --ff 512 --heads 4 --kv-heads 2 --layers 3"

# worst |Δp| between two logits files (top-40 lists) and the clear positions
# (the first file's top two > 0.05 apart) where their top tokens differ
dp() { # a.txt b.txt -> "worst top_bad top_n"
  python3 - "$@" <<'PY'
import json, sys
C = [json.loads(l) for l in open(sys.argv[1])]
G = [json.loads(l) for l in open(sys.argv[2])]
assert len(C) == len(G) and len(C) > 0, (len(C), len(G))
worst, top_bad, top_n = 0.0, 0, 0
for c, g in zip(C, G):
    dc, dg = dict((i, p) for i, p in c), dict((i, p) for i, p in g)
    mc, mg = min(dc.values()), min(dg.values())
    for i, p in dc.items():
        worst = max(worst, abs(p - dg[i]) if i in dg else max(0.0, p - mg))
    for i, p in dg.items():
        worst = max(worst, abs(p - dc[i]) if i in dc else max(0.0, p - mc))
    if len(c) > 1 and c[0][1] - c[1][1] > 0.05:
        top_n += 1
        if g[0][0] != c[0][0]: top_bad += 1
print(f"{worst:.3e} {top_bad} {top_n}")
PY
}

# ARCHS, WTS, KVS narrow the matrix (all by default)
for arch in ${ARCHS:-llama qwen2 qwen3 qwen3moe minimax-m2}; do
  case $arch in
    llama) vocab=ggml-vocab-llama-spm.gguf; extra="--rope-freqs" ;;
    qwen3moe|minimax-m2) vocab=ggml-vocab-llama-bpe.gguf; extra="--experts 16 --experts-used 4 --ff-exp 256" ;;
    *) vocab=ggml-vocab-llama-bpe.gguf; extra="" ;;
  esac
  wts="f32 f16 q8_0 q4_k_m"; kvs="f16 f32 bf16 q8_0 q4_0"
  case $arch in qwen3moe|minimax-m2) wts="f32 q4_k_m"; kvs="f16 q8_0" ;; esac
  wts=${WTS:-$wts}; kvs=${KVS:-$kvs}
  for wt in $wts; do
    M=$T/$arch-$wt.gguf
    if ! "$LARDER" make-model --arch $arch --vocab "$SHARED/vocab/$vocab" $SHAPE $extra --type $wt --out "$M" --quiet \
         >"$T/mm.txt" 2>&1; then bad "make-model $arch $wt" "$(cat "$T/mm.txt")"; continue; fi
    tol=5e-2; case $wt in f32|f16) tol=2e-3 ;; esac
    for kv in $kvs; do
      name="logits $arch $wt kv=$kv"
      "$LARDER" logits --model "$M" --tokens "$TOKENS" --top 40 --kv-type $kv --device cpu >"$T/c.txt" 2>"$T/ce.txt" ||
        { bad "$name" "cpu: $(cat "$T/ce.txt")"; continue; }
      "$LARDER" logits --model "$M" --tokens "$TOKENS" --top 40 --kv-type $kv --device cuda >"$T/g.txt" 2>"$T/ge.txt" ||
        { bad "$name" "cuda: $(cat "$T/ge.txt")"; continue; }
      # The floor: the CPU against its own other kernel sets (scalar, and
      # AVX2 where it runs AVX-512): the same arithmetic in another float
      # order. A 4-bit KV cache or an expert choice turns last-bit
      # differences into whole quant steps or whole experts, so on these
      # random models two correct CPU builds already differ by it (qwen3 f32
      # kv=q4_0: AVX-512 vs AVX2 2.1e-3 here). The GPU passes at the issue's
      # tolerance, or, where the floor itself is above it, within twice it.
      floor=0
      for lv in scalar avx2; do
        LARDER_CPU=$lv "$LARDER" logits --model "$M" --tokens "$TOKENS" --top 40 --kv-type $kv --device cpu \
          >"$T/s.txt" 2>"$T/se.txt" || { echo "cpu $lv: $(cat "$T/se.txt")"; continue; }
        read -r f _ _ <<<"$(dp "$T/c.txt" "$T/s.txt")"
        floor=$(python3 -c 'import sys; print(max(map(float, sys.argv[1:])))' "$floor" "$f")
      done
      read -r worst top_bad top_n <<<"$(dp "$T/c.txt" "$T/g.txt")"
      verdict=$(python3 -c 'import sys; w,t,f,b=map(float,sys.argv[1:]); print("PASS" if b==0 and (w<=t or (f>t and w<=2*f)) else "FAIL")' \
        "$worst" "$tol" "$floor" "$top_bad")
      line="$verdict $name: max|dp| $worst (tol $tol; cpu vs its other kernels $floor), top token differs at $top_bad of $top_n clear positions"
      echo "$line"
      if [ $verdict = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
    done
    if [ $wt = f32 ]; then
      P=$(echo "$TOKENS" | cut -d, -f1-40)
      for dev in cpu cuda; do
        "$LARDER" generate --model "$M" --tokens "$P" --max-tokens 48 --temperature 0 --device $dev --json \
          >"$T/gen-$dev.json" 2>"$T/gen-$dev.err"
      done
      a=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$T/gen-cpu.json" 2>&1)
      b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$T/gen-cuda.json" 2>&1)
      if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "greedy $arch f32: 48 tokens equal"
      else bad "greedy $arch f32" "cpu $a / cuda $b $(cat "$T/gen-cuda.err")"; fi
    fi
  done
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
