#!/usr/bin/env bash
# Runs on the GPU machine (through the session's device tool) from the repo
# root: a smoke run of the whole pipeline first, then the configs of
# configs.json, keeping the one with the best validation loss; results and
# the GGUF (in parts under 16 MiB) go to $OUT. Data: .dev/train-data from
# `node tools/train/corpus.mjs prepare .dev/train-data` plus the vocab GGUF
# copied there. CONFIGS picks configs (comma-separated names); the default is
# the shipped model's. The sweep that chose it (MODEL_CARD.md) was
# CONFIGS=d384-drop0.1,d384-drop0.2,d512-drop0.2 and then
# CONFIGS=d512-drop0.2-s800,d512-drop0.3-s1000,d512-drop0.3-wd0.5-s1000,d384x8-drop0.25-s1000,d512-drop0.4-s1400
set -euo pipefail
export PYTHONUNBUFFERED=1
D=.dev/train-data
OUT=${OUT:-/tmp/train-out}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
[ "${SKIP_SMOKE:-0}" = 1 ] || python3 tools/train/train.py --data $D --out /tmp/smoke \
  --vocab $D/ggml-vocab-llama-spm.gguf --only smoke --time-limit 60
python3 tools/train/train.py --data $D --out "$OUT" --vocab $D/ggml-vocab-llama-spm.gguf \
  --only "${CONFIGS:-d512-drop0.3-wd0.5-s1000}" --time-limit "${TIME_LIMIT:-150}"
