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
# Knobs: STEPS (ops logits bench profile), SHAPES (llama3-8b qwen3-30b-a3b
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
  logits)
    LARDER=$L SKIP_OPS=1 SHARED=$D TEST_TMP=/tmp timeout 400 bash tests/cuda/run.sh >"$OUT/run.txt" 2>&1
    summary+=("logits: $(tail -1 "$OUT/run.txt")")
    grep -E "^(PASS|FAIL)" "$OUT/run.txt"
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
