#!/usr/bin/env bash
# bench/cache_sim.sh — builds bench/cache_sim.c against build/liblarder.a,
# turns OpenCode's real requests (../shared/traces) into token ids (rendered
# with MiniMax-M2's chat template, tokenized with Qwen2's vocabulary as a
# stand-in: MiniMax's own is not in ../shared), and runs the simulation.
#
#   bash bench/cache_sim.sh [cache_sim options...]
#   e.g. bash bench/cache_sim.sh --sessions 4 --turns 40 --kv-type q8_0 --kv-memory 32G
#
# Environment: LARDER (default build/larder), SHARED (default ../shared),
# OUT (work folder, default /tmp/larder-cache-sim), TEMPLATE (default
# MiniMax-M2.jinja).
set -euo pipefail
cd "$(dirname "$0")/.."
LARDER=${LARDER:-$PWD/build/larder}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
OUT=${OUT:-/tmp/larder-cache-sim}
TEMPLATE=${TEMPLATE:-MiniMax-M2.jinja}
mkdir -p "$OUT"
make -s build/liblarder.a
if [ ! -x "$OUT/cache_sim" ] || [ "$OUT/cache_sim" -ot bench/cache_sim.c ] || [ "$OUT/cache_sim" -ot build/liblarder.a ]; then
  ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Isrc -o "$OUT/cache_sim" bench/cache_sim.c build/liblarder.a -lm -pthread
fi
for req in turn1 title-request; do
  python3 - "$SHARED/traces/opencode-$req.json" > "$OUT/$req.ctx.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
print(json.dumps({"messages": body["messages"], "tools": body.get("tools", []), "add_generation_prompt": True,
                  "bos_token": "", "eos_token": ""}))
PY
  "$LARDER" render-template --template "$SHARED/templates/$TEMPLATE" --context "$OUT/$req.ctx.json" --now 2026-01-01T00:00:00 > "$OUT/$req.txt"
  "$LARDER" tokenize --model "$SHARED/vocab/ggml-vocab-qwen2.gguf" --special - < "$OUT/$req.txt" > "$OUT/$req.ids.json"
done
"$OUT/cache_sim" --main-ids "$OUT/turn1.ids.json" --title-ids "$OUT/title-request.ids.json" "$@"
