#!/usr/bin/env bash
# test_bad_files.sh — `larder gguf-info` on missing, truncated, corrupted and
# foreign files: exit status 1, exactly one stderr line naming the file and
# the problem, nothing on stdout, no crash or sanitizer report. Each case also
# checks the problem's wording. Files are made by python3 from a valid model
# written by make-model, or built field by field.
set -u
: "${LARDER:?}" "${SHARED:?}" "${TEST_TMP:?}"
D="$TEST_TMP/gguf_bad"; mkdir -p "$D"
failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

# A small valid model to corrupt.
if ! "$LARDER" make-model --arch llama --vocab "$SHARED/vocab/ggml-vocab-llama-spm.gguf" --dim 64 --ff 64 \
      --heads 2 --layers 1 --type q8_0 --quiet --out "$D/good.gguf" 2>"$D/mm.err"; then
  fail make_good_file "$(cat "$D/mm.err")"; exit 1
fi

python3 - "$D" <<'PY'
import struct, sys, os
d = sys.argv[1]
good = open(f"{d}/good.gguf", "rb").read()
def w(name, data): open(f"{d}/{name}.gguf", "wb").write(data)
def s(x): x = x.encode() if isinstance(x, str) else x; return struct.pack("<Q", len(x)) + x
def hdr(n_t, n_kv, ver=3): return b"GGUF" + struct.pack("<IQQ", ver, n_t, n_kv)
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
def tinfo(name, dims, typ, off): return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in dims) + struct.pack("<IQ", typ, off)
def pad(b, a=32): return b + b"\0" * ((-len(b)) % a)
def one_tensor(info, data=b"\0" * 64, kvs=b"", n_kv=0): return pad(hdr(1, n_kv) + kvs + info) + data

