#!/usr/bin/env python3
"""Reference side of the safetensors interop tests (SafetensorsInteropTests.swift).

The Python `safetensors` package (with numpy and ml_dtypes) is the reference; ModelPress must agree
with it bit for bit. Subcommands:

  write-reference DIR         one safetensors file per dtype (DIR/<DTYPE>.safetensors), written by
                              safetensors.numpy.save_file, plus DIR/reference.json giving each
                              tensor's dtype, shape, element bit patterns (unsigned integers) and, for
                              float dtypes, the float32 bits numpy/ml_dtypes widen each element to.
  verify FILE SIDECAR [...]   loads FILE (written by ModelPress) with safetensors and compares dtype,
                              shape and every element's bits with SIDECAR; exit 1 with a message on
                              any difference. Several FILE SIDECAR pairs may follow.
  save-reference FILE SIDECAR writes FILE with safetensors.numpy.save_file (one metadata key, tensors
                              of many dtypes and names) and SIDECAR describing the tensors, so that
                              ModelPress can write the same tensors and compare the bytes. With
                              --no-metadata, no metadata is written.
  casts OUT.json              float32 inputs (a seeded sweep with ties, subnormals, overflow, inf,
                              nan) and their F16 (numpy), BF16, F8_E4M3 and F8_E5M2 (ml_dtypes) bits,
                              plus the float32 value of every F16, BF16 and F8 code.

Exit status: 0 on success, 1 on a mismatch (message on stderr), 2 on a usage error.
"""

import json
import os
import struct
import sys

import ml_dtypes  # registers bfloat16 / float8 dtypes with numpy; import before safetensors.numpy
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

# dtype string -> (numpy dtype of the elements, unsigned integer dtype of the same width)
DTYPES = {
    "BOOL": (np.dtype(np.bool_), np.dtype("<u1")),
    "U8": (np.dtype("<u1"), np.dtype("<u1")),
    "I8": (np.dtype("<i1"), np.dtype("<u1")),
    "I16": (np.dtype("<i2"), np.dtype("<u2")),
    "U16": (np.dtype("<u2"), np.dtype("<u2")),
    "I32": (np.dtype("<i4"), np.dtype("<u4")),
    "U32": (np.dtype("<u4"), np.dtype("<u4")),
    "I64": (np.dtype("<i8"), np.dtype("<u8")),
    "U64": (np.dtype("<u8"), np.dtype("<u8")),
    "F16": (np.dtype("<f2"), np.dtype("<u2")),
    "F32": (np.dtype("<f4"), np.dtype("<u4")),
    "F64": (np.dtype("<f8"), np.dtype("<u8")),
    "BF16": (np.dtype(ml_dtypes.bfloat16), np.dtype("<u2")),
    "F8_E4M3": (np.dtype(ml_dtypes.float8_e4m3fn), np.dtype("<u1")),
    "F8_E5M2": (np.dtype(ml_dtypes.float8_e5m2), np.dtype("<u1")),
}
FLOAT_DTYPES = {"F16", "F32", "F64", "BF16", "F8_E4M3", "F8_E5M2"}
# numpy can load these through safetensors.numpy.load_file; F8 needs ml_dtypes names numpy lacks.
LOAD_FILE_DTYPES = set(DTYPES) - {"F8_E4M3", "F8_E5M2"}


class Mismatch(Exception):
    pass


def from_bits(dtype, bits, shape):
    """An array of `dtype` whose elements have exactly the bit patterns `bits`."""
    element, unsigned = DTYPES[dtype]
    raw = np.array(bits, dtype=np.uint64).astype(unsigned)
    if dtype == "BOOL":
        return raw.astype(np.bool_).reshape(shape)
    return raw.view(element).reshape(shape)


def to_bits(dtype, array):
    _, unsigned = DTYPES[dtype]
    return [int(v) for v in np.ascontiguousarray(array).reshape(-1).view(unsigned)]


