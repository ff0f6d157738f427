#!/usr/bin/env bash
# fuzz_seeds.sh CORPUS — small valid GGUF files as seeds for fuzz_gguf:
# hand-built files covering every value type, string arrays and several
# tensor types and shapes (python3; no larder binary needed).
set -eu
python3 - "$1" <<'PY'
import struct, sys
d = sys.argv[1]
def s(x): x = x.encode(); return struct.pack("<Q", len(x)) + x
def hdr(n_t, n_kv, ver=3): return b"GGUF" + struct.pack("<IQQ", ver, n_t, n_kv)
def pad(b, a=32): return b + b"\0" * ((-len(b)) % a)
kvs = [s("a.u8") + struct.pack("<IB", 0, 7), s("a.i8") + struct.pack("<Ib", 1, -7),
       s("a.u16") + struct.pack("<IH", 2, 7), s("a.i16") + struct.pack("<Ih", 3, -7),
       s("a.u32") + struct.pack("<II", 4, 7), s("a.i32") + struct.pack("<Ii", 5, -7),
       s("a.f32") + struct.pack("<If", 6, 1.5), s("a.bool") + struct.pack("<IB", 7, 1),
       s("a.str") + struct.pack("<I", 8) + s("hello"), s("a.u64") + struct.pack("<IQ", 10, 7),
       s("a.i64") + struct.pack("<Iq", 11, -7), s("a.f64") + struct.pack("<Id", 12, 2.5),
       s("a.arr") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 1, 2, 3),
       s("a.sarr") + struct.pack("<IIQ", 9, 8, 3) + s("x") + s("") + s("yz"),
       s("general.alignment") + struct.pack("<II", 4, 32)]
def tinfo(name, dims, typ, off): return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in dims) + struct.pack("<IQ", typ, off)
open(f"{d}/seed-kvs.gguf", "wb").write(hdr(0, len(kvs)) + b"".join(kvs))
ts = [("f32", [4, 2], 0, 32), ("f16", [8], 1, 16), ("q8_0", [32, 2], 8, 68), ("q4_k", [256], 12, 144), ("q6_k", [256], 14, 210)]
info, off = b"", 0
for name, dims, typ, size in ts:
    info += tinfo(name, dims, typ, off); off += size + (-size) % 32
body = pad(hdr(len(ts), 2, 2) + kvs[8] + kvs[13] + info)
open(f"{d}/seed-tensors.gguf", "wb").write(body + b"\x11" * off)
PY
