"""Minimal GGUF v3 reader (metadata only) and writer for the trained model.

Owns: the byte layout of GGUF v3 (header, typed key/values, tensor infos,
aligned data) and Q8_0 quantisation, written from the format's facts with
numpy and the standard library only (no gguf-py), so it runs on the GPU
machine and here alike.

Key idea: the model is written exactly as llama.cpp's `llama` architecture
reads it. PyTorch Linear weights are [out, in] row-major, which is GGUF's
ne = [in, out] (ne[0] is the contiguous axis), so the bytes go out unchanged
and only the dims are listed reversed. Rotary embedding in train.py already
uses the interleaved-pair ("normal") convention of llama.cpp's llama arch,
so Q/K need no permutation. The tokenizer key/values are copied from the
vocabulary GGUF (../shared/vocab/ggml-vocab-llama-spm.gguf).
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_ALIGNMENT = 32          # general.alignment default

# Value types of GGUF key/values.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, \
    T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)
_SCALAR_FMT = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h",
               T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?",
               T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}

# ggml tensor types used here.
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
Q8_0_BLOCK = 32              # values per block; block = f16 scale + 32 int8 = 34 bytes
FILE_TYPE_MOSTLY_Q8_0 = 7


class GGUFValue:
    """A key/value with its explicit GGUF type (ARRAY carries elem_type)."""

    def __init__(self, vtype, value, elem_type=None):
        self.vtype, self.value, self.elem_type = vtype, value, elem_type


# ---------------------------------------------------------------- reading

class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        if self.pos + n > len(self.data):
            raise ValueError("gguf: string runs past end of file")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            if et == T_STRING:
                return GGUFValue(T_ARRAY, [self.string() for _ in range(n)], et)
            if et not in _SCALAR_FMT:
                raise ValueError("gguf: unsupported array element type %d" % et)
            fmt = _SCALAR_FMT[et]
            size = struct.calcsize(fmt)
            arr = list(struct.unpack_from("<%d%s" % (n, fmt[1]), self.data, self.pos))
            self.pos += n * size
            return GGUFValue(T_ARRAY, arr, et)
        if vtype not in _SCALAR_FMT:
            raise ValueError("gguf: unsupported value type %d" % vtype)
        return self.take(_SCALAR_FMT[vtype])


def read_metadata(path):
    """Returns {key: GGUFValue} of a GGUF file (tensors are not read)."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if data[:4] != GGUF_MAGIC:
        raise ValueError("%s: not a GGUF file" % path)
    r.pos = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("%s: GGUF version %d unsupported" % (path, version))
    r.take("<Q")                          # tensor count
    n_kv = r.take("<Q")
    out = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.take("<I")
        v = r.value(vtype)
        out[key] = v if isinstance(v, GGUFValue) else GGUFValue(vtype, v)
    return out


# ---------------------------------------------------------------- Q8_0

