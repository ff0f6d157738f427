#!/usr/bin/env bash
# tests/arm64/run.sh — larder's AArch64 build under emulation (`make
# test-arm64` builds $ARM64_BUILD, then runs this). Prints, as the last line,
# "N passed, N failed".
#
# Per ARM kernel level, under qemu-aarch64 with a -cpu model that has exactly
# that level's features (so the run-time detection is what picks the
# kernels, and LARDER_TEST_EXPECT_LEVEL makes test_dot_kernels fail if it
# picked another level):
#   neon     -cpu cortex-a53    Armv8.0: Advanced SIMD, no dotprod, no i8mm
#   dotprod  -cpu neoverse-n1   Armv8.2: + SDOT/UDOT, no i8mm
#   i8mm     -cpu max           every feature qemu emulates, i8mm included
#  1. the cmocka programs through tests/run.sh (RUN_WRAPPER = qemu): the
#     kernel-dependent ones (backend, model, engine, tensor) at every level,
#     the rest (tokenizer, jinja, chat, server, kv, base, gguf, sample) once,
#     at the i8mm level. test_dot_kernels holds every kernel the emulated CPU
#     offers against the scalar reference. Not run here:
#     tests/tensor/test_quant_vs_ggml, whose oracle is the x86-64 libggml
#     of node-llama-cpp (loaded with dlopen); the scalar code it holds is the
#     same C on every target and `make test` runs it; and the server tests
#     that measure the process (test_http_hardening: resident memory of 1,000
#     connections' threads; test_request_linear / test_request_oom: CPU-time
#     ratios and thousands of allocation failures, minutes under qemu), whose
#     figures under qemu-user are the emulator's, not larder's (measured:
#     +287 MiB of resident memory for 64 threads, which native runs keep
#     under 24 MiB) — the target-independent C they test runs in `make test`.
#  2. `larder logits` (32 tokens, top 40) on make-model files: the arm64
#     build under qemu against the x86-64 build ($BUILD/larder with
#     LARDER_CPU=avx2: the ARM kernels sum in the AVX2 kernels' float order
#     for every type but Q4_0 / Q5_0, so those print identical output, which
#     the PASS line says) on the same file, with tests/model/test_agreement.mjs's
#     tolerances on |Δp| over the union of both top-10 sets (f32 2e-3,
#     f16/bf16 5e-3, quantized weights 5e-2; F32 weights with a bf16 / q8_0 /
#     q4_0 KV cache 5e-3 / 5e-4 / 5e-4) and the same top token wherever the
#     x86 top two differ by more than 0.05. Every weight type on llama and
#     qwen3 (and four on qwen2, four KV types, two on each mixture-of-experts
#     architecture: qwen3moe, minimax-m2) at the i8mm level; a subset at the
#     others. One PASS/FAIL line per file with the worst |Δp|.
# Under emulation timing means nothing; this proves correctness only.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ARM64_BUILD=${ARM64_BUILD:-build-arm64}; BUILD=${BUILD:-build}
QEMU=${QEMU:-qemu-aarch64}
export SHARED="${SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd)}"
TMP=$(mktemp -d /tmp/larder-arm64.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0; failed=0; failed_names=()
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); failed_names+=("$1"); }

if ! command -v "$QEMU" >/dev/null || [ ! -x "$ARM64_BUILD/larder" ] || [ ! -x "$BUILD/larder" ]; then
  echo "FAIL setup: need $QEMU (make deps), $ARM64_BUILD/larder and $BUILD/larder (make test-arm64 builds both)"
  echo "0 passed, 1 failed"; exit 1
fi

LEVELS=("neon cortex-a53" "dotprod neoverse-n1" "i8mm max")
KERNEL_TESTS='^tests/(backend|model|engine|tensor)/'
EXCLUDE='^tests/(tensor/test_quant_vs_ggml|server/test_(http_hardening|request_linear|request_oom))'

