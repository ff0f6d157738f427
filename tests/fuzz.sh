#!/usr/bin/env bash
# fuzz.sh — builds every tests/**/fuzz_*.c as a libFuzzer program (clang,
# -fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS
# (default 60) on a seed corpus, stopping at the first crash.
#
# Sources: a fuzz_*.c file names what it links in one comment line
#   FUZZ_SOURCES: src/gguf/*.c src/base/error.c ...
# (globs relative to the repo root), and may add libFuzzer flags in another
#   FUZZ_OPTIONS: -detect_leaks=0
# Seeds: the committed corpus tests/<module>/fuzz_corpus/<name>/ (copied
# in), and tests/<module>/fuzz_seeds.sh, if present, run as
# `bash fuzz_seeds.sh CORPUS_DIR` to write more. Work files go to
# build/fuzz/ (corpora are kept between runs; crash inputs are left there
# as crash-*). SHARED (../shared) is exported for targets that read it.
# FUZZ_ONLY=fuzz_http_server runs one target; FUZZ_SECONDS bounds each (60).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${FUZZ_BUILD:-$ROOT/build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC_FUZZ=${CC_FUZZ:-clang}
export SHARED=${SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd)}
mkdir -p "$OUT"
status=0
for src in $(find tests -name "${FUZZ_ONLY:-fuzz_*}.c" | sort); do
  name=$(basename "$src" .c)
  module=$(dirname "$src")
  srcs=$(sed -n 's/^.*FUZZ_SOURCES:[[:space:]]*//p' "$src" | head -1)
  opts=$(sed -n 's/^.*FUZZ_OPTIONS:[[:space:]]*//p' "$src" | head -1)
  if [ -z "$srcs" ]; then echo "fuzz: $src has no FUZZ_SOURCES line"; status=1; continue; fi
  # shellcheck disable=SC2086
  files=$(ls $srcs 2>/dev/null | tr '\n' ' ')
  echo "fuzz: building $name"
  if ! $CC_FUZZ -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=undefined -Isrc $(pkg-config --cflags libpcre2-8 libcjson libmicrohttpd 2>/dev/null) \
       -o "$OUT/$name" "$src" $files $(pkg-config --libs libpcre2-8 libcjson libmicrohttpd 2>/dev/null) -lm -pthread; then
    echo "fuzz: $name failed to build"; status=1; continue
  fi
  corpus="$OUT/corpus-$name"; mkdir -p "$corpus"
  if [ -d "$module/fuzz_corpus/$name" ]; then cp -n "$module/fuzz_corpus/$name"/* "$corpus"/ 2>/dev/null || true; fi
  if [ -f "$module/fuzz_seeds.sh" ]; then bash "$module/fuzz_seeds.sh" "$corpus" || true; fi
  echo "fuzz: running $name for ${SECONDS_EACH}s"
  # shellcheck disable=SC2086
  if ! (cd "$OUT" && "./$name" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 $opts \
        -artifact_prefix="$OUT/crash-$name-" -print_final_stats=1 "$corpus" 2>"$OUT/$name.log"); then
    echo "fuzz: $name FOUND A CRASH (see $OUT/$name.log and $OUT/crash-$name-*)"; tail -30 "$OUT/$name.log"; status=1
  else
    grep -E 'stat::number_of_executed_units|stat::peak_rss' "$OUT/$name.log" | sed "s/^/fuzz: $name /"
  fi
done
exit $status
