#!/usr/bin/env bash
# bench/cuda_pack.sh — packs what a GPU-machine call needs (the device tool
# sends the repo, up to 64 MiB with the shipped model) into
# .devcarry/NAME.tar.xz: stripped build-cuda binaries, the shared libraries
# larder links that a bare CUDA image lacks, and the vocabularies the
# make-model presets use. On the machine: tar xJf .devcarry/NAME.tar.xz -C .devcarry
# Usage: bash bench/cuda_pack.sh [NAME] [BUILD]   (defaults: main build-cuda)
set -eu
NAME=${1:-main}; B=${2:-build-cuda}; SH=${SHARED:-../shared}
D=.devcarry/$NAME
rm -rf "$D" && mkdir -p "$D/lib" "$D/vocab"
strip -o "$D/larder" "$B/larder"
strip -o "$D/cuda_ops_check" "$B/tests/cuda/cuda_ops_check"
ldd "$B/larder" | awk '$3 ~ /^\// {print $3}' | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt)\.so' |
  while read -r l; do cp -L "$l" "$D/lib/"; done
for v in llama-spm llama-bpe qwen2; do cp "$SH/vocab/ggml-vocab-$v.gguf" "$D/vocab/"; done
tar cJf ".devcarry/$NAME.tar.xz" -C .devcarry "$NAME" && rm -rf "$D"
ls -la ".devcarry/$NAME.tar.xz"
