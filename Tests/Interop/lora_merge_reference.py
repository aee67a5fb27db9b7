#!/usr/bin/env python3
"""Reference LoRA merge with PEFT's semantics (numpy + safetensors only), for cross-checking ModelPress.

    lora_merge_reference.py BASE.safetensors OUT.safetensors ADAPTER_DIR[:WEIGHT] [ADAPTER_DIR[:WEIGHT] ...]
    lora_merge_reference.py --self-test

Each ADAPTER_DIR holds adapter_config.json and adapter_model.safetensors as PEFT's save_pretrained
writes them; WEIGHT (default 1) multiplies that adapter's deltas. What it does, following
/work/shared/reference/algorithms.md section 6 and huggingface/peft (src/peft/tuners/lora/layer.py
Linear.merge / get_delta_weight, variants.py DoraLinearVariant.merge_safe, dora.py get_weight_norm,
utils/other.py get_pattern_key, utils/save_and_load.py get_peft_model_state_dict):

  keys      every adapter key starts with `base_model.model.`, which is stripped; then
              <M>.lora_A.weight [r, in] + <M>.lora_B.weight [out, r]    -> delta of <M>.weight
              <M>.lora_embedding_A [r, n] + <M>.lora_embedding_B [d, r] -> delta of <M>.weight [n, d]
              <M>.lora_B.bias [out]                                     -> delta of <M>.bias
              <M>.lora_magnitude_vector [out]                           -> DoRA renormalisation of <M>.weight
              anything else, <X> (modules_to_save, bias="all"/"lora_only"; `.base_layer.` dropped)
                                                                        -> replaces base tensor <X>
  scaling   r_M = rank_pattern[first matching key] else r, alpha_M likewise from alpha_pattern, a key p
            matching when re.match(rf"(.*\\.)?({p})$", M) succeeds, keys tried in the JSON file's order;
            scaling = alpha_M / sqrt(r_M) with use_rslora, alpha_M / r_M otherwise. r_M must equal
            lora_A's first dimension; if not, the tensor's rank is used and a warning printed.
  delta     dW = scaling * (B @ A)  [out, in];  transposed with fan_in_fan_out (Conv1D storage [in, out]);
            embeddings: dW = scaling * (B_emb @ A_emb)^T.  Bias: db = scaling * lora_B.bias, added to
            <M>.bias (an error if the base has none, as in PEFT).
  DoRA      V = W + dW in the [out, in] orientation (dW including the scaling), n_o = ||V[o, :]||_2,
            W' = (m_o / n_o) * V[o, :], transposed back with fan_in_fan_out. The bias delta is added
            without DoRA's factor (PEFT's merge does the same).
  several   adapters are applied one after the other in the given order, all in float64 and rounded
            once at the end: for plain LoRA that is W + sum_i w_i dW_i (order-free); a DoRA adapter
            renormalises the rows of whatever the previous adapters produced, so its position matters.
            WEIGHT multiplies dW (and db) of plain and DoRA adapters alike; replaced tensors ignore it
            (a warning when WEIGHT != 1); two adapters replacing one tensor is an error.
  numbers   float64 throughout; every changed tensor is rounded once to the base tensor's dtype
            (F32, F16, BF16 or F64) with round-to-nearest-even (BF16 via round-to-odd to F32, so there
            is no double rounding). Untouched tensors are copied bit for bit, in the base's order, with
            the base's __metadata__. Non-finite results are an error (PEFT's safe_merge check).

stderr gets one line per changed tensor: ||dW||/||W|| of the total change made to it (and, for DoRA,
the change of the LoRA part alone). Exit status: 0 on success, 1 on a malformed or unsupported input,
2 on a usage error.

--self-test merges every adapter committed under TestModels/ (pico-llama-lora/{plain,rslora,dora},
pico-gpt2-lora/fan-in-fan-out, and two multi-adapter combinations) with this script and compares one
module of each with a direct computation written out by hand (literal scalings read off the configs,
einsum products, per-row fsum norms), checks the rounding helpers against exact rational arithmetic,
and checks pattern matching, ordering and error cases on tiny synthetic adapters.
"""

import json
import math
import os
import re
import sys
import tempfile
from fractions import Fraction

import numpy as np
import safetensors

