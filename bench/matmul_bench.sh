#!/usr/bin/env bash
# Builds and runs bench/matmul_bench.c (CPU matmul micro-benchmark at
# TinyLlama shapes) against the library's base, tensor and backend modules.
#   bash bench/matmul_bench.sh [threads] [prefill_tokens]
# LARDER_CPU=avx2|scalar caps the kernel level; BUILD picks the build dir.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-/tmp/larder-matmul-bench}
make -s BUILD="$B" MODULES="base tensor backend" "$B/liblarder.a" >/dev/null
gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Isrc -pthread \
    -o "$B/matmul_bench" bench/matmul_bench.c "$B/liblarder.a" -lm
exec "$B/matmul_bench" "$@"