def float32_bits(dtype, array):
    """Bits of each element widened to float32 by numpy / ml_dtypes (the reference decoding)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return [int(v) for v in np.ascontiguousarray(array).reshape(-1).astype(np.float32).view(np.uint32)]


# --- write-reference -------------------------------------------------------------------------------
def ramp(n, width, step, start=0):
    mask = (1 << width) - 1
    return [(start + i * step) & mask for i in range(n)]


def reference_tensors(dtype):
    """{name: bits list and shape} for one dtype: edges, a ramp, a scalar, a zero-element tensor."""
    _, unsigned = DTYPES[dtype]
    width = unsigned.itemsize * 8
    if dtype == "BOOL":
        edges = [0, 1, 1, 0, 1]
        ramp_bits = [i % 3 == 0 for i in range(24)]
    elif dtype in ("U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"):
        info = np.iinfo(DTYPES[dtype][0])
        values = sorted({info.min, info.min + 1, -1 if info.min < 0 else 2, 0, 1, info.max - 1, info.max,
                         info.max // 2, info.min // 2})
        edges = [v & ((1 << width) - 1) for v in values]
        ramp_bits = ramp(24, width, (0x9E3779B97F4A7C15 >> (64 - width)) | 1, start=7)
    else:
        edges = float_edges(dtype)
        ramp_bits = ramp(24, width, (0x9E3779B97F4A7C15 >> (64 - width)) | 1, start=3)
    tensors = {
        "edges": (edges, [len(edges)]),
        "ramp.2d": ([int(b) for b in ramp_bits], [4, 6]),
        "ramp.3d": ([int(b) for b in ramp_bits], [2, 3, 4]),
        "scalar": (edges[-1:], []),
        "empty": ([], [2, 0]),
    }
    if dtype in ("F8_E4M3", "F8_E5M2"):
        tensors["all_codes"] = (list(range(256)), [16, 16])
    if dtype in ("F16", "BF16"):
        tensors["codes_every_97"] = (list(range(0, 65536, 97)), [len(range(0, 65536, 97))])
    return tensors


def float_edges(dtype):
    """Bit patterns of the interesting values of a float dtype."""
    if dtype == "F32":
        return [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
                0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000,
                0xBF800000, 0x3EAAAAAB, 0x40490FDB]
    if dtype == "F64":
        return [0x0, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
                0xFFF8000000000000, 0x7FF0000000000001, 0x1, 0x8000000000000001, 0x000FFFFFFFFFFFFF,
                0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x3FF0000000000000,
                0x47EFFFFFE0000000, 0x47EFFFFFF0000000, 0x36A0000000000000, 0x3FD5555555555555]
    if dtype == "F16":
        return [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x0001, 0x8001, 0x03FF, 0x0400,
                0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x3555]
    if dtype == "BF16":
        return [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x0001, 0x8001, 0x007F, 0x0080,
                0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x3EAB]
    if dtype == "F8_E4M3":  # no inf; 0x7F/0xFF are NaN; 0x7E = 448
        return [0x00, 0x80, 0x7F, 0xFF, 0x01, 0x81, 0x07, 0x08, 0x7E, 0xFE, 0x38, 0xB8]
    if dtype == "F8_E5M2":  # 0x7C = inf, 0x7D..0x7F NaN, 0x7B = 57344
        return [0x00, 0x80, 0x7C, 0xFC, 0x7E, 0xFE, 0x7D, 0x01, 0x81, 0x03, 0x04, 0x7B, 0xFB, 0x3C, 0xBC]
    raise ValueError(dtype)


def write_reference(folder):
    os.makedirs(folder, exist_ok=True)
    files = []
    for dtype in DTYPES:
        tensors = {}
        described = []
        for name, (bits, shape) in reference_tensors(dtype).items():
            full = f"{dtype.lower()}.{name}"
            array = from_bits(dtype, bits, shape)
            assert to_bits(dtype, array) == [int(b) for b in bits], f"{full}: bits do not survive numpy"
            tensors[full] = array
            entry = {"name": full, "dtype": dtype, "shape": list(shape), "bits": to_bits(dtype, array)}
            if dtype in FLOAT_DTYPES:
                entry["float32_bits"] = float32_bits(dtype, array)
            described.append(entry)
        file = f"{dtype}.safetensors"
        metadata = {"format": "pt", "dtype": dtype}
        save_file(tensors, os.path.join(folder, file), metadata=metadata)
        files.append({"file": file, "metadata": metadata, "tensors": described})
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump({"files": files}, f)


# --- verify ---------------------------------------------------------------------------------------
def raw_header(path):
    """(header dict, data section offset, file bytes), with the layout checks the reference writer meets."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise Mismatch(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    header = data[8:8 + n]
    if not header.startswith(b"{"):
        raise Mismatch(f"{path}: header does not start with '{{'")
    if (8 + n) % 8 != 0:
        raise Mismatch(f"{path}: data section starts at {8 + n}, not a multiple of 8")
    if header.rstrip(b" ") != header.rstrip():
        raise Mismatch(f"{path}: header padding is not spaces")
    return json.loads(header.decode("utf-8")), 8 + n, data