def quantize_q8_0(x):
    """x: float array, last axis a multiple of 32. Returns the Q8_0 bytes
    (per block of 32: d = max|x| / 127 as f16, q = round(x / d) as int8)."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % Q8_0_BLOCK:
        raise ValueError("q8_0: row length %d not a multiple of 32" % x.shape[-1])
    blocks = x.reshape(-1, Q8_0_BLOCK)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = np.rint(blocks * inv[:, None]).clip(-127, 127).astype(np.int8)
    out = np.empty(blocks.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (Q8_0_BLOCK,))])
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out.tobytes()


def dequantize_q8_0(raw, shape):
    """Inverse of quantize_q8_0 (uses the stored f16 scale)."""
    blk = np.frombuffer(raw, dtype=[("d", "<f2"), ("qs", "i1", (Q8_0_BLOCK,))])
    vals = blk["qs"].astype(np.float32) * blk["d"].astype(np.float32)[:, None]
    return vals.reshape(shape)


def q8_0_roundtrip(x):
    """What llama.cpp will see for a Q8_0 tensor: quantize then dequantize."""
    x = np.asarray(x, dtype=np.float32)
    return dequantize_q8_0(quantize_q8_0(x), x.shape)


# ---------------------------------------------------------------- writing

def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(v):
    if v.vtype == T_STRING:
        return _pack_string(v.value)
    if v.vtype == T_ARRAY:
        head = struct.pack("<IQ", v.elem_type, len(v.value))
        if v.elem_type == T_STRING:
            return head + b"".join(_pack_string(s) for s in v.value)
        fmt = _SCALAR_FMT[v.elem_type]
        return head + struct.pack("<%d%s" % (len(v.value), fmt[1]), *v.value)
    return struct.pack(_SCALAR_FMT[v.vtype], v.value)


def write_gguf(path, kvs, tensors):
    """kvs: list of (key, GGUFValue). tensors: list of (name, ggml_type,
    numpy array in PyTorch shape (outer..inner), bytes). Writes GGUF v3."""
    out = bytearray()
    out += GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kvs))
    for key, v in kvs:
        out += _pack_string(key) + struct.pack("<I", v.vtype) + _pack_value(v)
    offset = 0
    layout = []
    for name, gtype, shape, raw in tensors:
        dims = list(reversed(shape))      # ne[0] = innermost (contiguous) axis
        out += _pack_string(name) + struct.pack("<I", len(dims))
        out += struct.pack("<%dQ" % len(dims), *dims)
        out += struct.pack("<IQ", gtype, offset)
        layout.append(offset)
        offset += len(raw)
        offset += (-offset) % GGUF_ALIGNMENT
    out += b"\0" * ((-len(out)) % GGUF_ALIGNMENT)
    with open(path, "wb") as f:
        f.write(out)
        pos = 0
        for (name, gtype, shape, raw), off in zip(tensors, layout):
            f.write(b"\0" * (off - pos))
            f.write(raw)
            pos = off + len(raw)


TOKENIZER_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                  "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                  "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                  "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                  "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                  "tokenizer.ggml.add_space_prefix")


def export_llama(path, cfg, weights, vocab_path, chat_template, name="larder-brown",
                 matrix_type=GGML_Q8_0):
    """cfg: dict dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size,
    context_length, rope_theta, norm_eps. weights: {gguf tensor name: float32
    numpy array in PyTorch shape}. 2-D matrices are written as matrix_type
    (Q8_0, or F32 for exact checks), 1-D tensors F32."""
    vocab = read_metadata(vocab_path)
    n_tokens = len(vocab["tokenizer.ggml.tokens"].value)
    if n_tokens != cfg["vocab_size"]:
        raise ValueError("vocab has %d tokens, model %d" % (n_tokens, cfg["vocab_size"]))
    head_dim = cfg["dim"] // cfg["n_heads"]
    kvs = [
        ("general.architecture", GGUFValue(T_STRING, "llama")),
        ("general.name", GGUFValue(T_STRING, name)),
        ("general.file_type", GGUFValue(T_UINT32, FILE_TYPE_MOSTLY_Q8_0
                                        if matrix_type == GGML_Q8_0 else 0)),
        ("general.quantization_version", GGUFValue(T_UINT32, 2)),
        ("general.alignment", GGUFValue(T_UINT32, GGUF_ALIGNMENT)),
        ("llama.context_length", GGUFValue(T_UINT32, cfg["context_length"])),
        ("llama.embedding_length", GGUFValue(T_UINT32, cfg["dim"])),
        ("llama.block_count", GGUFValue(T_UINT32, cfg["n_layers"])),
        ("llama.feed_forward_length", GGUFValue(T_UINT32, cfg["ffn_dim"])),
        ("llama.attention.head_count", GGUFValue(T_UINT32, cfg["n_heads"])),
        ("llama.attention.head_count_kv", GGUFValue(T_UINT32, cfg["n_kv_heads"])),
        ("llama.rope.dimension_count", GGUFValue(T_UINT32, head_dim)),
        ("llama.rope.freq_base", GGUFValue(T_FLOAT32, float(cfg["rope_theta"]))),
        ("llama.attention.layer_norm_rms_epsilon", GGUFValue(T_FLOAT32, float(cfg["norm_eps"]))),
        ("llama.vocab_size", GGUFValue(T_UINT32, cfg["vocab_size"])),
    ]
    for k in TOKENIZER_KEYS:
        if k in vocab:
            kvs.append((k, vocab[k]))
    kvs.append(("tokenizer.chat_template", GGUFValue(T_STRING, chat_template)))
    tensors = []
    for tname, arr in weights.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("tensor %s has non-finite values" % tname)
        if arr.ndim == 2 and matrix_type == GGML_Q8_0:
            tensors.append((tname, GGML_Q8_0, arr.shape, quantize_q8_0(arr)))
        else:                             # F32 (file_type 0 = all F32)
            tensors.append((tname, GGML_F32, arr.shape, arr.astype("<f4").tobytes()))
    write_gguf(path, kvs, tensors)
