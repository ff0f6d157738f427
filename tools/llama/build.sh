#!/usr/bin/env bash
# Builds tools/llama/llama_min (see its header) into build/llama_min against
# the libllama that node-llama-cpp ships, with the headers of its own source
# bundle (cloned by tools/deps.sh into node_modules/.llama-src).
set -euo pipefail
cd "$(dirname "$0")/../.."
BINS=$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
SRC=$PWD/node_modules/.llama-src
[ -d "$SRC/include" ] || bash tools/deps.sh
mkdir -p build
out=build/llama_min
if [ ! -x $out ] || [ tools/llama/llama_min.c -nt $out ]; then
  gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I"$SRC/include" -I"$SRC/ggml/include" -DLLAMA_BINS_DIR="\"$BINS\"" tools/llama/llama_min.c \
    -L"$BINS" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" -o $out
fi
echo "$out"