def verify_pair(path, sidecar_path):
    with open(sidecar_path) as f:
        sidecar = json.load(f)
    expected = {t["name"]: t for t in sidecar["tensors"]}
    header, data_offset, data = raw_header(path)
    problems = []

    # The reference reader: validates the whole file, gives metadata, dtypes, shapes and values.
    with safe_open(path, framework="np") as f:
        names = list(f.keys())
        if set(names) != set(expected):
            problems.append(f"tensor names differ: file {sorted(names)}, expected {sorted(expected)}")
        if (f.metadata() or {}) != sidecar.get("metadata", {}):
            problems.append(f"metadata differs: file {f.metadata()}, expected {sidecar.get('metadata', {})}")
        dtypes = {name: f.get_slice(name).get_dtype() for name in names}
        shapes = {name: list(f.get_slice(name).get_shape()) for name in names}
        via_safe_open = {name: f.get_tensor(name) for name in names if dtypes[name] in LOAD_FILE_DTYPES}
    # safetensors.numpy.load_file for every dtype numpy can hold (F8 has no numpy dtype name there).
    if all(d in LOAD_FILE_DTYPES for d in dtypes.values()):
        loaded = load_file(path)
    else:
        loaded = via_safe_open

    for name in sorted(set(names) & set(expected)):
        want = expected[name]
        dtype = want["dtype"]
        if dtypes[name] != dtype:
            problems.append(f"{name}: dtype {dtypes[name]}, expected {dtype}")
            continue
        if shapes[name] != want["shape"]:
            problems.append(f"{name}: shape {shapes[name]}, expected {want['shape']}")
            continue
        begin, end = header[name]["data_offsets"]
        raw = np.frombuffer(data[data_offset + begin:data_offset + end], dtype=DTYPES[dtype][1])
        raw_bits = [int(v) for v in raw]
        if name in loaded:
            array = loaded[name]
            if array.dtype != DTYPES[dtype][0]:
                problems.append(f"{name}: loaded as numpy {array.dtype}, expected {DTYPES[dtype][0]}")
                continue
            if list(array.shape) != want["shape"]:
                problems.append(f"{name}: loaded shape {list(array.shape)}, expected {want['shape']}")
                continue
            got = to_bits(dtype, array)
        else:
            got = raw_bits
        if got != raw_bits:
            problems.append(f"{name}: safetensors' values differ from the raw bytes of the file")
        if got != want["bits"]:
            diffs = [i for i, (a, b) in enumerate(zip(got, want["bits"])) if a != b]
            where = diffs[0] if diffs else min(len(got), len(want["bits"]))
            problems.append(f"{name}: {len(diffs)} elements differ (counts {len(got)} vs {len(want['bits'])}); "
                            f"first at index {where}: file "
                            f"{hex(got[where]) if where < len(got) else '-'}, expected "
                            f"{hex(want['bits'][where]) if where < len(want['bits']) else '-'}")
    if problems:
        raise Mismatch(f"{path}:\n  " + "\n  ".join(problems))
    return len(names)


def verify(pairs):
    checked = 0
    for path, sidecar in pairs:
        checked += verify_pair(path, sidecar)
    print(f"verified {checked} tensors in {len(pairs)} file(s)")


