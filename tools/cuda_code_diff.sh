#!/usr/bin/env bash
# Compares the GPU machine code of two commits, kernel by kernel, without a
# GPU: what a refactor of the CUDA kernels changed in the code that runs.
#
#   tools/cuda_code_diff.sh REV_A REV_B [ARCH]      (ARCH: sm_90a by default)
#
# Each src/backend/cuda/*.cu of both commits is compiled by nvcc to a cubin
# (-O3, no -g: debug and line info would differ with every moved line), and
# the ELF sections that make up each kernel are compared byte for byte:
# .text.<kernel> (its instructions), .rel.text.<kernel> (relocations),
# .nv.info.<kernel> (registers, stack, parameters), .nv.constant0.<kernel>
# and .nv.shared.<kernel>. A kernel whose sections are all equal runs the
# same instructions; one whose .text differs was scheduled or computed
# differently and needs a GPU run (or a careful reading) before it counts as
# verified. The toolkit here has no cuobjdump/nvdisasm, so the comparison is
# of bytes, not of a disassembly. Host code in the .cu files is not compared.
#
# Prints a line per .cu file, the differing sections, and a total; exits 0
# when every kernel of both commits is identical, 1 otherwise.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,19p' "$0"; exit 2; }
A=$1 B=$2 ARCH=${3:-sm_90a}
cd "$(dirname "$0")/.."
NVCC=${NVCC:-${CUDA_HOME:-/usr/local/cuda}/bin/nvcc}
[ -x "$NVCC" ] || { echo "no nvcc at $NVCC (set CUDA_HOME)"; exit 2; }
TMP=$(mktemp -d /tmp/cuda-code-diff.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for r in "$A" "$B"; do
  d="$TMP/$(git rev-parse --short "$r")"
  mkdir -p "$d"
  git archive "$r" src | tar x -C "$d"
done
DA="$TMP/$(git rev-parse --short "$A")" DB="$TMP/$(git rev-parse --short "$B")"
[ "$DA" != "$DB" ] || { echo "the two revisions are one commit"; exit 2; }
# Two compilers at a time; -O3 as the Makefile builds, the arch's real code only.
ls "$DA"/src/backend/cuda/*.cu "$DB"/src/backend/cuda/*.cu | while read -r f; do
  root=${f%/src/backend/cuda/*}
  echo "$NVCC -std=c++17 -O3 -I$root/src -DLARDER_CUDA -cubin -gencode=arch=compute_${ARCH#sm_},code=$ARCH -o $root/$(basename "$f" .cu).cubin $f"
done | xargs -P 2 -I{} sh -c '{}'
python3 - "$DA" "$DB" <<'EOF'
import glob, os, struct, sys

def kernel_sections(path):
    """{section name: bytes} of an ELF64 cubin (NOBITS sections: empty)."""
    d = open(path, 'rb').read()
    shoff, = struct.unpack_from('<Q', d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x3a)
    hdrs = [struct.unpack_from('<IIQQQQIIQQ', d, shoff + i * shentsize) for i in range(shnum)]
    names_at = hdrs[shstrndx][4]
    out = {}
    for name_off, sh_type, _flags, _addr, off, size, *_ in hdrs:
        name = d[names_at + name_off: d.index(b'\0', names_at + name_off)].decode()
        if name.startswith(('.text.', '.rel.text.', '.nv.info.', '.nv.constant0.', '.nv.shared.')):
            out[name] = b'' if sh_type == 8 else d[off: off + size]
    return out

a, b = sys.argv[1], sys.argv[2]
same = differ = 0
files = sorted({os.path.basename(p) for p in glob.glob(a + '/*.cubin') + glob.glob(b + '/*.cubin')})
for f in files:
    pa, pb = os.path.join(a, f), os.path.join(b, f)
    if not (os.path.exists(pa) and os.path.exists(pb)):
        print(f"{f}: only in {'the first' if os.path.exists(pa) else 'the second'} commit")
        differ += 1
        continue
    sa, sb = kernel_sections(pa), kernel_sections(pb)
    diff = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
    kernels = {k[6:] for k in set(sa) | set(sb) if k.startswith('.text.')}
    bad = {k for k in kernels if any(s.endswith('.' + k) for s in diff)}
    same += len(kernels) - len(bad)
    differ += len(bad)
    print(f"{f}: {len(kernels)} kernels, {len(bad)} differ")
    for s in diff:
        print(f"    {s[:120]}  {len(sa.get(s, b''))} -> {len(sb.get(s, b''))} bytes")
print(f"total: {same} kernels identical, {differ} differ")
sys.exit(0 if differ == 0 else 1)
EOF
