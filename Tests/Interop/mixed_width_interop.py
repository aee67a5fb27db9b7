#!/usr/bin/env python3
"""Reference side of the mixed-width interop test (MixedWidthInteropTests.swift).

Reads ModelPress's `mixed-column-quantized` safetensors layout with numpy alone, following only the
layout documented in the README: each row of `<module>.weight_packed` is a little-endian bitstream
(least significant bit first) of its codes at the widths in `<module>.weight_column_bits`, columns of
width 0 taking no bits; scales `<module>.weight_scale` [rows, K] and, when asymmetric, zero points
`<module>.weight_zero_point` [rows, K] are per (row, width class), the classes being the distinct
nonzero widths in ascending order; symmetric classes of width b have zero point 2^(b-1). Subcommand:

  dequantize FILE OUT
                  dequantizes every tensor FILE's `modelpress.quantization` record marks as
                  mixed-column-quantized to float32 (scale * float32(code - zero_point), 0 for width-0
                  columns) and writes them to OUT under the weight names.

Exit status: 0 on success, 1 on a malformed input, 2 on a usage error.
"""

import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


class Malformed(Exception):
    pass


def module_of(name):
    return name[: -len(".weight")] if name.endswith(".weight") else name


def dequantize_one(tensors, name, record):
    module = module_of(name)
    shape = [int(d) for d in tensors[module + ".weight_shape"]]
    widths = tensors[module + ".weight_column_bits"].astype(np.int64)
    packed = tensors[module + ".weight_packed"]
    rows = shape[0] if len(shape) >= 2 else 1
    columns = int(np.prod(shape[1:])) if len(shape) >= 2 else (shape[0] if shape else 1)
    if widths.shape != (columns,) or widths.max(initial=0) > 8:
        raise Malformed(f"{name}: bad column widths")
    row_bytes = (int(widths.sum()) + 7) // 8
    if packed.dtype != np.uint8 or packed.shape != (rows, row_bytes):
        raise Malformed(f"{name}: weight_packed is {packed.dtype} {packed.shape}, expected uint8 {(rows, row_bytes)}")
    classes = sorted(set(int(b) for b in widths if b > 0))
    if record["bits"] != (max(classes) if classes else 0):
        raise Malformed(f"{name}: bits {record['bits']} is not the widest column")
    scales = tensors[module + ".weight_scale"].astype(np.float32)
    if scales.shape != (rows, len(classes)):
        raise Malformed(f"{name}: scales {scales.shape}")
    if record["symmetric"]:
        if module + ".weight_zero_point" in tensors:
            raise Malformed(f"{name}: symmetric with zero points")
        zeros = np.array([[1 << (b - 1) for b in classes]] * rows, dtype=np.int64).reshape(rows, len(classes))
    else:
        zeros = tensors[module + ".weight_zero_point"].astype(np.int64)

    bits = np.unpackbits(packed, axis=1, bitorder="little").astype(np.int64)   # [rows, row_bytes * 8], stream order
    if bits[:, int(widths.sum()):].any():
        raise Malformed(f"{name}: nonzero padding bits")
    offsets = np.concatenate([[0], np.cumsum(widths)])
    values = np.zeros((rows, columns), dtype=np.float32)
    for c in range(columns):
        b = int(widths[c])
        if b == 0:
            continue
        k = classes.index(b)
        code = np.zeros(rows, dtype=np.int64)
        for i in range(b):
            code |= bits[:, offsets[c] + i] << i
        if (zeros[:, k] >= (1 << b)).any():
            raise Malformed(f"{name}: zero point does not fit {b} bits")
        values[:, c] = scales[:, k] * (code - zeros[:, k]).astype(np.float32)
    return values.reshape(shape)


def dequantize(path, out_path):
    with safe_open(path, framework="np") as f:
        metadata = f.metadata() or {}
    records = json.loads(metadata.get("modelpress.quantization", "{}"))
    tensors = load_file(path)
    out = {}
    for name, record in records.items():
        if record.get("format") != "mixed-column-quantized":
            continue
        if record["scheme"] != "int" or record["granularity"] != "channel":
            raise Malformed(f"{name}: mixed widths need scheme int, granularity channel")
        out[name] = dequantize_one(tensors, name, record)
    if not out:
        raise Malformed("no mixed-column-quantized tensor")
    save_file(out, out_path)
    print(f"dequantized {len(out)} tensors")


def main(argv):
    if len(argv) == 3 and argv[0] == "dequantize":
        try:
            dequantize(argv[1], argv[2])
        except Malformed as error:
            print(f"malformed: {error}", file=sys.stderr)
            sys.exit(1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
