#!/usr/bin/env python3
"""Reference side of the NF4 interop tests (NF4InteropTests.swift).

An independent numpy implementation of bitsandbytes' `quantize_4bit(quant_type="nf4")` (blocks of
64 over the flattened tensor, absmax scaling by the reciprocal, nearest code with ties to the lower
code, even element in the high nibble) and of its double quantization (offset = mean(absmax),
blocks of 256 centered scales coded with the signed dynamic map), writing the `Linear4bit`
serialization transformers uses. Subcommands:

  write DIR       DIR/input.safetensors (F32 weights, seeded, with zeros and ties) and
                  DIR/nf4.safetensors, DIR/nf4-dq.safetensors quantized from it in bitsandbytes'
                  layout, plus DIR/expected.safetensors with the dequantized values of both.
  dequantize FILE OUT
                  reads every NF4 weight of FILE (found by its `.quant_state.bitsandbytes__nf4` part),
                  dequantizes it as bitsandbytes does (absmax rebuilt from the nested parts when
                  present) and writes the float32 results to OUT under the weight names.

Exit status: 0 on success, 1 on a malformed input, 2 on a usage error.
"""

import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=np.float32)

SUFFIX = ".quant_state.bitsandbytes__nf4"


def fma32(a, b, c):
    """a*b + c rounded once to float32 (the product of two floats is exact in float64)."""
    return np.float32(float(np.float64(a) * np.float64(b) + np.float64(c)))


def linspace32(start, end, n):
    """torch.linspace in float32 on the CPU: the first half counts up from start, the rest down from end."""
    start, end = np.float32(start), np.float32(end)
    step = np.float32((end - start) / np.float32(n - 1))
    return np.array([fma32(step, i, start) if i < n // 2 else fma32(-step, n - 1 - i, end) for i in range(n)],
                    dtype=np.float32)


def dynamic_map():
    """bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted."""
    data = []
    for e in range(7):
        b = linspace32(0.1, 1, 2 ** e + 1)
        means = ((b[:-1] + b[1:]) / np.float32(2)).astype(np.float32)
        scale = np.float32(10.0 ** (e - 6))
        data += list((scale * means).astype(np.float32)) + list((-scale * means).astype(np.float32))
    data += [np.float32(0), np.float32(1)]
    return np.sort(np.array(data, dtype=np.float32))


def nearest(y, table):
    """Index of the nearest table entry, a value exactly on a midpoint going to the lower entry."""
    mids = ((table[:-1] + table[1:]) * np.float32(0.5)).astype(np.float32)
    return np.searchsorted(mids, y, side="left").astype(np.uint8)


def quantize(w, block=64, double=False):
    flat = w.reshape(-1).astype(np.float32)
    blocks = flat.reshape(-1, block)
    absmax = np.abs(blocks).max(axis=1).astype(np.float32)
    inv = np.where(absmax > 0, np.float32(1) / np.where(absmax > 0, absmax, np.float32(1)), np.float32(0)).astype(np.float32)
    codes = nearest((blocks * inv[:, None]).astype(np.float32), NF4).reshape(-1)
    packed = (codes[0::2] << 4 | codes[1::2]).astype(np.uint8).reshape(-1, 1)
    state = {"quant_type": "nf4", "blocksize": block, "dtype": "float32", "shape": list(w.shape)}
    parts = {"": packed}
    if not double:
        parts[".absmax"] = absmax
        parts[".quant_map"] = NF4
    else:
        dmap = dynamic_map()
        offset = np.float32(np.mean(absmax.astype(np.float64)))
        centered = (absmax - offset).astype(np.float32)
        qcodes, second = [], []
        for s in range(0, len(centered), 256):
            c = centered[s:s + 256]
            m = np.float32(np.abs(c).max())
            second.append(m)
            i2 = np.float32(1) / m if m > 0 else np.float32(0)
            qcodes.append(nearest((c * i2).astype(np.float32), dmap))
        parts[".absmax"] = np.concatenate(qcodes).astype(np.uint8)
        parts[".quant_map"] = NF4
        parts[".nested_absmax"] = np.array(second, dtype=np.float32)
        parts[".nested_quant_map"] = dmap
        state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": float(offset)})
    parts[SUFFIX] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).copy()
    return parts


def dequantize_parts(get, name):
    state = json.loads(bytes(get(name + SUFFIX)).decode())
    shape, block = state["shape"], state["blocksize"]
    packed = get(name).reshape(-1)
    codes = np.empty(packed.size * 2, dtype=np.uint8)
    codes[0::2], codes[1::2] = packed >> 4, packed & 0x0F
    qmap = get(name + ".quant_map").astype(np.float32)
    if "nested_offset" in state:
        c = get(name + ".absmax").astype(np.int64)
        second = get(name + ".nested_absmax").astype(np.float32)
        dmap = get(name + ".nested_quant_map").astype(np.float32)
        b2 = state["nested_blocksize"]
        absmax = (dmap[c] * second[np.arange(c.size) // b2]).astype(np.float32) + np.float32(state["nested_offset"])
    else:
        absmax = get(name + ".absmax").astype(np.float32)
    values = (qmap[codes].reshape(-1, block) * absmax.astype(np.float32)[:, None]).astype(np.float32)
    return values.reshape(shape)


def write(folder):
    rng = np.random.default_rng(20261123)
    weights = {
        "model.layers.0.mlp.up_proj.weight": rng.standard_normal((64, 256)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": (rng.standard_normal((96, 128)) * 0.02).astype(np.float32),
    }
    w = weights["model.layers.0.mlp.up_proj.weight"]
    w[3, :64] = 0                     # an all-zero block
    w[5, ::7] = 0                     # scattered zeros
    w[7, :64] = np.linspace(-1, 1, 64, dtype=np.float32)
    w[7, 0], w[7, 63] = -1, 1         # absmax 1: the values hit the midpoints exactly where they can
    w[7, 1:15] = ((NF4[:-1] + NF4[1:]) * np.float32(0.5))[:14]
    save_file(weights, f"{folder}/input.safetensors")
    expected = {}
    for tag, double in (("nf4", False), ("nf4-dq", True)):
        tensors = {}
        for name, value in weights.items():
            for suffix, part in quantize(value, double=double).items():
                tensors[name + suffix] = part
        save_file(tensors, f"{folder}/{tag}.safetensors")
        for name in weights:
            expected[f"{tag}/{name}"] = dequantize_parts(lambda k: tensors[k], name)
    save_file(expected, f"{folder}/expected.safetensors")


def dequantize(path, out):
    tensors = load_file(path)
    names = [k[:-len(SUFFIX)] for k in tensors if k.endswith(SUFFIX)]
    if not names:
        print(f"{path}: no bitsandbytes NF4 weight", file=sys.stderr)
        sys.exit(1)
    save_file({n: dequantize_parts(lambda k: tensors[k], n) for n in names}, out)


def main(argv):
    if len(argv) == 2 and argv[0] == "write":
        write(argv[1])
    elif len(argv) == 3 and argv[0] == "dequantize":
        dequantize(argv[1], argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