PREFIX = "base_model.model."
LORA_SUFFIXES = {  # key suffix -> role
    ".lora_A.weight": "A", ".lora_B.weight": "B", ".lora_B.bias": "bias",
    ".lora_embedding_A": "embA", ".lora_embedding_B": "embB", ".lora_magnitude_vector": "magnitude",
}
UNSUPPORTED = (".lora_A.", ".lora_B.", ".lora_magnitude_vector.", "token_adapter", "trainable_tokens")
NUMPY = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}
WRITE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",  # passed-through
               "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


class Malformed(Exception):
    pass


def warn(message):
    print("lora_merge_reference: warning: " + message, file=sys.stderr)


# --- safetensors, read and written without a framework ------------------------------------------------
def read_safetensors(path):
    """(tensors, metadata): tensors maps name -> (dtype string, shape tuple, raw bytes), in file order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise Malformed(f"{path}: not a safetensors file")
    size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as error:
        raise Malformed(f"{path}: unreadable header ({error})")
    metadata = header.pop("__metadata__", None)
    start = 8 + size
    tensors = {}
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = info["data_offsets"]
        tensors[name] = (info["dtype"], tuple(info["shape"]), data[start + begin:start + end])
    return tensors, metadata


def to_float64(dtype, shape, raw, name="tensor"):
    if dtype not in NUMPY:
        raise Malformed(f"{name}: dtype {dtype} is not a float type this reference merges (F64, F32, F16, BF16)")
    values = np.frombuffer(raw, dtype=NUMPY[dtype])
    if dtype == "BF16":
        values = (values.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return values.astype(np.float64).reshape(shape)


def bf16_bits_from_float64(values):
    """float64 -> BF16 bits, round to nearest even, in one rounding: first to F32 with round-to-odd
    (truncate, then set the last bit if anything was cut off), whose 24 bits keep the information the
    second, round-half-to-even step to 8 bits needs."""
    values = np.asarray(values, dtype=np.float64)
    f32 = values.astype(np.float32)  # nearest even
    inexact = f32.astype(np.float64) != values
    away = inexact & (np.abs(f32.astype(np.float64)) > np.abs(values))
    f32 = np.where(away, np.nextafter(f32, np.float32(0)), f32)  # now truncated toward zero
    bits = f32.view(np.uint32).copy()
    bits[inexact & np.isfinite(f32)] |= np.uint32(1)  # round to odd
    wide = bits.astype(np.uint64)
    is_nan = (wide & np.uint64(0x7FFFFFFF)) > np.uint64(0x7F800000)
    rounded = (wide + np.uint64(0x7FFF) + ((wide >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    rounded = np.where(is_nan, (wide >> np.uint64(16)) | np.uint64(0x40), rounded)
    return rounded.astype(np.uint16)


def from_float64(values, dtype):
    """Raw little-endian bytes of `values` rounded (nearest even) to `dtype`."""
    if dtype == "BF16":
        return bf16_bits_from_float64(values).astype("<u2").tobytes()
    return np.ascontiguousarray(values, dtype=np.float64).astype(NUMPY[dtype]).tobytes()


def write_safetensors(path, tensors, metadata):
    """Writes name -> (dtype, shape, raw bytes) with the safetensors library (its layout: sorted by dtype
    then name, header padded to a multiple of 8)."""
    arrays = {}
    for name, (dtype, shape, raw) in tensors.items():
        if dtype not in WRITE_NAMES:
            raise Malformed(f"{name}: cannot write dtype {dtype}")
        arrays[name] = (dtype, shape, np.frombuffer(raw, dtype=np.uint8).copy())
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.7
        specs = {name: safetensors.TensorSpec(dtype=WRITE_NAMES[dtype], shape=list(shape), data_ptr=a.ctypes.data,
                                              data_len=a.nbytes) for name, (dtype, shape, a) in arrays.items()}
    else:
        specs = {name: {"dtype": WRITE_NAMES[dtype], "shape": list(shape), "data": a.tobytes()}
                 for name, (dtype, shape, a) in arrays.items()}
    data = bytes(safetensors.serialize(specs, metadata=metadata))
    del arrays  # kept alive until serialize returned
    with open(path, "wb") as f:
        f.write(data)


# --- adapters ---------------------------------------------------------------------------------------
def pattern_value(patterns, module, default):
    """PEFT's get_pattern_key: the first key p (in the JSON's order) with re.match(rf"(.*\\.)?({p})$", module)."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def load_adapter(folder):
    """(config, {module: {role: float64 array}}, {base key: float64 array} replacements)."""
    config_path = os.path.join(folder, "adapter_config.json")
    model_path = os.path.join(folder, "adapter_model.safetensors")
    for path in (config_path, model_path):
        if not os.path.isfile(path):
            raise Malformed(f"{folder}: no {os.path.basename(path)} (adapter_model.bin is not supported)")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)  # dicts keep the file's key order: pattern matching depends on it
    if config.get("peft_type") != "LORA":
        raise Malformed(f"{config_path}: peft_type {config.get('peft_type')!r}, expected 'LORA'")
    tensors, _ = read_safetensors(model_path)
    modules, replacements = {}, {}
    for key, (dtype, shape, raw) in tensors.items():
        if not key.startswith(PREFIX):
            raise Malformed(f"{model_path}: key {key!r} does not start with {PREFIX!r}")
        rest = key[len(PREFIX):]
        role = next(((m, r) for s, r in LORA_SUFFIXES.items() if rest.endswith(s) for m in [rest[:-len(s)]]), None)
        value = to_float64(dtype, shape, raw, key)
        if role is not None:
            modules.setdefault(role[0], {})[role[1]] = value
        elif any(marker in rest for marker in UNSUPPORTED):
            raise Malformed(f"{model_path}: unsupported adapter tensor {key!r}")
        else:
            replacements[rest.replace(".base_layer.", ".")] = value
    for module, parts in modules.items():
        pairs = [("A" in parts) + ("B" in parts), ("embA" in parts) + ("embB" in parts)]
        if sorted(pairs) != [0, 2]:
            raise Malformed(f"{model_path}: {module} needs exactly one lora_A/lora_B (or lora_embedding_A/B) pair")
        if "magnitude" in parts and not config.get("use_dora", False):
            warn(f"{folder}: {module} has a lora_magnitude_vector but use_dora is false; merging it as DoRA")
    return config, modules, replacements


