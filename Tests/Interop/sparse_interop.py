#!/usr/bin/env python3
"""Reference side of the sparse-layout interop tests (SparseInteropTests.swift).

Follows only the layouts documented in SparseLayout (Sources/CheckpointFormats/Sparse/SparseLayout.swift),
with numpy, ml_dtypes and safetensors. Parts of a tensor `<module>.weight` are named `<module>.<part>`
(other names are kept whole). Subcommands:

  decode FILE OUT     makes every tensor FILE's `modelpress.sparsity` record lists dense again and writes
                      them to OUT under their names:
                        sparse-bitmask: numpy.unpackbits(bitmask, axis=-1, count=columns,
                          bitorder="little") gives each row's non-zero positions; `compressed` holds
                          their values in row-major order; `row_offsets` must be where each row starts;
                        sparse-n-of-m: each row of `indices` is a little-endian bit stream of
                          b = ceil(log2 M)-bit positions, one per kept value of `compressed`
                          [rows, columns*N/M], N per group of M columns.
                      Values are moved as raw bits (unsigned views), so -0.0 and NaN payloads survive.
  write-ct FILE DENSE writes FILE the way compressed-tensors' sparse-bitmask compressor does
                      (bytemask = w != 0, numpy.packbits little-endian per row, row_offsets =
                      cumsum(counts) - counts, `.weight` dropped from the part names, shape as int64,
                      one tensor with the [rank, 1] shape some versions write), with no ModelPress
                      metadata, and DENSE with the original dense tensors.

Exit status: 0 on success, 1 on a malformed input, 2 on a usage error.
"""

import json
import math
import sys

import ml_dtypes  # registers bfloat16 with numpy; import before safetensors.numpy
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file


class Malformed(Exception):
    pass


UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def prefix_of(name):
    return name[: -len(".weight")] if name.endswith(".weight") else name


def raw(array):
    """The elements as unsigned integers of the same width (bits kept exactly)."""
    return np.ascontiguousarray(array).view(UNSIGNED[array.dtype.itemsize])


def decode_bitmask(tensors, prefix, shape, name):
    compressed, bitmask, offsets = tensors[prefix + ".compressed"], tensors[prefix + ".bitmask"], tensors[prefix + ".row_offsets"]
    columns = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    row_bytes = (columns + 7) // 8
    if bitmask.dtype != np.uint8 or bitmask.shape != (rows, row_bytes):
        raise Malformed(f"{name}: bitmask is {bitmask.dtype} {bitmask.shape}, expected uint8 {(rows, row_bytes)}")
    if offsets.dtype != np.int64 or offsets.shape != (rows,):
        raise Malformed(f"{name}: row_offsets is {offsets.dtype} {offsets.shape}")
    if np.unpackbits(bitmask, axis=-1, bitorder="little")[:, columns:].any():
        raise Malformed(f"{name}: padding bits set")
    mask = np.unpackbits(bitmask, axis=-1, count=columns, bitorder="little").astype(bool)
    counts = mask.sum(axis=-1)
    if compressed.ndim != 1 or compressed.shape[0] != counts.sum():
        raise Malformed(f"{name}: {compressed.shape} values for {counts.sum()} mask bits")
    if not np.array_equal(offsets, np.cumsum(counts) - counts):
        raise Malformed(f"{name}: row_offsets do not follow the mask")
    dense = np.zeros((rows, columns), dtype=UNSIGNED[compressed.dtype.itemsize])
    dense[mask] = raw(compressed)
    return dense.view(compressed.dtype).reshape(shape)


