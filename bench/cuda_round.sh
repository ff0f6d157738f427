#!/usr/bin/env bash
# bench/cuda_round.sh — one round of CUDA work on a GPU machine, in one call
# (the device time is short and each call starts a machine): the ops check,
# the logits agreement (tests/cuda/run.sh, narrowed by ARCHS/WTS/KVS), then
# `larder bench` on the model shapes of issue 12 with the variants named in
# VARIANTS (environment settings, A/B in the same run on the same card).
#
# Usage (from the repo root on the GPU machine; D holds larder,
# cuda_ops_check and a vocab/ folder with the vocabularies the presets use):
#   D=.devcarry/main OUT=/tmp/out STEPS="ops logits bench" bash bench/cuda_round.sh
# Knobs: STEPS (ops attn logits bench profile ncu), SHAPES (llama3-8b qwen3-30b-a3b
# minimax-m2-reap50:24), BENCH_ARGS (default "--prompt-tokens 512
# --gen-tokens 128"), VARIANTS (";"-separated env settings, "-" = none).
# Writes $OUT/ops.txt, $OUT/run.txt, $OUT/bench.jsonl; prints a table last.
set -u
D=${D:-.devcarry/main}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
L=$D/larder
# the shared libraries larder links (libmicrohttpd, pcre2, gnutls...) travel in $D/lib
export LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export SHARED=$D
STEPS=${STEPS:-ops logits bench}
SHAPES=${SHAPES:-llama3-8b}
BENCH_ARGS=${BENCH_ARGS:---prompt-tokens 512 --gen-tokens 128}
VARIANTS=${VARIANTS:--}
MODELS=${MODELS:-/tmp/models}
mkdir -p "$MODELS"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader
summary=()

for step in $STEPS; do
  case $step in
  ops)
    timeout 300 "$D/cuda_ops_check" >"$OUT/ops.txt" 2>&1
    summary+=("ops check: $(tail -1 "$OUT/ops.txt")")
    grep -E "^FAIL" "$OUT/ops.txt" | head -20
    ;;
  attn)
    # scalar vs tensor-core attention (tests/cuda/cuda_attn_bench.cu)
    timeout 120 "$D/cuda_attn_bench" 2>&1 | tee "$OUT/attn.txt"
    summary+=("attn bench: $(grep -c ratio "$OUT/attn.txt") cases")
    ;;
  logits)
    LARDER=$L SKIP_OPS=1 SHARED=$D TEST_TMP=/tmp timeout 400 bash tests/cuda/run.sh >"$OUT/run.txt" 2>&1
    summary+=("logits: $(tail -1 "$OUT/run.txt")")
    grep -E "^(PASS|FAIL)" "$OUT/run.txt"
    ;;
  ncu)
    # kernel times of decode steps, by kernel name, on the shapes cut to 4
    # layers (same per-layer kernels; ncu replays each kernel, so keep it small)
    for shape in $SHAPES; do
      preset=${shape%%:*}
      M=$MODELS/$preset-ncu4.gguf
      [ -f "$M" ] || "$L" make-model --preset "$preset" --layers 4 --type q4_k_m --out "$M" --quiet || continue
      NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      LARDER_CUDA_GRAPH=0 timeout 240 "$NCU" --metrics gpu__time_duration.sum --csv --log-file "$OUT/ncu-$preset.csv" \
        "$L" bench --model "$M" --prompt-tokens 4 --gen-tokens 4 --device cuda >/dev/null 2>&1
      python3 - "$OUT/ncu-$preset.csv" "$preset" <<'PY' | tee "$OUT/ncu-$preset.txt"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 14 and r[12] == "gpu__time_duration.sum"]
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    name = r[4].split("(")[0].split("<")[0] + ("<" + r[4].split("<")[1].split(">")[0] + ">" if "<" in r[4] else "")
    v = float(r[14].replace(",", "")); unit = r[13]
    us = v / 1000 if unit in ("nsecond", "ns") else v * 1000 if unit in ("msecond", "ms") else v
    tot[name] += us; cnt[name] += 1
print(f"ncu {sys.argv[2]} (4 layers, 5 steps of <= 4 tokens): {sum(tot.values()):.1f} us in {sum(cnt.values())} kernels")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:18]:
    print(f"  {v:9.1f} us {cnt[k]:5d} x {v / cnt[k]:7.2f} us  {k[:90]}")
PY
    done
    ;;
  bench|profile)
    for shape in $SHAPES; do
      preset=${shape%%:*}; layers=""
      [ "$preset" != "$shape" ] && layers="--layers ${shape##*:}"
      M=$MODELS/$preset${layers:+-${shape##*:}}.gguf
      if [ ! -f "$M" ]; then
        t0=$(date +%s)
        "$L" make-model --preset "$preset" $layers --type q4_k_m --out "$M" --quiet || { echo "make-model $shape failed"; continue; }
        echo "make-model $shape: $(( $(date +%s) - t0 )) s, $(stat -c %s "$M") bytes"
      fi
      if [ $step = profile ]; then
        LARDER_CUDA_PROFILE=1 "$L" bench --model "$M" $BENCH_ARGS --device cuda --json >"$OUT/profile-$preset.json" 2>"$OUT/profile-$preset.txt"
        tail -40 "$OUT/profile-$preset.txt"
        continue
      fi
      IFS=';' read -ra vs <<<"$VARIANTS"
      for v in "${vs[@]}"; do
        envs=(); [ "$v" != "-" ] && read -ra envs <<<"$v"
        r=$(env "${envs[@]}" "$L" bench --model "$M" $BENCH_ARGS --device cuda --json 2>"$OUT/bench-err.txt" | tail -1)
        [ -z "$r" ] && r="{\"error\": \"$(tail -3 "$OUT/bench-err.txt" | tr '\n"' ' _')\"}"
        echo "{\"shape\": \"$shape\", \"variant\": \"$v\", \"result\": $r}" >>"$OUT/bench.jsonl"
        summary+=("$shape [$v]: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(" ".join(f"{k}={r[k]}" for k in ("prefill_tok_s","decode_tok_s","decode_gb_s","error") if k in r))' "$r")")
      done
    done
    ;;
  esac
done
echo "==== summary"
printf '%s\n' "${summary[@]}"
