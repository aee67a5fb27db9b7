#!/usr/bin/env python3
"""Reference side of the GGUF interop tests (Tests/ModelPressTests/GGUFInteropTests.swift).

gguf-py (PyPI `gguf` 0.19, llama.cpp's own Python package) is the reference; ModelPress must agree
with it bit for bit. Subcommands:

  make SPEC.json OUT.gguf [SIDECAR.json]
        writes OUT.gguf with gguf.GGUFWriter from SPEC: {"arch", "metadata": [value specs],
        "tensors": [{"name", "shape" (numpy order), "type": F32|F16|Q8_0, "seed", "scale",
        "offset"}]}. A value spec is {"key", "type" (a GGUFValueType name), "sub_type" (arrays),
        "value"}. Tensor values are offset + scale * normal(seed) as float32 (2-D tensors get two
        outlier input columns x8); Q8_0 tensors are gguf.quants.quantize of those values. SIDECAR
        (optional) lists each tensor as written: name, type, ne (GGUF order), hex of its data bytes.
  verify SIDECAR.json
        SIDECAR (written by ModelPress's test): {"files": [{"path", "source": {"format":
        "safetensors"|"gguf", "path"}, "metadata": [value specs, in file order], "tensors": [{"name",
        "type", "ne", "source_name", "dequantized" (raw little-endian f32 file)}]}]}. For each file,
        gguf.GGUFReader must see exactly these KVs (key, type, value, in order) and tensors (name,
        type, ne, in order); the data must be laid out as llama.cpp does (offsets and final size);
        gguf.quants.dequantize of every tensor must equal the ModelPress values bit for bit; and for
        every type gguf-py can quantize (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1),
        gguf.quants.quantize of the source F32 values must give exactly the stored bytes.
        Prints "verified F files, T tensors, D dequantized, Q requantized".
  quantized SIDECAR.json
        SIDECAR (written by ModelPress's test): {"files": [{"path", "tensors": [{"name", "scheme", "bits",
        "symmetric", "granularity", "shape", "nested", "parts": [[name, type, ne], ...], "dequantized"}],
        "dense": [names]}]}. For each file, gguf.GGUFReader must see every quantized tensor's
        modelpress.quantization.<name>.* keys with the documented GGUF types and values, and its parts
        (names, ggml types, ne) right after each other; the dense tensors keep their names; the data is
        laid out as llama.cpp does. Each quantized tensor is then rebuilt with numpy alone from the
        layout documented in Sources/CheckpointFormats/GGUF/GGUFQuantizedLayout.swift and must equal
        ModelPress's QuantizedTensor.dequantized() bit for bit (NaN matching NaN).
        Prints "verified F files, T quantized tensors".

Exit status: 0 on success, 1 on a mismatch (message on stderr), 2 on a usage error.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
import gguf
from gguf import GGMLQuantizationType, GGUFValueType
from gguf.constants import GGML_QUANT_SIZES
from safetensors.numpy import load_file

QUANTIZABLE = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}


class Mismatch(Exception):
    pass


def tensor_values(spec):
    shape = tuple(spec["shape"])
    rng = np.random.default_rng(spec["seed"])
    x = spec.get("offset", 0.0) + spec.get("scale", 0.02) * rng.standard_normal(shape)
    if len(shape) == 2 and shape[1] >= 8:
        x[:, [3, shape[1] - 5]] *= 8.0
    return x.astype(np.float32)


def make(spec_path, out_path, sidecar_path=None):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    w = gguf.GGUFWriter(out_path, spec["arch"])
    for v in spec["metadata"]:
        sub = GGUFValueType[v["sub_type"]] if v.get("sub_type") else None
        w.add_key_value(v["key"], v["value"], GGUFValueType[v["type"]], sub_type=sub)
    written = []
    for t in spec["tensors"]:
        x = tensor_values(t)
        kind = t["type"]
        if kind == "F32":
            data, raw = x, None
        elif kind == "F16":
            data, raw = x.astype(np.float16), None
        else:
            qtype = GGMLQuantizationType[kind]
            data, raw = gguf.quants.quantize(x, qtype), qtype
        w.add_tensor(t["name"], data, raw_dtype=raw)
        written.append({"name": t["name"], "type": kind, "ne": list(reversed(t["shape"])), "data_hex": data.tobytes().hex()})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    if sidecar_path:
        with open(sidecar_path, "w", encoding="utf-8") as f:
            json.dump({"tensors": written}, f)


def same_scalar(kind, expected, actual):
    if kind == "FLOAT32":
        return np.float32(expected).view(np.uint32) == np.float32(actual).view(np.uint32)
    if kind == "FLOAT64":
        return np.float64(expected).view(np.uint64) == np.float64(actual).view(np.uint64)
    if kind == "BOOL":
        return bool(expected) == bool(actual)
    if kind == "STRING":
        return isinstance(actual, str) and expected == actual
    return int(expected) == int(actual)


def check_metadata(where, reader, expected):
    fields = [(k, f) for k, f in reader.fields.items() if not k.startswith("GGUF.")]
    keys = [k for k, _ in fields]
    want = [v["key"] for v in expected]
    if keys != want:
        raise Mismatch(f"{where}: keys {keys} != expected {want}")
    for (key, field), v in zip(fields, expected):
        types = [t.name for t in field.types]
        want_types = [v["type"]] + ([v["sub_type"]] if v.get("sub_type") else [])
        if types != want_types:
            raise Mismatch(f"{where}: '{key}' has types {types}, expected {want_types}")
        actual = field.contents()
        if v["type"] == "ARRAY":
            if len(actual) != len(v["value"]) or not all(same_scalar(v["sub_type"], e, a) for e, a in zip(v["value"], actual)):
                raise Mismatch(f"{where}: '{key}' = {actual!r}, expected {v['value']!r}")
        elif not same_scalar(v["type"], v["value"], actual):
            raise Mismatch(f"{where}: '{key}' = {actual!r}, expected {v['value']!r}")


def source_tensors(source):
    if source["format"] == "safetensors":
        return load_file(source["path"])
    return {t.name: np.asarray(t.data) for t in gguf.GGUFReader(source["path"]).tensors}


def verify(sidecar_path):
    with open(sidecar_path, encoding="utf-8") as f:
        sidecar = json.load(f)
    counts = {"files": 0, "tensors": 0, "dequantized": 0, "requantized": 0}
    sources = {}
    for entry in sidecar["files"]:
        path = entry["path"]
        where = os.path.basename(path)
        reader = gguf.GGUFReader(path)
        if reader.fields["GGUF.version"].contents() != 3:
            raise Mismatch(f"{where}: version is not 3")
        check_metadata(where, reader, entry["metadata"])
        names = [t.name for t in reader.tensors]
        want = [t["name"] for t in entry["tensors"]]
        if names != want:
            raise Mismatch(f"{where}: tensors {names} != expected {want}")
        src_key = entry["source"]["path"]
        if src_key not in sources:
            sources[src_key] = source_tensors(entry["source"])
        source = sources[src_key]
        # llama.cpp's layout: alignment 32, each tensor at the running sum of padded sizes, padding after the last.
        offset = 0
        for t, spec in zip(reader.tensors, entry["tensors"]):
            tw = f"{where}: '{t.name}'"
            if t.tensor_type.name != spec["type"]:
                raise Mismatch(f"{tw} is {t.tensor_type.name}, expected {spec['type']}")
            if [int(d) for d in t.shape] != spec["ne"]:
                raise Mismatch(f"{tw} has ne {list(t.shape)}, expected {spec['ne']}")
            block, size = GGML_QUANT_SIZES[t.tensor_type]
            nbytes = int(np.prod(spec["ne"])) // block * size
            if t.n_bytes != nbytes or t.data_offset != reader.data_offset + offset:
                raise Mismatch(f"{tw}: {t.n_bytes} bytes at {t.data_offset}, expected {nbytes} at {reader.data_offset + offset}")
            offset += (nbytes + 31) // 32 * 32
            ours = np.fromfile(spec["dequantized"], dtype="<f4")
            theirs = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
            if ours.shape != theirs.shape:
                raise Mismatch(f"{tw}: {ours.size} dequantized values, gguf-py has {theirs.size}")
            diff = np.flatnonzero(ours.view(np.uint32) != theirs.view(np.uint32))
            if diff.size:
                i = diff[0]
                raise Mismatch(f"{tw}: {diff.size} dequantized values differ; first at {i}: ours {ours[i]!r}, gguf-py {theirs[i]!r}")
            counts["dequantized"] += 1
            if spec["type"] in QUANTIZABLE:
                x = np.ascontiguousarray(source[spec["source_name"]], dtype=np.float32)
                if list(reversed(x.shape)) != spec["ne"]:
                    raise Mismatch(f"{tw}: source shape {x.shape} does not match ne {spec['ne']}")
                expected = gguf.quants.quantize(x, GGMLQuantizationType[spec["type"]]).tobytes()
                actual = np.asarray(t.data).tobytes()
                if expected != actual:
                    first = next(i for i, (a, b) in enumerate(zip(expected, actual)) if a != b)
                    raise Mismatch(f"{tw}: bytes differ from gguf.quants.quantize, first at byte {first}")
                counts["requantized"] += 1
            counts["tensors"] += 1
        if os.path.getsize(path) != reader.data_offset + offset:
            raise Mismatch(f"{where}: size {os.path.getsize(path)}, expected {reader.data_offset + offset}")
        counts["files"] += 1
    print(f"verified {counts['files']} files, {counts['tensors']} tensors, {counts['dequantized']} dequantized, "
          f"{counts['requantized']} requantized")


def modelpress_dequantize(reader, name):
    """`name` rebuilt from the GGUFQuantizedLayout parts and keys with numpy alone."""
    tensors = {t.name: t for t in reader.tensors}

    def meta(field):
        field = reader.fields.get(f"modelpress.quantization.{name}.{field}")
        return None if field is None else field.contents()

    def part(suffix=""):
        return np.asarray(tensors[name + suffix].data)

    scheme, bits, granularity = meta("scheme"), int(meta("bits")), meta("granularity")
    shape = [int(d) for d in meta("shape")]
    # Codes: unsigned bytes, k per byte along the last dimension, least significant first.
    k = 4 if bits <= 2 else 2 if bits <= 4 else 1
    width = 8 // k
    packed = part().view(np.uint8)
    slots = [(packed >> (width * i)) & ((1 << width) - 1) for i in range(k)]
    codes = np.stack(slots, axis=-1).reshape(*packed.shape[:-1], -1)[..., : (shape[-1] if shape else 1)]
    rows = shape[0] if len(shape) >= 2 else 1
    codes = codes.reshape(rows, -1).astype(np.int64)
    columns = codes.shape[1]
    # Scales, plain or double-quantized.
    if meta("nested_block_size") is not None:
        scale_codes = part(".scale_codes").view(np.uint8).reshape(-1)
        second, table = part(".scale_scales"), part(".scale_map")
        block = int(meta("nested_block_size"))
        scales = table[scale_codes] * second[np.arange(scale_codes.size) // block] + np.float32(meta("nested_offset"))
    else:
        scales = part(".scale").astype(np.float32).reshape(-1)
    # The group of each element.
    r = np.arange(rows)[:, None]
    c = np.arange(columns)[None, :]
    if granularity == "tensor":
        g = np.zeros((rows, columns), dtype=np.int64)
    elif granularity == "channel":
        g = np.broadcast_to(r, (rows, columns))
    else:
        n = int(granularity.split(":")[1])
        g = r * -(-columns // n) + c // n
    if scheme == "int":
        zero = part(".zero_point").astype(np.int64).reshape(-1) if not meta("symmetric") else np.full(scales.shape, 1 << (bits - 1))
        values = scales[g] * (codes - zero[g]).astype(np.float32)
    elif scheme == "codebook":
        values = scales[g] * part(".codebook")[codes]
    else:
        fp8 = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2}[scheme]
        values = scales[g] * codes.astype(np.uint8).view(fp8).astype(np.float32)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)


def verify_quantized(sidecar_path):
    with open(sidecar_path, encoding="utf-8") as f:
        sidecar = json.load(f)
    counts = {"files": 0, "tensors": 0}
    for entry in sidecar["files"]:
        path = entry["path"]
        where = os.path.basename(path)
        reader = gguf.GGUFReader(path)
        names = [t.name for t in reader.tensors]
        types = {t.name: (t.tensor_type.name, [int(d) for d in t.shape]) for t in reader.tensors}
        for name in entry["dense"]:
            if name not in types:
                raise Mismatch(f"{where}: dense tensor '{name}' is missing")
        for spec in entry["tensors"]:
            name = spec["name"]
            tw = f"{where}: '{name}'"
            want = [("scheme", "STRING", spec["scheme"]), ("bits", "UINT32", spec["bits"]), ("symmetric", "BOOL", spec["symmetric"]),
                    ("granularity", "STRING", spec["granularity"])]
            for field, kind, value in want:
                f = reader.fields.get(f"modelpress.quantization.{name}.{field}")
                if f is None or [t.name for t in f.types] != [kind] or not same_scalar(kind, value, f.contents()):
                    raise Mismatch(f"{tw}: {field} is {None if f is None else (f.types, f.contents())}, expected {kind} {value!r}")
            f = reader.fields.get(f"modelpress.quantization.{name}.shape")
            if f is None or [t.name for t in f.types] != ["ARRAY", "INT64"] or list(f.contents()) != spec["shape"]:
                raise Mismatch(f"{tw}: shape key is {None if f is None else f.contents()}, expected INT64 array {spec['shape']}")
            nested = reader.fields.get(f"modelpress.quantization.{name}.nested_block_size") is not None
            if nested != spec["nested"]:
                raise Mismatch(f"{tw}: nested keys present = {nested}, expected {spec['nested']}")
            start = names.index(name)
            parts = [[n, *types[n]] for n in names[start : start + len(spec["parts"])]]
            if parts != spec["parts"]:
                raise Mismatch(f"{tw}: parts {parts}, expected {spec['parts']}")
            ours = np.fromfile(spec["dequantized"], dtype="<f4")
            theirs = modelpress_dequantize(reader, name)
            if ours.shape != theirs.shape:
                raise Mismatch(f"{tw}: {ours.size} dequantized values, numpy gives {theirs.size}")
            same = (ours.view(np.uint32) == theirs.view(np.uint32)) | (np.isnan(ours) & np.isnan(theirs))
            if not same.all():
                i = int(np.flatnonzero(~same)[0])
                raise Mismatch(f"{tw}: {int((~same).sum())} values differ; first at {i}: ours {ours[i]!r}, numpy {theirs[i]!r}")
            counts["tensors"] += 1
        offset = 0
        for t in reader.tensors:
            if t.data_offset != reader.data_offset + offset:
                raise Mismatch(f"{where}: '{t.name}' at {t.data_offset}, expected {reader.data_offset + offset}")
            offset += (int(t.n_bytes) + 31) // 32 * 32
        if os.path.getsize(path) != reader.data_offset + offset:
            raise Mismatch(f"{where}: size {os.path.getsize(path)}, expected {reader.data_offset + offset}")
        counts["files"] += 1
    print(f"verified {counts['files']} files, {counts['tensors']} quantized tensors")


def main(argv):
    try:
        if len(argv) in (4, 5) and argv[1] == "make":
            make(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
        elif len(argv) == 3 and argv[1] == "verify":
            verify(argv[2])
        elif len(argv) == 3 and argv[1] == "quantized":
            verify_quantized(argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Mismatch as e:
        print(f"mismatch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