# --- save-reference -------------------------------------------------------------------------------
def save_reference(path, sidecar_path, with_metadata):
    """Tensors whose names and dtypes exercise the reference order (dtype descending, then name bytes)."""
    specs = [
        ("z.f64", "F64", [3]), ("a.f64", "F64", [2, 2]),
        ("model.layers.10.weight", "F32", [2, 3]), ("model.layers.9.weight", "F32", [3]),
        ("Model.Upper", "F32", [1]), ("model.layers.1.bias", "F32", []), ("é.f32", "F32", [2]),
        ("z.f32", "F32", [2, 0]), ("emoji.🙂", "F32", [1]), ('quote"back\\slash', "F32", [1]),
        ("ctl\u0001tab\tnl\n", "F32", [2]),
        ("bf16.b", "BF16", [4]), ("bf16.a", "BF16", [2, 3]),
        ("f16.x", "F16", [5]), ("u16", "U16", [3]), ("i16", "I16", [2]),
        ("i32", "I32", [4]), ("u32", "U32", [1]), ("i64", "I64", [2]), ("u64", "U64", [2]),
        ("f8.e4m3", "F8_E4M3", [7]), ("f8.e5m2", "F8_E5M2", [5]), ("f8.e4m3.b", "F8_E4M3", [1]),
        ("i8", "I8", [3]), ("u8.b", "U8", [9]), ("u8.a", "U8", [1]),
        ("mask", "BOOL", [2, 3]), ("flag", "BOOL", []),
    ]
    tensors, described = {}, []
    for i, (name, dtype, shape) in enumerate(specs):
        count = int(np.prod(shape)) if shape else 1
        width = DTYPES[dtype][1].itemsize * 8
        bits = [b & 1 for b in ramp(count, 8, 1, start=i)] if dtype == "BOOL" else \
            ramp(count, width, (0x9E3779B97F4A7C15 >> (64 - width)) | 1, start=31 * i + 5)
        tensors[name] = from_bits(dtype, bits, shape)
        described.append({"name": name, "dtype": dtype, "shape": shape, "bits": to_bits(dtype, tensors[name])})
    metadata = {"format": "pt"} if with_metadata else None
    save_file(tensors, path, metadata=metadata)
    with open(sidecar_path, "w") as f:
        json.dump({"metadata": metadata or {}, "tensors": described}, f)


# --- casts ----------------------------------------------------------------------------------------
class SplitMix64:
    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


def f32_bits_of(x):
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def cast_inputs():
    """About 10,000 float32 bit patterns: random bits, rounding ties and their neighbours for F16, BF16,
    E4M3 and E5M2 (normal and subnormal), float32 subnormals, overflow boundaries and specials."""
    rng = SplitMix64(0x5AFE7E45)
    out = []

    def add_with_neighbours(bits):
        out.extend([(bits - 1) & 0xFFFFFFFF, bits, (bits + 1) & 0xFFFFFFFF])

    out.extend(rng.next() & 0xFFFFFFFF for _ in range(2000))                     # any bit pattern
    for _ in range(400):                                                          # F16 normal ties
        sign, exp, mant = rng.below(2) << 31, 113 + rng.below(30), rng.below(1 << 10)
        add_with_neighbours(sign | exp << 23 | mant << 13 | 0x1000)
    for k in range(0, 1024, 3):                                                   # F16 subnormal ties
        out.append(f32_bits_of((k + 0.5) * 2.0 ** -24))
        out.append(f32_bits_of(-(k + 0.5) * 2.0 ** -24))
    for _ in range(500):                                                          # BF16 ties
        add_with_neighbours(((rng.next() & 0x7F7F0000) | (rng.below(2) << 31) | 0x8000) & 0xFFFFFFFF)
    for _ in range(300):                                                          # E4M3 normal ties
        sign, exp, mant = rng.below(2) << 31, 121 + rng.below(15), rng.below(8)
        add_with_neighbours(sign | exp << 23 | mant << 20 | 1 << 19)
    for _ in range(300):                                                          # E5M2 normal ties
        sign, exp, mant = rng.below(2) << 31, 113 + rng.below(31), rng.below(4)
        add_with_neighbours(sign | exp << 23 | mant << 21 | 1 << 20)
    for k in range(8):                                                            # E4M3 / E5M2 subnormal ties
        for s in (1.0, -1.0):
            out.append(f32_bits_of(s * (k + 0.5) * 2.0 ** -9))
            out.append(f32_bits_of(s * (k + 0.5) * 2.0 ** -16))
    out.extend((rng.next() & 0x807FFFFF) for _ in range(300))                     # f32 subnormals
    for _ in range(2200):                                                         # wide range of magnitudes
        sign, exp, mant = rng.below(2) << 31, 97 + rng.below(50), rng.below(1 << 23)
        out.append(sign | exp << 23 | mant)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 65504.0, 65505.0, 65519.0, 65519.996,
                65520.0, 65536.0, 1e6, -1e6, 3.4028235e38, -3.4028235e38, 1.1754944e-38, 6.1035156e-05,
                5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 448.0, 449.0, 455.99, 456.0, 463.99, 464.0,
                464.01, 480.0, 57344.0, 57345.0, 61439.99, 61440.0, 61440.01, 65536.0, 2.0 ** -9, 2.0 ** -10,
                2.0 ** -16, 2.0 ** -17, 2.0 ** -6, 2.0 ** -14, 1.5 * 2.0 ** -10, 1.5 * 2.0 ** -17]
    for x in specials:
        out.append(f32_bits_of(x))
        out.append(f32_bits_of(-x))
    out.extend([0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FC00001, 0xFFFFFFFF, 0x7F7FFFFF, 0x7F7F8000,
                0x7F7F7FFF, 0x477FF000, 0x477FEFFF, 0x477FF001])
    return out


