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
  local log="$TEST_TMP/$(echo "$name" | tr '/' '_').log" t0=$(date +%s)
  "$@" >"$log" 2>&1; local rc=$?
  local p f
  if [[ $name == *.sh || $name == *.mjs || $name == *.py ]]; then
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
  printf '%-48s %4d passed %3d failed  %3ds\n' "$name" "$p" "$f" $(( $(date +%s) - t0 ))
  if [ "$f" -ne 0 ]; then failed_names+=("$name"); sed 's/^/    | /' "$log" | grep -v '^    | PASS ' | tail -40; fi
}

for bin in $(find "$BUILD/tests" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
  name=${bin#$BUILD/}
  [[ $name =~ $filter ]] || continue
  run_one "$name" "$bin"
done
if [ -z "${ONLY_C:-}" ]; then
  for s in $(find tests -type f \( -name 'test_*.sh' -o -name 'test_*.mjs' -o -name 'test_*.py' \) | sort); do
    [[ $s =~ $filter ]] || continue
    case $s in
      *.sh)  run_one "$s" bash "$s" ;;
      *.mjs) run_one "$s" node "$s" ;;
      *.py)  run_one "$s" python3 "$s" ;;
    esac
  done
fi
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