def decode_n_of_m(tensors, prefix, shape, name, n, m):
    compressed, indices = tensors[prefix + ".compressed"], tensors[prefix + ".indices"]
    columns = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    if columns % m:
        raise Malformed(f"{name}: rows of {columns} are not whole groups of {m}")
    kept, b = columns // m * n, math.ceil(math.log2(m))
    if compressed.shape != (rows, kept):
        raise Malformed(f"{name}: compressed is {compressed.shape}, expected {(rows, kept)}")
    if indices.dtype != np.uint8 or indices.shape != (rows, (kept * b + 7) // 8):
        raise Malformed(f"{name}: indices is {indices.dtype} {indices.shape}")
    bits = np.unpackbits(indices, axis=-1, bitorder="little").astype(np.int64)
    if bits[:, kept * b:].any():
        raise Malformed(f"{name}: padding bits set")
    fields = bits[:, : kept * b].reshape(rows, kept, b)
    positions = (fields << np.arange(b)).sum(axis=-1)                    # [rows, kept], first bit lowest
    if (positions >= m).any():
        raise Malformed(f"{name}: a position is outside its group")
    groups = positions.reshape(rows, kept // n, n)
    if any(len(set(g)) != n for g in groups.reshape(-1, n).tolist()):
        raise Malformed(f"{name}: a group repeats a position")
    columns_of = (np.arange(kept) // n * m)[None, :] + positions       # [rows, kept]
    dense = np.zeros((rows, columns), dtype=UNSIGNED[compressed.dtype.itemsize])
    np.put_along_axis(dense, columns_of, raw(compressed), axis=1)
    return dense.view(compressed.dtype).reshape(shape)


def decode(path, out_path):
    with safe_open(path, framework="np") as f:
        metadata = f.metadata() or {}
    records = json.loads(metadata.get("modelpress.sparsity", "{}"))
    tensors = load_file(path)
    out = {}
    for name, record in records.items():
        prefix = prefix_of(name)
        stored_shape = tensors[prefix + ".shape"]
        if stored_shape.dtype != np.int64 or stored_shape.ndim != 1:
            raise Malformed(f"{name}: shape part is {stored_shape.dtype} {stored_shape.shape}")
        shape = tuple(int(d) for d in stored_shape)
        if record["format"] == "sparse-bitmask":
            out[name] = decode_bitmask(tensors, prefix, shape, name)
        elif record["format"] == "sparse-n-of-m":
            n, m = (int(x) for x in record["pattern"].split(":"))
            out[name] = decode_n_of_m(tensors, prefix, shape, name, n, m)
        else:
            raise Malformed(f"{name}: unknown format {record['format']}")
    if not out:
        raise Malformed("no sparse tensor")
    save_file(out, out_path)
    print(f"decoded {len(out)} tensors")


def compressed_tensors_parts(prefix, weight, shape_as_column=False):
    """compressed-tensors' bitmask_compress + BitmaskTensor.dict for a 2-D weight."""
    bytemasks = weight != 0
    row_counts = bytemasks.sum(axis=-1).astype(np.int64)
    shape = np.array(weight.shape, dtype=np.int64)
    return {
        prefix + ".shape": shape.reshape(-1, 1) if shape_as_column else shape,
        prefix + ".compressed": weight[bytemasks],
        prefix + ".bitmask": np.packbits(bytemasks, axis=-1, bitorder="little"),
        prefix + ".row_offsets": np.cumsum(row_counts, 0) - row_counts,
    }


def write_ct(path, dense_path):
    rng = np.random.default_rng(7)
    dense = {}

    def pruned(shape, dtype, zero_fraction):
        w = rng.standard_normal(shape).astype(np.float32)
        w[rng.random(shape) < zero_fraction] = 0
        return w.astype(dtype)

    dense["model.layers.0.mlp.down_proj.weight"] = pruned((16, 40), np.float32, 0.7)
    dense["model.layers.0.self_attn.q_proj.weight"] = pruned((8, 64), np.float16, 0.5)
    dense["model.layers.0.mlp.up_proj.weight"] = pruned((12, 21), ml_dtypes.bfloat16, 0.9)
    dense["model.norm.weight"] = rng.standard_normal(40).astype(np.float32)
    stored = {"model.norm.weight": dense["model.norm.weight"]}
    for name, weight in dense.items():
        if name == "model.norm.weight":
            continue
        stored.update(compressed_tensors_parts(prefix_of(name), weight, shape_as_column=name.endswith("q_proj.weight")))
    save_file(stored, path, metadata={"format": "pt"})
    save_file(dense, dense_path)
    print(f"wrote {len(stored)} tensors")


def main(argv):
    try:
        if len(argv) == 3 and argv[0] == "decode":
            decode(argv[1], argv[2])
        elif len(argv) == 3 and argv[0] == "write-ct":
            write_ct(argv[1], argv[2])
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    except Malformed as error:
        print(f"malformed: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
