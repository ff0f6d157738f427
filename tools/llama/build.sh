#!/usr/bin/env bash
# Builds tools/llama/llama_min (see its header) into build/llama_min against
# the libllama that node-llama-cpp ships, with the headers of its own source
# bundle (cloned by tools/deps.sh into node_modules/.llama-src). Prints the
# binary's path. The headers must be those of the binaries' release: the
# bundle's release (llama.cpp.info.json) is checked against the one the
# binaries were built from (_nlcBuildMetadata.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
BINS=$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
SRC=$PWD/node_modules/.llama-src
[ -d "$SRC/include" ] || bash tools/deps.sh >&2
release() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
  const r=process.argv[2]==="bins"?j.buildOptions.llamaCpp.release:j.tag; if(!r)process.exit(1); console.log(r)' "$@"; }
src_rel=$(release node_modules/node-llama-cpp/llama/llama.cpp.info.json src)
bin_rel=$(release "$BINS/_nlcBuildMetadata.json" bins)
if [ "$src_rel" != "$bin_rel" ]; then
  echo "tools/llama/build.sh: headers are llama.cpp $src_rel but the binaries are $bin_rel" >&2
  exit 1
fi
mkdir -p build
out=build/llama_min
if [ ! -x $out ] || [ tools/llama/llama_min.c -nt $out ] || [ tools/llama/build.sh -nt $out ]; then
  gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wvla -I"$SRC/include" -I"$SRC/ggml/include" \
    -DLLAMA_BINS_DIR="\"$BINS\"" tools/llama/llama_min.c \
    -L"$BINS" -l:libllama.$bin_rel.so -l:libggml.$bin_rel.so -l:libggml-base.so -Wl,-rpath,"$BINS" -o $out
fi
echo "$out"