w("empty", b"")
w("foreign", b"\x7fELF\x02\x01\x01" + b"\0" * 100)
w("text", b"hello world, this is not a model\n")
w("version1", b"GGUF" + struct.pack("<I", 1) + good[8:])
w("version9", b"GGUF" + struct.pack("<I", 9) + good[8:])
w("bigendian", b"GGUF" + struct.pack(">I", 3) + good[8:])
w("trunc_header", good[:10])
w("trunc_kv", good[:300])
w("trunc_half", good[:len(good) // 2])
w("trunc_last_byte", good[:-1])
w("huge_kv_count", hdr(0, 1 << 62))
w("huge_tensor_count", hdr(1 << 60, 0))
w("string_len_overflow", hdr(0, 1) + struct.pack("<Q", (1 << 64) - 1) + b"key")
w("value_string_past_end", hdr(0, 1) + s("k") + struct.pack("<IQ", 8, 1 << 40) + b"abc")
w("array_count_overflow", hdr(0, 1) + s("k") + struct.pack("<IIQ", 9, 4, 1 << 62))
w("string_array_overflow", hdr(0, 1) + s("k") + struct.pack("<IIQ", 9, 8, 1 << 61))
w("nested_array", hdr(0, 1) + s("k") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 4, 1) + b"\0" * 4)
w("unknown_value_type", hdr(0, 1) + s("k") + struct.pack("<I", 13) + b"\0" * 8)
w("unknown_array_type", hdr(0, 1) + s("k") + struct.pack("<IIQ", 9, 77, 1) + b"\0" * 8)
w("duplicate_key", hdr(0, 2) + kv_u32("a", 1) + kv_u32("a", 2))
w("empty_key", hdr(0, 1) + kv_u32("", 1))
w("bad_alignment", hdr(0, 1) + kv_u32("general.alignment", 48))
w("alignment_type", hdr(0, 1) + s("general.alignment") + struct.pack("<IQ", 10, 32))
w("unknown_tensor_type", one_tensor(tinfo("t", [16], 99, 0)))
w("tensor_type_gap", one_tensor(tinfo("t", [16], 4, 0)))
w("too_many_dims", one_tensor(tinfo("t", [1, 1, 1, 1, 16], 0, 0)))
w("zero_dims", one_tensor(tinfo("t", [], 0, 0)))
w("zero_extent", one_tensor(tinfo("t", [16, 0], 0, 0)))
w("negative_extent", one_tensor(tinfo("t", [(1 << 64) - 16], 0, 0)))
w("elem_overflow", one_tensor(tinfo("t", [1 << 32, 1 << 32, 1 << 10], 0, 0)))
w("block_multiple", one_tensor(tinfo("t", [48], 8, 0)))
w("data_past_end", one_tensor(tinfo("t", [1024], 0, 0)))
w("offset_past_end", one_tensor(tinfo("t", [4], 0, 1 << 40)))
w("misaligned_offset", one_tensor(tinfo("t", [4], 0, 8)))
w("long_name", one_tensor(tinfo("n" * 64, [4], 0, 0)))
w("duplicate_tensor", pad(hdr(2, 0) + tinfo("t", [4], 0, 0) + tinfo("t", [4], 0, 32)) + b"\0" * 64)
w("overlap", pad(hdr(2, 0) + tinfo("a", [16], 0, 0) + tinfo("b", [16], 0, 32)) + b"\0" * 128)
w("no_data_section", hdr(1, 0) + tinfo("t", [4], 0, 0))
w("key_too_long", hdr(0, 1) + kv_u32("k" * 1024, 1))            # GGUF_KEY_MAX_BYTES
w("key_at_limit_ok", hdr(0, 1) + kv_u32("k" * 1023, 1))
w("alignment_too_big", hdr(0, 1) + kv_u32("general.alignment", 1 << 21))  # GGUF_MAX_ALIGNMENT
w("name_at_limit_ok", one_tensor(tinfo("n" * 63, [4], 0, 0)))
PY

# case name -> expected wording (a grep -E pattern on the message)
check() { # $1 case, $2 pattern
  local f="$D/$1.gguf" out err rc
  out=$("$LARDER" gguf-info "$f" 2>"$D/$1.err"); rc=$?
  err=$(cat "$D/$1.err")
  local lines; lines=$(printf '%s' "$err" | grep -c '')
  if [ "$rc" -ne 1 ]; then fail "$1" "exit status $rc (stderr: $err)"; return; fi
  if [ -n "$out" ]; then fail "$1" "stdout not empty"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$1" "expected one stderr line, got $lines: $err"; return; fi
  case $err in "larder: $f: "*) ;; *) fail "$1" "message does not name the file: $err"; return ;; esac
  if ! printf '%s' "$err" | grep -qE "$2"; then fail "$1" "message '$err' does not match /$2/"; return; fi
  pass "$1"
}
check empty "empty"
check foreign "not a GGUF file"
check text "not a GGUF file"
check version1 "version 1"
check version9 "version 9"
check bigendian "big-endian"
check trunc_header "truncated"
check trunc_kv "truncated|beyond the end"
check trunc_half "outside the file|truncated"
check trunc_last_byte "outside the file"
check huge_kv_count "metadata count .* more than the file"
check huge_tensor_count "tensor count .* more than the file"
check string_len_overflow "beyond the end of the file|truncated"
check value_string_past_end "beyond the end of the file"
check array_count_overflow "exceeds the file"
check string_array_overflow "exceeds the file"
check nested_array "nested array"
check unknown_value_type "unknown value type 13"
check unknown_array_type "unknown type 77"
check duplicate_key "duplicate metadata key 'a'"
check empty_key "empty key"
check bad_alignment "alignment 48 is not a power of two"
check alignment_type "alignment has type u64"
check unknown_tensor_type "unknown type 99"
check tensor_type_gap "unknown type 4"
check too_many_dims "5 dimensions"
check zero_dims "0 dimensions"
check zero_extent "dimension 1 is 0"
check negative_extent "must be positive"
check elem_overflow "overflow"
check block_multiple "not a multiple of the block size 32"
check data_past_end "outside the file"
check offset_past_end "outside the file"
check misaligned_offset "not a multiple of the alignment"
check long_name "too long"
check duplicate_tensor "duplicate tensor name 't'"
check overlap "overlap"
check no_data_section "truncated|outside the file"
check key_too_long "key of 1024 bytes is too long"
check alignment_too_big "larger than the limit"
for ok in key_at_limit_ok name_at_limit_ok; do
  if "$LARDER" gguf-info "$D/$ok.gguf" >/dev/null 2>"$D/$ok.err"; then pass "$ok"; else fail "$ok" "$(cat "$D/$ok.err")"; fi
done

# A missing file and a folder.
for c in /nonexistent/model.gguf "$D"; do
  out=$("$LARDER" gguf-info "$c" 2>"$D/x.err"); rc=$?
  if [ "$rc" -eq 1 ] && [ -z "$out" ] && [ "$(grep -c '' "$D/x.err")" -eq 1 ] && grep -q "larder: $c: " "$D/x.err"
  then pass "missing_or_folder_${c##*/}"; else fail "missing_or_folder_${c##*/}" "rc $rc: $(cat "$D/x.err")"; fi
done

# Every truncation point of the valid file's header and metadata fails cleanly (never a crash).
n_bad=0; size=$(stat -c %s "$D/good.gguf")
for cut in $(seq 0 97 20000) $((size - 1)); do
  head -c "$cut" "$D/good.gguf" >"$D/cut.gguf"
  "$LARDER" gguf-info "$D/cut.gguf" >"$D/cut.out" 2>"$D/cut.err"; rc=$?
  if [ "$rc" -ne 1 ] || [ -s "$D/cut.out" ] || [ "$(grep -c '' "$D/cut.err")" -ne 1 ]; then n_bad=$((n_bad + 1)); fi
done
if [ "$n_bad" -eq 0 ]; then pass every_truncation_fails_cleanly; else fail every_truncation_fails_cleanly "$n_bad cuts misbehaved"; fi

# The valid file itself reads.
if "$LARDER" gguf-info "$D/good.gguf" >"$D/good.out" 2>"$D/good.err" && grep -q "blk.0.attn_q.weight" "$D/good.out" && [ ! -s "$D/good.err" ]
then pass valid_file_reads; else fail valid_file_reads "$(cat "$D/good.err")"; fi
exit $failed
