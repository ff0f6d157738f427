#!/usr/bin/env bash
# bench/cuda_pack.sh — packs what a GPU-machine call needs (the device tool
# sends the repo, up to 64 MiB with the shipped model) into
# .devcarry/NAME.tar.xz: stripped build-cuda binaries, the shared libraries
# larder links that a bare CUDA image lacks, the vocabularies the
# make-model presets use, and what bench/serve_gpu.sh reads (the agent
# replay's trace, the Llama 3.1 chat template). On the machine: tar xJf .devcarry/NAME.tar.xz -C .devcarry
# Usage: bash bench/cuda_pack.sh [NAME] [BUILD]   (defaults: main build-cuda)
set -eu
NAME=${1:-main}; B=${2:-build-cuda}; SH=${SHARED:-../shared}
D=.devcarry/$NAME
rm -rf "$D" && mkdir -p "$D/lib" "$D/vocab"
strip -o "$D/larder" "$B/larder"
strip -o "$D/cuda_ops_check" "$B/tests/cuda/cuda_ops_check"
for t in ${BENCHES:-cuda_gemv_bench}; do [ -x "$B/tests/cuda/$t" ] && strip -o "$D/$t" "$B/tests/cuda/$t"; done
ldd "$B/larder" | awk '$3 ~ /^\// {print $3}' | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt)\.so' |
  while read -r l; do cp -L "$l" "$D/lib/"; done
for v in llama-spm llama-bpe qwen2; do cp "$SH/vocab/ggml-vocab-$v.gguf" "$D/vocab/"; done
# bench/serve_gpu.sh (SHARED=$D): the agent replay's trace, the 8B shape's chat template
mkdir -p "$D/traces" "$D/templates"
cp "$SH/traces/opencode-turn1.json" "$D/traces/"
cp "$SH/templates/meta-llama-Llama-3.1-8B-Instruct.jinja" "$D/templates/"
tar cJf ".devcarry/$NAME.tar.xz" -C .devcarry "$NAME" && rm -rf "$D"
ls -la ".devcarry/$NAME.tar.xz"
