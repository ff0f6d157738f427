#!/usr/bin/env bash
# Runs every test and prints, as the last line, "N passed, N failed".
#
# Kinds of test, each counted per test case:
#   $BUILD/tests/**/test_*        cmocka programs (built from tests/**/test_*.c);
#                                 counted from cmocka's "[  PASSED  ]" / "[  FAILED  ]" lines
#   tests/**/test_*.sh|.mjs|.py   scripts; each prints "PASS <name>" or "FAIL <name>: why"
#                                 per case and exits non-zero when any case failed
# Scripts get LARDER=$BUILD/larder, ROOT and SHARED (the ../shared folder) in
# their environment. ONLY_C=1 runs the cmocka programs alone (make asan).
# TEST_FILTER=regex runs only the tests whose path matches.
#
# Two passes, so that both of larder's x86 kernel sets are held on any
# machine: first with the kernels the CPU supports (AVX-512 where it has
# AVX-512 F/BW/VL/DQ + VNNI), then again with LARDER_CPU=avx2 (lines tagged
# "[avx2]"); the oracle tests then compare with llama.cpp's AVX2 CPU variant
# (tests/oracle/llama_cpu_variant.mjs). On a CPU without AVX-512 the second
# pass repeats the first. The last line sums both passes. With LARDER_CPU
# already set, one pass runs, with that setting.
# Run in the first pass only, because what they check does not depend on the
# kernels (SINGLE_PASS below): the Jinja and tokenizer tests (no forward
# pass at all), tests/gguf/test_bad_files.sh (file validation),
# tests/cli/test_make_model.mjs (larder writes files without the CPU kernels;
# llama.cpp reads them) and tests/server/test_opencode.mjs (~100 s: the
# OpenCode client's protocol and prompt caching against larder; it compares
# no numbers) and tests/server/test_request_linear, test_request_oom (the
# request path before and around a fake forward pass; ~1 min each on a busy
# machine). The other server tests compare cached with uncached answers,
# which do depend on the kernels agreeing with themselves, and run twice.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd); BUILD=${BUILD:-build}
case $BUILD in /*) BUILD_ABS=$BUILD ;; *) BUILD_ABS=$ROOT/$BUILD ;; esac
export ROOT BUILD LARDER="$BUILD_ABS/larder" SHARED="${SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd)}"
export TEST_TMP=$(mktemp -d /tmp/larder-test.XXXXXX)
trap 'rm -rf "$TEST_TMP"' EXIT
passed=0; failed=0; failed_names=()
filter=${TEST_FILTER:-.}

run_one() { # $1: display name, rest: command
  local name=$1; shift
  local log="$TEST_TMP/$(echo "$name" | tr '/ []' '____').log" t0=$(date +%s)
  "$@" >"$log" 2>&1; local rc=$?
  local p f
  if [[ ${name% \[*\]} == *.sh || ${name% \[*\]} == *.mjs || ${name% \[*\]} == *.py ]]; then
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
  else
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}
  fi
  # A crash or non-zero exit with no failed case counted is one failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "(no test case ran)" >>"$log"; fi
  passed=$((passed + p)); failed=$((failed + f))
  printf '%-55s %4d passed %3d failed  %3ds\n' "$name" "$p" "$f" $(( $(date +%s) - t0 ))
  if [ "$f" -ne 0 ]; then failed_names+=("$name"); sed 's/^/    | /' "$log" | grep -v '^    | PASS ' | tail -40; fi
}

SINGLE_PASS='^tests/(jinja/test_jinja_|tokenizer/test_tokenize_llamacpp|gguf/test_bad_files|cli/test_make_model|server/test_opencode|server/test_request_(linear|oom))'

# One pass over every test; $1: tag appended to each name ("" for none), $2:
# LARDER_CPU for the pass ("" leaves the environment as it is).
# RUN_WRAPPER (a command prefix for the cmocka programs, e.g. "qemu-aarch64
# -cpu max") and TEST_EXCLUDE (a regex of paths not to run) serve
# tests/arm64/run.sh.
run_pass() {
  local tag=$1 cpu=$2 suffix=${1:+ [$1]} env_cpu=()
  [ -n "$cpu" ] && env_cpu=(env LARDER_CPU="$cpu")
  for bin in $(find "$BUILD/tests" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
    name=${bin#$BUILD/}
    [[ $name =~ $filter ]] || continue
    [ -n "$tag" ] && [[ $name =~ $SINGLE_PASS ]] && continue
    [ -n "${TEST_EXCLUDE:-}" ] && [[ $name =~ $TEST_EXCLUDE ]] && continue
    run_one "$name$suffix" "${env_cpu[@]}" ${RUN_WRAPPER:-} "$bin"
  done
  if [ -z "${ONLY_C:-}" ]; then
    for s in $(find tests -type f \( -name 'test_*.sh' -o -name 'test_*.mjs' -o -name 'test_*.py' \) | sort); do
      [[ $s =~ $filter ]] || continue
      [ -n "$tag" ] && [[ $s =~ $SINGLE_PASS ]] && continue
      case $s in
        *.sh)  run_one "$s$suffix" "${env_cpu[@]}" bash "$s" ;;
        *.mjs) run_one "$s$suffix" "${env_cpu[@]}" node "$s" ;;
        *.py)  run_one "$s$suffix" "${env_cpu[@]}" python3 "$s" ;;
      esac
    done
  fi
}

if [ -n "${LARDER_CPU:-}" ]; then
  run_pass "" ""
else
  run_pass "" ""
  run_pass avx2 avx2
fi
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