# ---- 2. logits: models, x86 reference output, comparison
V=$SHARED/vocab/ggml-vocab-llama-spm.gguf
TOKENS=1; x=12345
for _ in $(seq 31); do x=$(( (x * 1103515245 + 12345) % 2147483648 )); TOKENS+=",$(( 3 + (x >> 8) % 31000 ))"; done
arch_flags() {
  case $1 in
    llama) echo --rope-freqs ;; qwen2) echo --tied ;; qwen3) echo --head-dim 128 ;;
    qwen3moe|minimax-m2) echo --head-dim 128 --experts 8 --experts-used 2 --ff-exp 128 ;;
  esac
}
# model file for arch $1 and weight type $2 (written once, by the x86 build)
model() {
  local f=$TMP/$1-$2.gguf
  [ -f "$f" ] || "$BUILD/larder" make-model --arch "$1" --vocab "$V" --dim 256 --ff 512 --heads 4 --kv-heads 2 \
    --layers 2 --seed 11 $(arch_flags "$1") --type "$2" --out "$f" --quiet >/dev/null 2>&1 || return 1
  echo "$f"
}
tolerance() { # weight type, kv type
  case $2 in bf16) echo 5e-3; return ;; q8_0|q4_0) echo 5e-4; return ;; esac
  case $1 in f32) echo 2e-3 ;; f16|bf16) echo 5e-3 ;; *) echo 5e-2 ;; esac
}
# one comparison: level cpu arch wtype kv
check_logits() {
  local level=$1 cpu=$2 arch=$3 wt=$4 kv=$5 name="logits $3 $4 kv=$5 [$1]" f ref got
  f=$(model "$arch" "$wt") || { fail "$name" "make-model failed"; return; }
  ref=$TMP/ref-$arch-$wt-$kv.jsonl
  if [ ! -s "$ref" ] && ! LARDER_CPU=avx2 "$BUILD/larder" logits --model "$f" --tokens "$TOKENS" --top 40 --threads 2 --kv-type "$kv" \
      >"$ref" 2>"$TMP/err"; then fail "$name" "x86 logits: $(head -1 "$TMP/err")"; return; fi
  got=$TMP/got.jsonl
  if ! $QEMU -cpu "$cpu" "$ARM64_BUILD/larder" logits --model "$f" --tokens "$TOKENS" --top 40 --threads 2 \
      --kv-type "$kv" >"$got" 2>"$TMP/err"; then fail "$name" "arm64 logits: $(head -1 "$TMP/err")"; return; fi
  local why
  if why=$(python3 tests/arm64/compare_logits.py "$ref" "$got" "$(tolerance "$wt" "$kv")"); then
    cmp -s "$ref" "$got" && why+=", output identical to x86's"
    pass "$name: $why"
  else fail "$name" "$why"; fi
}

for lv in "${LEVELS[@]}"; do
  read -r level cpu <<<"$lv"
  echo "== level $level (qemu-aarch64 -cpu $cpu)"
  filter=$KERNEL_TESTS; [ "$level" = i8mm ] && filter=.
  out=$(LARDER_CPU=$level LARDER_TEST_EXPECT_LEVEL=$level RUN_WRAPPER="$QEMU -cpu $cpu" BUILD=$ARM64_BUILD ONLY_C=1 \
        TEST_FILTER=$filter TEST_EXCLUDE=$EXCLUDE bash tests/run.sh 2>&1)
  echo "$out" | sed '$d' | sed "s/^\(tests\/[^ ]*\)/\1 [$level]/"
  last=$(tail -1 <<<"$out")
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
    [ "${BASH_REMATCH[2]}" -eq 0 ] || failed_names+=("cmocka [$level]")
  else
    fail "cmocka [$level]" "tests/run.sh printed no summary: $last"
  fi
  if [ "$level" = i8mm ]; then
    for arch in llama qwen3; do
      for wt in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m; do
        check_logits "$level" "$cpu" "$arch" "$wt" f16
      done
    done
    for wt in f32 q8_0 q5_0 q4_k_m; do check_logits "$level" "$cpu" qwen2 "$wt" f16; done
    for arch in qwen3moe minimax-m2; do for wt in q8_0 q4_k_m; do check_logits "$level" "$cpu" "$arch" "$wt" f16; done; done
    for kv in f32 bf16 q8_0 q4_0; do check_logits "$level" "$cpu" qwen3 f32 "$kv"; done
  else
    for wt in f32 f16 q8_0 q4_0 q5_1 q4_k_m q6_k; do check_logits "$level" "$cpu" llama "$wt" f16; done
    check_logits "$level" "$cpu" qwen3 q4_k_m q8_0
  fi
done
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
