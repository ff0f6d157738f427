#!/usr/bin/env bash
# test_cache_sim.sh — bench/cache_sim builds and tells the memory story the
# way SERVER_RESULTS.md reports it, on a small run (2 sessions x 4 turns at
# MiniMax-M2's KV geometry): with room for everything larder recomputes what
# an unbounded cache would and holds less than mlx-lm's copies; with a pool
# below the working set it never reports more than --kv-memory; the disk tier
# brings recomputation back to the ideal.
set -u
cd "$(dirname "$0")/../.."
OUT=$(mktemp -d /tmp/larder-cache-sim-test.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
export OUT
fails=0
row() { grep "\"policy\":\"$2\"" "$1"; }
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
check() { if [ "$2" = ok ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fails=$((fails + 1)); fi; }

if ! bash bench/cache_sim.sh --sessions 2 --turns 4 --kv-memory 64G > "$OUT/roomy.txt" 2> "$OUT/err.txt"; then
  check cache_sim_runs fail "$(tail -5 "$OUT/err.txt")"
  exit 1
fi
l_re=$(row "$OUT/roomy.txt" larder | field recomputed_tokens); i_re=$(row "$OUT/roomy.txt" ideal | field recomputed_tokens)
l_pk=$(row "$OUT/roomy.txt" larder | field peak_resident_kv_bytes); m_pk=$(row "$OUT/roomy.txt" mlx-lm | field peak_resident_kv_bytes)
[ -n "$l_re" ] && [ "$l_re" = "$i_re" ] && r=ok || r=fail
check roomy_pool_recomputes_only_the_ideal "$r" "larder $l_re, ideal $i_re"
[ -n "$l_pk" ] && [ "$l_pk" -gt 0 ] && [ "$l_pk" -lt "$m_pk" ] && r=ok || r=fail
check shared_pages_beat_whole_copies "$r" "larder peak $l_pk, mlx-lm $m_pk"

bash bench/cache_sim.sh --sessions 2 --turns 4 --kv-memory 4G --cache-disk-bytes 64G > "$OUT/tight.txt" 2>> "$OUT/err.txt"
t_pk=$(row "$OUT/tight.txt" larder | field peak_resident_kv_bytes); t_re=$(row "$OUT/tight.txt" larder | field recomputed_tokens)
d_re=$(row "$OUT/tight.txt" "larder + disk" | field recomputed_tokens); d_rd=$(row "$OUT/tight.txt" "larder + disk" | field restored_tokens)
[ -n "$t_pk" ] && [ "$t_pk" -le $((4 << 30)) ] && [ "$t_re" -gt "$i_re" ] && r=ok || r=fail
check tight_pool_stays_inside_kv_memory "$r" "peak $t_pk, recomputed $t_re (ideal $i_re)"
[ -n "$d_re" ] && [ "$d_re" -le $((i_re + i_re / 100)) ] && [ "$d_rd" -gt 0 ] && r=ok || r=fail
check disk_tier_turns_recompute_into_reads "$r" "with disk $d_re recomputed, $d_rd read; ideal $i_re"
exit $((fails > 0))