def module_delta(config, module, parts, folder):
    """(dW in the base weight's storage orientation, dW in [out, in], db or None, scaling)."""
    embedding = "embA" in parts
    a, b = (parts["embA"], parts["embB"]) if embedding else (parts["A"], parts["B"])
    if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0]:
        raise Malformed(f"{folder}: {module}: lora shapes A {a.shape}, B {b.shape} (conv adapters are not supported)")
    rank = a.shape[0]
    configured = pattern_value(config.get("rank_pattern"), module, config.get("r", 8))
    if configured != rank:
        warn(f"{folder}: {module}: the config says r = {configured}, lora_A has rank {rank}; using {rank}")
    alpha = pattern_value(config.get("alpha_pattern"), module, config.get("lora_alpha", 8))
    scaling = alpha / math.sqrt(rank) if config.get("use_rslora", False) else alpha / rank
    product = (b @ a) * scaling
    if embedding:
        stored = product.T  # [num_embeddings, dim]; DoRA on embeddings is not supported here
        out_in = product
    else:
        out_in = product
        stored = product.T if config.get("fan_in_fan_out", False) else product
    bias = parts["bias"] * scaling if "bias" in parts else None
    return stored, out_in, bias, scaling


def merge(base_path, out_path, adapters, log=sys.stderr):
    """Merges [(folder, weight)] into the base file and writes out_path. Returns {base key: float64 result}."""
    base, metadata = read_safetensors(base_path)
    current, replaced_by = {}, {}

    def value(key, why):
        if key not in base:
            raise Malformed(f"{why}: the base has no tensor {key!r}")
        if key not in current:
            current[key] = to_float64(*base[key], key)
        return current[key]

    for folder, weight in adapters:
        config, modules, replacements = load_adapter(folder)
        fan_in_fan_out = config.get("fan_in_fan_out", False)
        for module in sorted(modules):
            parts = modules[module]
            stored, out_in, bias, _ = module_delta(config, module, parts, folder)
            key = module + ".weight"
            w = value(key, f"{folder}: {module}")
            if w.shape != stored.shape:
                raise Malformed(f"{folder}: {module}: delta {stored.shape} does not match base {key} {w.shape}"
                                + ("" if fan_in_fan_out else " (fan_in_fan_out is false)"))
            if "magnitude" in parts:
                if "embA" in parts:
                    raise Malformed(f"{folder}: {module}: DoRA on embeddings is not supported")
                v = (w.T if fan_in_fan_out else w) + weight * out_in
                magnitude = parts["magnitude"].reshape(-1)
                if magnitude.shape != (v.shape[0],):
                    raise Malformed(f"{folder}: {module}: lora_magnitude_vector {magnitude.shape}, expected ({v.shape[0]},)")
                norms = np.sqrt(np.sum(v * v, axis=1))
                merged = (magnitude / norms)[:, None] * v
                if log is not None:
                    ratio = np.linalg.norm(weight * out_in) / np.linalg.norm(w)
                    print(f"{key}: DoRA, LoRA part alone ||dW||/||W|| = {ratio:.6f}", file=log)
                current[key] = merged.T if fan_in_fan_out else merged
            else:
                current[key] = w + weight * stored
            if bias is not None:
                bias_key = module + ".bias"
                if bias_key not in base:
                    raise Malformed(f"{folder}: {module}: lora_bias is set but the base has no {bias_key} "
                                    "(PEFT: 'Impossible to merge LoRA with lora_bias=True')")
                b = value(bias_key, f"{folder}: {module}")
                if b.shape != bias.shape:
                    raise Malformed(f"{folder}: {module}: lora_B.bias {bias.shape} vs base {bias_key} {b.shape}")
                current[bias_key] = b + weight * bias
        for key, replacement in replacements.items():
            if key in replaced_by:
                raise Malformed(f"{folder}: {key} is also replaced by {replaced_by[key]}")
            old = value(key, f"{folder}: modules_to_save / bias tensor")
            if old.shape != replacement.shape:
                raise Malformed(f"{folder}: replacement {key} {replacement.shape} vs base {old.shape}")
            if weight != 1:
                warn(f"{folder}: weight {weight} does not apply to the replaced tensor {key}")
            replaced_by[key] = folder
            current[key] = replacement.copy()

    out = {}
    for key, (dtype, shape, raw) in base.items():
        if key in current:
            result = current[key]
            if not np.all(np.isfinite(result)):
                raise Malformed(f"{key}: non-finite values after merging")
            original = to_float64(dtype, shape, raw, key)
            norm = np.linalg.norm(original)
            ratio = np.linalg.norm(result - original) / norm if norm > 0 else float("inf")
            if log is not None:
                print(f"{key}: ||dW||/||W|| = {ratio:.6f}", file=log)
            out[key] = (dtype, shape, from_float64(result, dtype))
        else:
            out[key] = (dtype, shape, raw)
    write_safetensors(out_path, out, metadata)
    return current


