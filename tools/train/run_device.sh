#!/usr/bin/env bash
# Runs on the GPU machine (through the session's device tool) from the repo
# root: a smoke run of the whole pipeline first, then the configs of
# configs.json, keeping the one with the best validation loss; results and
# the GGUF (in parts under 16 MiB) go to $OUT. Data: .dev/train-data from
# `node tools/train/corpus.mjs prepare .dev/train-data` plus the vocab GGUF
# copied there.
set -euo pipefail
export PYTHONUNBUFFERED=1
D=.dev/train-data
OUT=${OUT:-/tmp/train-out}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 tools/train/train.py --data $D --out /tmp/smoke --vocab $D/ggml-vocab-llama-spm.gguf \
  --only smoke --time-limit 60
python3 tools/train/train.py --data $D --out "$OUT" --vocab $D/ggml-vocab-llama-spm.gguf \
  --only "${CONFIGS:-d384-drop0.1,d384-drop0.2,d512-drop0.2}" --time-limit "${TIME_LIMIT:-150}"
