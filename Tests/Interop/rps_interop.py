#!/usr/bin/env python3
"""Reference side of the shared-tensor interop test (Tests/ModelPressTests/RPSInteropTests.swift).

  verify SHARED.gguf DENSE.safetensors EXPECTED.json
        SHARED.gguf was written by ModelPress with share.rps (Recipes/share-embeddings.recipe);
        DENSE.safetensors is what ModelPress's `decompress` wrote from it. EXPECTED.json:
        {"array": "rps.12", "shared": ["model.embed_tokens.weight"]}.
        gguf.GGUFReader must read SHARED: the metadata key `modelpress.rps` is a GGUF STRING holding
        the JSON record documented in Sources/CheckpointFormats/Sharing/SharedTensorLayout.swift,
        the slot array `<array>.slots` is an F32 tensor of m elements, and no shared tensor is stored
        itself. Every shared tensor is then rebuilt from the slots with this file's own
        reimplementation of the map (rps-randomfold-splitmix64-v1, spec in
        Sources/TensorCore/Sharing/RandomFoldMap.swift) and must equal DENSE's tensor bit for bit as
        float32. Every other tensor of SHARED must equal DENSE's too.
        Prints "verified S shared tensors (E elements), D dense tensors".

Exit status: 0 on success, 1 on a mismatch (message on stderr), 2 on a usage error.
"""

import json
import sys

import numpy as np
import gguf
from gguf import GGUFValueType
from safetensors.numpy import load_file

MASK = (1 << 64) - 1
SPEC = "rps-randomfold-splitmix64-v1"


class Mismatch(Exception):
    pass


def mix64(x):
    """SplitMix64's finalizer (mod 2^64)."""
    z = x & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def hash_value(seed, k, x):
    return mix64(x + seed * 0x9E3779B97F4A7C15 + k)


def slot_and_sign(seed, m, chunk, i):
    """slot(i) = (i mod C + range(H(seed, 1, i div C), m)) mod m, range = high 64 bits of h*m
    (Lemire, a 128-bit product); sign(i) = -1 when the top bit of H(seed, 2, i) is set."""
    start = (hash_value(seed, 1, i // chunk) * m) >> 64
    slot = (i % chunk + start) % m
    sign = -1.0 if hash_value(seed, 2, i) >> 63 else 1.0
    return slot, sign


def verify(shared_path, dense_path, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    reader = gguf.GGUFReader(shared_path)
    field = reader.fields.get("modelpress.rps")
    if field is None:
        raise Mismatch("no modelpress.rps key")
    if field.types != [GGUFValueType.STRING]:
        raise Mismatch(f"modelpress.rps has types {field.types}, expected STRING")
    record = json.loads(field.contents())
    if list(record) != [expected["array"]]:
        raise Mismatch(f"arrays {list(record)}, expected [{expected['array']}]")
    tensors = {t.name: t for t in reader.tensors}
    dense = load_file(dense_path)
    shared_names = []
    elements = 0
    for array_name, array in record.items():
        if array["spec"] != SPEC:
            raise Mismatch(f"{array_name}: spec {array['spec']}")
        seed, m, chunk, n = int(array["seed"]), array["m"], array["chunk"], array["n"]
        slots_tensor = tensors.get(array_name + ".slots")
        if slots_tensor is None:
            raise Mismatch(f"no tensor {array_name}.slots")
        if slots_tensor.tensor_type != gguf.GGMLQuantizationType.F32 or [int(d) for d in slots_tensor.shape] != [m]:
            raise Mismatch(f"{array_name}.slots is {slots_tensor.tensor_type.name} {list(slots_tensor.shape)}, expected F32 [{m}]")
        slots = np.asarray(slots_tensor.data, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(slots)):
            raise Mismatch(f"{array_name}.slots holds non-finite values")
        for t in array["tensors"]:
            name, shape, offset = t["name"], t["shape"], t["offset"]
            if name in tensors:
                raise Mismatch(f"{name} is stored in the file, not only as slots")
            count = int(np.prod(shape, dtype=np.int64))
            if offset + count > n:
                raise Mismatch(f"{name}: offset {offset} + {count} > n {n}")
            index = np.empty(count, dtype=np.int64)
            sign = np.empty(count, dtype=np.float32)
            for j in range(count):
                index[j], sign[j] = slot_and_sign(seed, m, chunk, offset + j)
            scale = np.float32(float(t["scale"]))
            rebuilt = ((scale * sign) * slots[index]).astype(np.float32).reshape(shape)
            got = dense.get(name)
            if got is None:
                raise Mismatch(f"the decompressed file has no {name}")
            if got.dtype != np.float32 or list(got.shape) != list(shape):
                raise Mismatch(f"{name}: decompressed {got.dtype} {list(got.shape)}, expected float32 {shape}")
            if not np.array_equal(got.view(np.uint32), rebuilt.view(np.uint32)):
                bad = int(np.argmax(got.reshape(-1).view(np.uint32) != rebuilt.reshape(-1).view(np.uint32)))
                raise Mismatch(f"{name}: element {bad} is {got.reshape(-1)[bad]!r}, the map gives {rebuilt.reshape(-1)[bad]!r}")
            shared_names.append(name)
            elements += count
    if shared_names != expected["shared"]:
        raise Mismatch(f"shared tensors {shared_names}, expected {expected['shared']}")
    others = 0
    for name, t in tensors.items():
        if name.endswith(".slots"):
            continue
        got = dense.get(name)
        if got is None:
            raise Mismatch(f"the decompressed file has no {name}")
        stored = np.asarray(t.data).reshape(got.shape)
        if stored.dtype != got.dtype or not np.array_equal(stored.view(np.uint8), got.view(np.uint8)):
            raise Mismatch(f"{name}: the decompressed values differ from the stored ones")
        others += 1
    if len(dense) != len(shared_names) + others:
        raise Mismatch(f"the decompressed file has {len(dense)} tensors, expected {len(shared_names) + others}")
    print(f"verified {len(shared_names)} shared tensors ({elements} elements), {others} dense tensors")


def main(argv):
    if len(argv) != 5 or argv[1] != "verify":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        verify(argv[2], argv[3], argv[4])
    except Mismatch as error:
        print(f"mismatch: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