# --- self-test ---------------------------------------------------------------------------------------
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_MODELS = os.path.normpath(os.path.join(HERE, "..", "..", "TestModels"))


def exact_nearest_even(x, dtype):
    """The nearest-even value of `dtype` to float64 x, by exact rational arithmetic (finite, normal range)."""
    bits = {"BF16": 8, "F16": 11, "F32": 24}[dtype]
    q = Fraction(x)
    if q == 0:
        return 0.0
    sign = -1 if q < 0 else 1
    q = abs(q)
    e = math.floor(math.log2(q))
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    if dtype == "F16":
        e = max(e, -14)  # subnormals share the exponent of the smallest normal
    step = Fraction(2) ** (e - bits + 1)
    n, remainder = divmod(q, step)
    if remainder * 2 > step or (remainder * 2 == step and n % 2 == 1):
        n += 1
    return sign * float(n * step)


def widened(raw, dtype, shape):
    return to_float64(dtype, shape, raw)


def check_rounding():
    """from_float64 against exact rational nearest-even rounding, on pseudo-random doubles and on doubles
    just around BF16 rounding midpoints (where rounding through F32 first would go wrong)."""
    values = [1.0 + 2.0 ** -8 + 2.0 ** -30, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 0.1, -0.3, 3.0e-3, 65000.0,
              -(1.0 + 2.0 ** -8 + 2.0 ** -40), 1.0 + 2.0 ** -8 - 2.0 ** -40, 2.0 ** -20 + 2.0 ** -40, 0.0, -0.0]
    z = 0x9E3779B97F4A7C15
    for _ in range(3000):
        z = (z * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        sign = -1.0 if z & 1 else 1.0
        exponent = 2.0 ** ((z >> 1) % 14 - 10)
        values.append(sign * (1.0 + (z >> 12) / float(1 << 52)) * exponent)
        midpoint = 1.0 + ((z >> 5) % 128) / 128.0 + 1.0 / 256.0  # halfway between two BF16 values
        offset = [0.0, 2.0 ** -30, -2.0 ** -30, 2.0 ** -45, -2.0 ** -45][(z >> 16) % 5]
        values.append(sign * (midpoint + offset) * exponent)
    values = np.array(values, dtype=np.float64)
    for dtype in ("BF16", "F16", "F32"):
        got = widened(from_float64(values, dtype), dtype, values.shape)
        want = np.array([exact_nearest_even(float(x), dtype) for x in values])
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{dtype} rounding differs at {values[bad[:5]]}: {got[bad[:5]]} vs {want[bad[:5]]}"
    # the double-rounding trap: F32 first would land on the BF16 midpoint 1 + 2^-8 and round to 1.0
    assert widened(from_float64(np.array([1.0 + 2.0 ** -8 + 2.0 ** -30]), "BF16"), "BF16", (1,))[0] == 1.0 + 2.0 ** -7
    naive = (np.array([1.0 + 2.0 ** -8 + 2.0 ** -30]).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    assert naive[0] == 0x3F80, "the trap must catch double rounding (F32 first, then truncate or tie to even)"
    return len(values)


def expect_rounded(got_raw, dtype, shape, exact, label):
    """The stored tensor must be `exact` (float64, computed independently) rounded to nearest: within half
    a unit in the last place of the stored value, plus float64 noise (the two computations sum in
    different orders)."""
    got = widened(got_raw, dtype, shape)
    half_ulp = {"BF16": 2.0 ** -9, "F16": 2.0 ** -12, "F32": 2.0 ** -25}[dtype]
    # |got - exact| <= half an ulp of got (relative 2^-p of the binade), plus float64 noise
    binade = 2.0 ** np.floor(np.log2(np.maximum(np.abs(got), 1e-30)))
    slack = half_ulp * 2 * binade + 1e-12 * np.maximum(np.abs(exact), 1e-30)
    err = np.abs(got - exact)
    bad = np.flatnonzero(err > slack)
    assert bad.size == 0, f"{label}: {bad.size} elements are not the rounded hand result (first {bad[:3]})"


def hand_lowrank(b, a, scaling):
    return scaling * np.einsum("ir,rj->ij", b, a)


def self_test():
    checks = []
    counted = check_rounding()
    checks.append(f"rounding of {counted} doubles to BF16/F16/F32 matches exact rational nearest-even")

    f32_base = os.path.join(TEST_MODELS, "pico-llama-f32", "model.safetensors")
    bf16_base = os.path.join(TEST_MODELS, "pico-llama-bf16", "model.safetensors")
    gpt2_base = os.path.join(TEST_MODELS, "pico-gpt2-conv1d", "model.safetensors")
    plain = os.path.join(TEST_MODELS, "pico-llama-lora", "plain")
    rslora = os.path.join(TEST_MODELS, "pico-llama-lora", "rslora")
    dora = os.path.join(TEST_MODELS, "pico-llama-lora", "dora")
    fifo = os.path.join(TEST_MODELS, "pico-gpt2-lora", "fan-in-fan-out")

    def adapter_tensor(folder, key):
        tensors, _ = read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
        return widened(tensors[key][2], tensors[key][0], tensors[key][1])

    def run(base_path, adapters):
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "merged.safetensors")
            merge(base_path, out_path, adapters, log=None)
            merged, metadata = read_safetensors(out_path)
        base, base_metadata = read_safetensors(base_path)
        assert metadata == base_metadata and list(sorted(merged)) == list(sorted(base))
        return base, merged

    def unchanged(base, merged, keys, label):
        for key in keys:
            assert merged[key] == base[key], f"{label}: {key} must be copied bit for bit"

    def lora_pair(folder, module):
        a = adapter_tensor(folder, f"{PREFIX}{module}.lora_A.weight")
        b = adapter_tensor(folder, f"{PREFIX}{module}.lora_B.weight")
        return b, a

    # 1. plain: layer 1 v_proj has alpha 32 from alpha_pattern (scaling 32/8 = 4), down_proj rank 4 from
    #    rank_pattern (scaling 16/4 = 4), q_proj the defaults (16/8 = 2); lm_head is replaced.
    base, merged = run(f32_base, [(plain, 1.0)])
    for module, scaling in [("model.layers.1.self_attn.v_proj", 4.0), ("model.layers.0.mlp.down_proj", 4.0),
                            ("model.layers.0.self_attn.q_proj", 2.0)]:
        key = module + ".weight"
        w = widened(base[key][2], "F32", base[key][1])
        b, a = lora_pair(plain, module)
        expect_rounded(merged[key][2], "F32", base[key][1], w + hand_lowrank(b, a, scaling), f"plain {module}")
    head = adapter_tensor(plain, PREFIX + "lm_head.weight")
    assert np.array_equal(widened(merged["lm_head.weight"][2], "F32", (128, 256)), head), "lm_head replacement"
    touched = {f"model.layers.{n}.{m}.weight" for n in (0, 1)
               for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")} | {"lm_head.weight"}
    unchanged(base, merged, [k for k in base if k not in touched], "plain")
    assert all(merged[k] != base[k] for k in touched), "plain: every targeted tensor changes"
    checks.append("plain: v_proj (alpha_pattern), down_proj (rank_pattern), q_proj, lm_head replacement, rest bit-identical")

    # 2. rsLoRA on the BF16 base: scaling 8 / sqrt(16) = 2, BF16 factors, BF16 output.
    base, merged = run(bf16_base, [(rslora, 1.0)])
    module = "model.layers.0.self_attn.k_proj"
    w = widened(base[module + ".weight"][2], "BF16", (128, 256))
    b, a = lora_pair(rslora, module)
    expect_rounded(merged[module + ".weight"][2], "BF16", (128, 256), w + hand_lowrank(b, a, 2.0), "rslora k_proj")
    touched = {f"model.layers.{n}.self_attn.{m}.weight" for n in (0, 1) for m in ("q_proj", "k_proj")}
    unchanged(base, merged, [k for k in base if k not in touched], "rslora")
    checks.append("rslora: k_proj on the BF16 base (scaling 2), rest bit-identical")

    # 3. DoRA: scaling 8/4 = 2; W' = m / ||W + dW||_row * (W + dW), the norms summed per row with fsum.
    base, merged = run(f32_base, [(dora, 1.0)])
    module = "model.layers.1.mlp.up_proj"
    w = widened(base[module + ".weight"][2], "F32", (256, 256))
    b, a = lora_pair(dora, module)
    m = adapter_tensor(dora, PREFIX + module + ".lora_magnitude_vector")
    v = w + hand_lowrank(b, a, 2.0)
    norms = np.array([math.sqrt(math.fsum(float(x) * float(x) for x in row)) for row in v])
    expected = (m / norms)[:, None] * v
    expect_rounded(merged[module + ".weight"][2], "F32", (256, 256), expected, "dora up_proj")
    got = widened(merged[module + ".weight"][2], "F32", (256, 256))
    row_change = np.linalg.norm(got, axis=1) / np.linalg.norm(w, axis=1)
    assert np.abs(row_change - 1).max() > 0.05, "DoRA must visibly rescale rows"
    assert np.allclose(np.linalg.norm(got, axis=1), m, rtol=1e-6), "merged DoRA rows have norm m"
    checks.append("dora: up_proj rows = m / ||W + 2BA|| (fsum) * (W + 2BA), row norms equal m")

    # 4. fan_in_fan_out on Conv1D storage [in, out] with lora_bias: W + 2 (BA)^T, b + 2 lora_B.bias.
    base, merged = run(gpt2_base, [(fifo, 1.0)])
    module = "transformer.h.0.attn.c_attn"
    w = widened(base[module + ".weight"][2], "F32", (64, 192))
    b, a = lora_pair(fifo, module)
    expect_rounded(merged[module + ".weight"][2], "F32", (64, 192), w + hand_lowrank(b, a, 2.0).T, "fifo c_attn")
    bias = widened(base[module + ".bias"][2], "F32", (192,))
    lora_bias = adapter_tensor(fifo, PREFIX + module + ".lora_B.bias")
    expect_rounded(merged[module + ".bias"][2], "F32", (192,), bias + 2.0 * lora_bias, "fifo c_attn bias")
    unchanged(base, merged, ["transformer.h.0.mlp.c_proj.weight", "transformer.h.0.mlp.c_proj.bias",
                             "transformer.h.0.ln_1.weight"], "fan-in-fan-out")
    checks.append("fan-in-fan-out: c_attn weight [64, 192] += 2 (BA)^T, bias += 2 lora_B.bias, c_proj/ln_1 untouched")

    # 5. Several adapters: plain at 0.5 and rsLoRA at -1 both touch q_proj: W + 0.5*2*B1A1 - 2*B2A2.
    base, merged = run(f32_base, [(plain, 0.5), (rslora, -1.0), (dora, 1.0)])
    module = "model.layers.1.self_attn.q_proj"
    w = widened(base[module + ".weight"][2], "F32", (256, 256))
    b1, a1 = lora_pair(plain, module)
    b2, a2 = lora_pair(rslora, module)
    expected = w + 0.5 * hand_lowrank(b1, a1, 2.0) - hand_lowrank(b2, a2, 2.0)
    expect_rounded(merged[module + ".weight"][2], "F32", (256, 256), expected, "weighted q_proj")
    module = "model.layers.0.self_attn.o_proj"  # DoRA only: as in the single-adapter merge
    _, alone = run(f32_base, [(dora, 1.0)])
    assert merged[module + ".weight"] == alone[module + ".weight"]
    checks.append("plain:0.5 + rslora:-1 + dora: q_proj = W + 0.5 dW1 - dW2, o_proj as DoRA alone")

    checks += synthetic_checks()
    for line in checks:
        print("lora_merge_reference --self-test: ok: " + line)
    print(f"lora_merge_reference --self-test: {len(checks)} checks passed")


def synthetic_checks():
    """Tiny hand-made adapters: pattern order, DoRA ordering, weights, errors."""
    checks = []
    w = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 4.0]], dtype=np.float32)           # [out 2, in 3]
    a = np.array([[0.5, 0.0, 1.0]], dtype=np.float32)                              # [r 1, in 3]
    b = np.array([[1.0], [2.0]], dtype=np.float32)                                 # [out 2, r 1]
    with tempfile.TemporaryDirectory() as tmp:
        base_path = os.path.join(tmp, "base.safetensors")
        write_safetensors(base_path, {"model.proj.weight": ("F32", (2, 3), w.tobytes()),
                                      "model.other.weight": ("F32", (2, 3), w.tobytes())}, {"format": "pt"})

        def adapter(name, config, tensors):
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            full = {"peft_type": "LORA", "r": 1, "lora_alpha": 1, "use_rslora": False, "fan_in_fan_out": False}
            full.update(config)
            with open(os.path.join(folder, "adapter_config.json"), "w") as f:
                f.write(json.dumps(full, indent=2))  # not sorted: the pattern order is the file's order
            write_safetensors(os.path.join(folder, "adapter_model.safetensors"),
                              {k: ("F32", v.shape, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                               for k, v in tensors.items()}, {"format": "pt"})
            return folder

        pair = {PREFIX + "model.proj.lora_A.weight": a, PREFIX + "model.proj.lora_B.weight": b}
        ba = b.astype(np.float64) @ a.astype(np.float64)  # [[0.5, 0, 1], [1, 0, 2]]
        # first match wins, in the file's order: "proj" matches before "model.proj" here ...
        first = adapter("first", {"alpha_pattern": {"proj": 4, "model.proj": 8}}, pair)
        second = adapter("second", {"alpha_pattern": {"model.proj": 8, "proj": 4}}, pair)
        # ... a pattern matches whole trailing name components only ("roj" does not match "proj")
        partial = adapter("partial", {"alpha_pattern": {"roj": 16}, "use_rslora": True, "r": 1}, pair)
        out = os.path.join(tmp, "out.safetensors")
        for folder, scaling in [(first, 4.0), (second, 8.0), (partial, 1.0)]:
            merge(base_path, out, [(folder, 1.0)], log=None)
            got = to_float64(*read_safetensors(out)[0]["model.proj.weight"])
            assert np.array_equal(got, w + scaling * ba), f"{os.path.basename(folder)}: scaling {scaling}"
        checks.append("alpha_pattern: first matching key in file order wins; keys match whole name components")

        magnitude = np.array([3.0, 5.0], dtype=np.float32)
        dora = adapter("dora", {"use_dora": True}, dict(pair, **{PREFIX + "model.proj.lora_magnitude_vector": magnitude}))
        merge(base_path, out, [(dora, 1.0), (first, 1.0)], log=None)
        dora_then_plain = to_float64(*read_safetensors(out)[0]["model.proj.weight"])
        merge(base_path, out, [(first, 1.0), (dora, 1.0)], log=None)
        plain_then_dora = to_float64(*read_safetensors(out)[0]["model.proj.weight"])
        v = w + ba
        normalised = (magnitude[:, None] / np.sqrt((v * v).sum(axis=1))[:, None]) * v
        assert np.allclose(dora_then_plain, normalised + 4 * ba, rtol=1e-7, atol=0)
        v2 = w + 4 * ba + ba
        assert np.allclose(plain_then_dora, (magnitude[:, None] / np.sqrt((v2 * v2).sum(axis=1))[:, None]) * v2,
                           rtol=1e-7, atol=0)
        assert np.allclose(np.linalg.norm(plain_then_dora, axis=1), magnitude, rtol=1e-7)
        checks.append("DoRA adapters apply in the given order (renormalising what came before)")

        merge(base_path, out, [(first, 0.25), (second, -0.5)], log=None)
        got = to_float64(*read_safetensors(out)[0]["model.proj.weight"])
        assert np.allclose(got, w + (0.25 * 4 - 0.5 * 8) * ba, rtol=1e-7, atol=1e-7)
        checks.append("weights: W + sum_i w_i dW_i")

        failures = [
            ("bias", {"lora_bias": True}, dict(pair, **{PREFIX + "model.proj.lora_B.bias": np.ones(2)}), "no model.proj.bias"),
            ("shape", {}, {PREFIX + "model.proj.lora_A.weight": a, PREFIX + "model.proj.lora_B.weight": np.ones((3, 1))},
             "does not match"),
            ("missing", {}, {PREFIX + "model.proj.lora_A.weight": a}, "exactly one"),
            ("prefix", {}, {"model.proj.lora_A.weight": a, "model.proj.lora_B.weight": b}, "does not start"),
            ("absent", {}, {PREFIX + "model.nothing.lora_A.weight": a, PREFIX + "model.nothing.lora_B.weight": b},
             "no tensor"),
            ("fifo", {"fan_in_fan_out": True}, pair, "does not match"),
        ]
        for name, config, tensors, message in failures:
            folder = adapter("bad-" + name, config, tensors)
            try:
                merge(base_path, out, [(folder, 1.0)], log=None)
            except Malformed as error:
                assert message in str(error), f"{name}: {error}"
            else:
                raise AssertionError(f"{name}: expected an error")
        twice = adapter("replace", {}, {PREFIX + "model.other.weight": w})
        try:
            merge(base_path, out, [(twice, 1.0), (twice, 1.0)], log=None)
        except Malformed as error:
            assert "also replaced" in str(error)
        else:
            raise AssertionError("a tensor replaced twice must be an error")
        checks.append(f"{len(failures) + 1} malformed inputs are refused")
    return checks


def parse_adapter(argument):
    folder, weight = argument, 1.0
    if ":" in argument:
        head, tail = argument.rsplit(":", 1)
        try:
            weight = float(tail)
            folder = head
        except ValueError:
            pass
    if not math.isfinite(weight):
        raise ValueError(f"{argument}: the weight must be finite")
    return folder, weight


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    if len(argv) < 3 or any(a.startswith("--") for a in argv):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        adapters = [parse_adapter(a) for a in argv[2:]]
    except ValueError as error:
        print(f"lora_merge_reference: {error}", file=sys.stderr)
        return 2
    try:
        merge(argv[0], argv[1], adapters)
    except (Malformed, OSError) as error:
        print(f"lora_merge_reference: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