def casts(out_path):
    inputs = np.array(cast_inputs(), dtype=np.uint32)
    x = inputs.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        f16 = x.astype(np.float16).view(np.uint16)
        bf16 = x.astype(ml_dtypes.bfloat16).view(np.uint16)
        e4m3 = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
        e5m2 = x.astype(ml_dtypes.float8_e5m2).view(np.uint8)
    with np.errstate(invalid="ignore"):
        a = np.abs(x.astype(np.float64))
    # ml_dtypes rounds to nearest even without saturating: compare only where that cannot overflow
    # (|x| <= 464 rounds to at most 448 in E4M3; |x| < 61440 to at most 57344 in E5M2, whose inf is kept).
    e4m3_in_range = np.isfinite(x) & (a <= 464.0)
    e5m2_in_range = ~np.isnan(x) & ((a < 61440.0) | np.isinf(x))

    def f32_of(codes, dtype):
        with np.errstate(invalid="ignore"):
            return [int(v) for v in codes.view(dtype).astype(np.float32).view(np.uint32)]

    result = {
        "inputs": [int(v) for v in inputs],
        "f16": [int(v) for v in f16],
        "bf16": [int(v) for v in bf16],
        "e4m3": [int(v) if ok else None for v, ok in zip(e4m3, e4m3_in_range)],
        "e5m2": [int(v) if ok else None for v, ok in zip(e5m2, e5m2_in_range)],
        "decode_f16": f32_of(np.arange(65536, dtype=np.uint16), np.float16),
        "decode_bf16": f32_of(np.arange(65536, dtype=np.uint16), ml_dtypes.bfloat16),
        "decode_e4m3": f32_of(np.arange(256, dtype=np.uint8), ml_dtypes.float8_e4m3fn),
        "decode_e5m2": f32_of(np.arange(256, dtype=np.uint8), ml_dtypes.float8_e5m2),
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


def main(argv):
    usage = __doc__.split("Exit status")[0]
    try:
        if len(argv) == 2 and argv[0] == "write-reference":
            write_reference(argv[1])
        elif len(argv) >= 3 and len(argv) % 2 == 1 and argv[0] == "verify":
            verify(list(zip(argv[1::2], argv[2::2])))
        elif len(argv) in (3, 4) and argv[0] == "save-reference" and argv[3:] in ([], ["--no-metadata"]):
            save_reference(argv[1], argv[2], with_metadata=argv[3:] == [])
        elif len(argv) == 2 and argv[0] == "casts":
            casts(argv[1])
        else:
            print(usage, file=sys.stderr)
            return 2
    except Mismatch as e:
        print(f"safetensors_interop.py: MISMATCH: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
