#!/usr/bin/env python3
"""Generates the test checkpoints and LoRA adapters in TestModels/, byte-for-byte reproducibly.

    python3 TestModels/make_test_models.py            # (re)write the files, print their sha256
    python3 TestModels/make_test_models.py --check    # regenerate into a temp dir, compare bytes
                                                      # with the committed files and README hashes

Outputs (relative to this script's folder):

    pico-llama-f32/{model.safetensors, config.json}
    pico-llama-bf16/{model.safetensors, config.json}
    pico-llama-bf16-sharded/{model-00001-of-00002.safetensors, model-00002-of-00002.safetensors,
                             model.safetensors.index.json, config.json}
    pico-llama-calibration/{calibration.safetensors, gradients.safetensors}
    pico-gpt2-conv1d/model.safetensors
    pico-llama-lora/{plain, rslora, dora}/{adapter_config.json, adapter_model.safetensors}
    pico-gpt2-lora/fan-in-fan-out/{adapter_config.json, adapter_model.safetensors}

Reproducibility: the weights use only SplitMix64 in uint64 arithmetic and exact IEEE float64
add/multiply (no numpy.random, no log/cos, no numpy reductions whose summation order may vary),
then one float64 -> float32 cast and, for BF16, round-half-to-even in uint32 bit arithmetic.
The LoRA adapters add low-rank products summed over the rank in a fixed order and, for the DoRA
magnitudes, row norms summed column by column and one IEEE square root (correctly rounded).
The calibration statistics and gradients come from a float64 forward pass (BLAS products, exp,
sin/cos), so their float64 values may differ between machines in the last bits; they are rounded
once, to F16 and F32, which such differences practically never change.
Needs python3, numpy and safetensors only.
"""

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile

import numpy as np
import safetensors
import safetensors.numpy

HERE = os.path.dirname(os.path.abspath(__file__))

# --- model shape ---------------------------------------------------------------------------------
VOCAB = 128
HIDDEN = 256
INTERMEDIATE = 256
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS  # 64
LAYERS = 2
RMS_NORM_EPS = 1e-5

BASE_SEED = 0x4D6F64656C507265  # "ModelPre"
WEIGHT_STD = 0.02
NORM_NOISE_STD = 0.02
OUTLIER_SCALE = 8.0
OUTLIER_COLUMNS = 2
OUTLIER_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
ROPE_THETA = 10000.0

# Calibration: synthetic token sequences through the F32 weights (see calibration_statistics).
CALIBRATION_SEED = 0x43616C6962726174  # "Calibrat"
CALIBRATION_SEQUENCES = 16
CALIBRATION_LENGTH = 64
F16_MAX = 65504.0
GRADIENT_WEIGHT = "lm_head.weight"  # the weight whose per-sample gradients the script stores

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# --- SplitMix64 ----------------------------------------------------------------------------------
def _mix(z):
    """SplitMix64 output function on a uint64 array (wrap-around multiplication)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class SplitMix64:
    """SplitMix64 (the same sequence as ModelPress's `SeededGenerator(seed:)`), drawn in blocks."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self, n):
        """The next `n` outputs as a uint64 array."""
        with np.errstate(over="ignore"):
            steps = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
            states = np.uint64(self.state) + steps
            out = _mix(states)
        self.state = (self.state + n * GOLDEN) & MASK64
        return out

    def uniform(self, n):
        """`n` uniforms in [0, 1): (z >> 11) * 2^-53, exact in float64."""
        return (self.next_u64(n) >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)

    def normal(self, n):
        """`n` approximately standard normal values: sum of 12 uniforms - 6 (Irwin-Hall),
        added one uniform at a time in a fixed order (exact IEEE float64 adds)."""
        u = self.uniform(12 * n).reshape(n, 12)
        acc = u[:, 0].copy()
        for j in range(1, 12):
            acc = acc + u[:, j]
        return acc - 6.0


def _splitmix_reference(seed, n):
    """Scalar pure-Python SplitMix64, used to self-check the vectorized version."""
    out = []
    for _ in range(n):
        seed = (seed + GOLDEN) & MASK64
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        out.append(z ^ (z >> 31))
    return out


def _self_check():
    # Published SplitMix64 test vector for seed 0.
    assert _splitmix_reference(0, 1)[0] == 0xE220A8397B1DCDAF
    gen = SplitMix64(BASE_SEED)
    got = [int(v) for v in gen.next_u64(3)] + [int(v) for v in gen.next_u64(2)]
    assert got == _splitmix_reference(BASE_SEED, 5), "vectorized SplitMix64 disagrees with the scalar one"


# --- tensors -------------------------------------------------------------------------------------
def tensor_specs():
    """(name, shape, kind) in Hugging Face state-dict order."""
    specs = [("model.embed_tokens.weight", (VOCAB, HIDDEN), "embedding")]
    kv = KV_HEADS * HEAD_DIM
    for n in range(LAYERS):
        p = f"model.layers.{n}."
        specs += [
            (p + "self_attn.q_proj.weight", (HIDDEN, HIDDEN), "linear"),
            (p + "self_attn.k_proj.weight", (kv, HIDDEN), "linear"),
            (p + "self_attn.v_proj.weight", (kv, HIDDEN), "linear"),
            (p + "self_attn.o_proj.weight", (HIDDEN, HIDDEN), "linear"),
            (p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN), "linear"),
            (p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN), "linear"),
            (p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE), "linear"),
            (p + "input_layernorm.weight", (HIDDEN,), "norm"),
            (p + "post_attention_layernorm.weight", (HIDDEN,), "norm"),
        ]
    specs += [("model.norm.weight", (HIDDEN,), "norm"), ("lm_head.weight", (VOCAB, HIDDEN), "linear")]
    return specs


def tensor_seed(index):
    return (BASE_SEED + (index + 1) * 0xD1B54A32D192ED03) & MASK64


def make_tensor(index, name, shape, kind):
    """float32 values of one tensor (deterministic in `index`)."""
    gen = SplitMix64(tensor_seed(index))
    if kind == "norm":
        values = gen.normal(shape[0]) * NORM_NOISE_STD + 1.0
        return values.astype(np.float32)
    rows, cols = shape
    if kind == "embedding":
        values = gen.normal(rows * cols).reshape(rows, cols) * WEIGHT_STD
        return values.astype(np.float32)
    return linear_values(gen, rows, cols, name.split(".")[-2] in OUTLIER_PROJECTIONS)


def linear_values(gen, rows, cols, with_outliers):
    """float32 [rows = out, cols = in] linear weight: per-row std jitter, optional outlier input columns."""
    row_std = WEIGHT_STD * (0.5 + gen.uniform(rows))
    outliers = []
    if with_outliers:
        while len(outliers) < OUTLIER_COLUMNS:
            c = int(gen.next_u64(1)[0] % np.uint64(cols))
            if c not in outliers:
                outliers.append(c)
    values = gen.normal(rows * cols).reshape(rows, cols) * row_std[:, None]
    for c in outliers:
        values[:, c] = values[:, c] * OUTLIER_SCALE
    return values.astype(np.float32)


def bf16_bits(values):
    """float32 -> bfloat16 bits, round half to even, in integer arithmetic (no NaNs here)."""
    bits = values.view(np.uint32).astype(np.uint64)
    assert not np.any((bits & np.uint64(0x7FFFFFFF)) > np.uint64(0x7F800000)), "NaN in weights"
    rounded = (bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    return rounded.astype(np.uint16)


# --- calibration ---------------------------------------------------------------------------------
def calibration_tokens():
    """[CALIBRATION_SEQUENCES, CALIBRATION_LENGTH] token ids: SplitMix64 outputs mod VOCAB (a power
    of two, so unbiased), drawn in row-major order from CALIBRATION_SEED."""
    gen = SplitMix64(CALIBRATION_SEED)
    ids = gen.next_u64(CALIBRATION_SEQUENCES * CALIBRATION_LENGTH) % np.uint64(VOCAB)
    return ids.astype(np.int64).reshape(CALIBRATION_SEQUENCES, CALIBRATION_LENGTH)


def rms_norm(x, weight):
    """Llama RMSNorm: x / sqrt(mean(x^2) + eps) * weight over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_NORM_EPS) * weight


def rotate_half(x):
    """Hugging Face's rotate_half: (x1, x2) -> (-x2, x1) on the two halves of the last axis."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def forward(weights, tokens):
    """float64 forward pass of pico-llama (LlamaForCausalLM semantics) on `tokens` [batch, seq].

    Returns (logits [batch, seq, VOCAB], inputs) where inputs maps every linear weight name to the
    activations it multiplies, [batch * seq, in]."""
    w = {name: v.astype(np.float64) for name, v in weights.items()}
    batch, seq = tokens.shape
    inputs = {}

    def linear(name, x):
        inputs[name] = x.reshape(-1, x.shape[-1])
        return x @ w[name].T

    # Rotary embeddings, HF convention: angle(p, i) = p * theta^(-2i/d), repeated over both halves.
    inv_freq = 1.0 / (ROPE_THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    angles = np.arange(seq, dtype=np.float64)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=-1)  # [seq, HEAD_DIM]
    cos, sin = np.cos(angles), np.sin(angles)
    causal = np.tril(np.ones((seq, seq), dtype=bool))
    group = HEADS // KV_HEADS

    h = w["model.embed_tokens.weight"][tokens]  # [batch, seq, HIDDEN]
    for n in range(LAYERS):
        p = f"model.layers.{n}."
        x = rms_norm(h, w[p + "input_layernorm.weight"])
        q = linear(p + "self_attn.q_proj.weight", x).reshape(batch, seq, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
        k = linear(p + "self_attn.k_proj.weight", x).reshape(batch, seq, KV_HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
        v = linear(p + "self_attn.v_proj.weight", x).reshape(batch, seq, KV_HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, group, axis=1)  # query head j uses KV head j // group (HF repeat_kv)
        v = np.repeat(v, group, axis=1)
        scores = (q @ k.transpose(0, 1, 3, 2)) / np.sqrt(HEAD_DIM)
        scores = np.where(causal, scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = probs / probs.sum(axis=-1, keepdims=True)
        assert np.all(np.abs(probs.sum(axis=-1) - 1.0) < 1e-12), "attention rows must sum to 1"
        assert np.all(probs[..., ~causal] == 0.0), "attention must be causal"
        attn = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, HEADS * HEAD_DIM)
        h = h + linear(p + "self_attn.o_proj.weight", attn)

        x = rms_norm(h, w[p + "post_attention_layernorm.weight"])
        gate = linear(p + "mlp.gate_proj.weight", x)
        up = linear(p + "mlp.up_proj.weight", x)
        h = h + linear(p + "mlp.down_proj.weight", gate / (1.0 + np.exp(-gate)) * up)

    logits = linear("lm_head.weight", rms_norm(h, w["model.norm.weight"]))
    assert np.all(np.isfinite(logits)), "non-finite logits"
    return logits, inputs


def calibration_statistics(inputs, count):
    """({"<W>.hessian": F16 [in, in], "<W>.act_sq": F32 [in]} for every linear weight W, token count).

    `inputs` are forward()'s activations on the `count` calibration tokens. hessian is the mean of
    x x^T over all calibration tokens, act_sq its diagonal (the mean of x_j^2), both computed in
    float64 and rounded once at the end."""
    stats = {}
    computed = []  # (input, hessian, act_sq): q/k/v and gate/up reuse their shared input's
    for name, x in inputs.items():
        assert x.shape[0] == count
        same = [c for c in computed if np.array_equal(c[0], x)]
        if same:
            stats[name + ".hessian"], stats[name + ".act_sq"] = same[0][1], same[0][2]
            continue
        hessian = (x.T @ x) / count
        hessian = (hessian + hessian.T) * 0.5  # exactly symmetric whatever the product did
        act_sq = np.diagonal(hessian).copy()
        assert np.allclose(act_sq, np.mean(x * x, axis=0), rtol=1e-12, atol=0.0)
        assert np.linalg.eigvalsh(hessian).min() > -1e-12 * act_sq.max(), f"{name}: Hessian not PSD"
        largest = np.abs(hessian).max()
        assert largest < F16_MAX / 64, f"{name}: Hessian entry {largest} too close to the F16 range"
        stats[name + ".hessian"] = hessian.astype(np.float16)
        stats[name + ".act_sq"] = act_sq.astype(np.float32)
        computed.append((x, stats[name + ".hessian"], stats[name + ".act_sq"]))
    linear_names = [name for name, _, kind in tensor_specs() if kind == "linear"]
    assert sorted(inputs) == sorted(linear_names), "every linear weight needs statistics"
    return stats, count


def _softmax(z):
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def _next_token_loss(h, w, targets):
    """Mean next-token cross-entropy of logits h @ w.T (float64, stable log-sum-exp)."""
    z = h @ w.T
    top = z.max(axis=-1)
    log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=-1))
    return np.mean(log_norm - z[np.arange(len(targets)), targets])


def _f16_rounding_margin(exact, rounded):
    """Per entry: the distance of `exact` (float64) from the nearest F16 rounding midpoint, and the
    F16 spacing there. Also checks that `rounded` is the nearest F16 value (ties never occur)."""
    low = np.where(rounded.astype(np.float64) <= exact, rounded, np.nextafter(rounded, np.float16(-np.inf)))
    high = np.nextafter(low, np.float16(np.inf))
    low64, high64 = low.astype(np.float64), high.astype(np.float64)
    assert np.all((low64 <= exact) & (exact <= high64))
    midpoint = (low64 + high64) * 0.5  # exact in float64
    nearest = np.where(exact < midpoint, low64, high64)
    assert np.array_equal(nearest, rounded.astype(np.float64)), "float64 -> F16 must round to nearest"
    return np.abs(exact - midpoint), high64 - low64


def lm_head_gradients(weights, tokens, logits, inputs):
    """Per-sample gradients of the next-token loss w.r.t. lm_head.weight, F16 [samples, VOCAB * HIDDEN].

    Sample s is calibration sequence s; its loss is the mean over positions t = 0 .. L-2 of
    -log softmax(logits_t)[token_{t+1}], so its gradient is (1/(L-1)) sum_t (softmax(logits_t) -
    onehot(token_{t+1})) (outer) h_t with h_t lm_head's input (the final RMSNorm output): [VOCAB,
    HIDDEN], flattened row-major like the weight. float64 throughout, rounded once to F16."""
    samples, length = tokens.shape
    positions = length - 1  # the last position has no target
    w = weights[GRADIENT_WEIGHT].astype(np.float64)
    h = inputs[GRADIENT_WEIGHT].reshape(samples, length, HIDDEN)[:, :positions]  # [samples, L-1, HIDDEN]
    z = logits[:, :positions]                                                   # [samples, L-1, VOCAB]
    targets = tokens[:, 1:]
    assert np.allclose(h @ w.T, z, rtol=0.0, atol=1e-12), "logits must be h @ lm_head.weight^T"
    errors = _softmax(z)
    errors[np.arange(samples)[:, None], np.arange(positions)[None, :], targets] -= 1.0
    grads = np.stack([errors[s].T @ h[s] for s in range(samples)]) / positions  # [samples, VOCAB, HIDDEN]

    # Self-checks, all float64. (1) Softmax minus one-hot sums to 0 over the vocabulary, so every
    # sample's gradient rows sum to 0 in every input column.
    scale = np.abs(errors).transpose(0, 2, 1) @ np.abs(h) / positions  # sum of |terms| of each entry
    assert np.all(np.abs(grads.sum(axis=1)) <= 1e-13 * scale.sum(axis=1)), "gradient rows must sum to 0"
    # (2) Central differences of one sample's loss on a few entries of W (the biggest gradient entry,
    # target and non-target rows, the corners), step 1e-6: truncation ~1e-12, cancellation ~1e-9.
    losses = [_next_token_loss(h[s], w, targets[s]) for s in range(samples)]
    # Targets independent of small logits (std ~0.34): loss ~ log(VOCAB) + var(logits) / 2 ~ 4.91.
    assert 0.0 < np.mean(losses) - np.log(VOCAB) < 0.2, f"mean loss {np.mean(losses)}, log(VOCAB) = {np.log(VOCAB)}"
    big = np.unravel_index(np.argmax(np.abs(grads)), grads.shape)
    probes = [tuple(int(i) for i in big), (0, int(targets[0, 0]), 0), (3, int(targets[3, 5]), 77), (7, 5, 200),
              (samples - 1, VOCAB - 1, HIDDEN - 1), (samples - 1, 0, 0)]
    step = 1e-6
    for s, c, j in probes:
        plus, minus = w.copy(), w.copy()
        plus[c, j] += step
        minus[c, j] -= step
        fd = (_next_token_loss(h[s], plus, targets[s]) - _next_token_loss(h[s], minus, targets[s])) / (2 * step)
        assert abs(fd - grads[s, c, j]) < 1e-8, f"sample {s} [{c}, {j}]: finite difference {fd} vs {grads[s, c, j]}"
    # (3) The gradients summed over samples are the gradient of the summed loss: one product over
    # all samples' positions at once, and a central difference of the summed loss.
    summed = errors.reshape(-1, VOCAB).T @ h.reshape(-1, HIDDEN) / positions
    assert np.allclose(grads.sum(axis=0), summed, rtol=0.0, atol=1e-13), "sum of per-sample gradients"
    for _, c, j in probes[:3]:
        plus, minus = w.copy(), w.copy()
        plus[c, j] += step
        minus[c, j] -= step
        fd = sum(_next_token_loss(h[s], plus, targets[s]) - _next_token_loss(h[s], minus, targets[s])
                 for s in range(samples)) / (2 * step)
        assert abs(fd - summed[c, j]) < 1e-7, f"summed [{c}, {j}]: finite difference {fd} vs {summed[c, j]}"

    grads = grads.reshape(samples, VOCAB * HIDDEN)
    largest = np.abs(grads).max()
    assert np.all(np.isfinite(grads)) and largest < F16_MAX / 64, f"gradient entry {largest} too close to the F16 range"
    stored = grads.astype(np.float16)
    # Rounding margins: float64 noise of an entry is ~1e-14 of the sum of the |terms| it adds up
    # (cancellation makes it large relative to the entry itself), so require 100 times that.
    margin, _ = _f16_rounding_margin(grads, stored)
    assert np.all(margin > 1e-12 * scale.reshape(samples, -1)), "an F16 gradient lies too close to a rounding midpoint"
    return stored


# --- LoRA adapters in PEFT's on-disk layout ------------------------------------------------------
# A GPT-2-style block fragment whose linear weights use transformers' Conv1D storage [in, out]: the base
# of the fan_in_fan_out adapter. It is not a loadable model (no embeddings, attention output projection,
# ln_2 or ln_f), so it has no config.json.
GPT2_SEED = 0x47505432436F6E76  # "GPT2Conv"
GPT2_EMBD = 64
GPT2_INNER = 256

PEFT_VERSION = "0.18.1"  # the release whose adapter_config.json keys (and defaults) the configs reproduce
LORA_DORA_NOISE = 0.05   # DoRA magnitudes: row norms of W + dW times (1 + 0.05 * normal)
LORA_HEAD_NOISE = 0.001  # modules_to_save lm_head: the base values plus normal(0, 0.001)
LORA_BIAS_STD = 0.001    # lora_B.bias of the fan_in_fan_out adapter
LORA_RATIO_RANGE = (0.01, 0.05)  # every module's ||dW||_F / ||W||_F must land here

LORA_REPORT = []  # (folder, module, text) rows, printed by main() after writing the files


def gpt2_specs():
    """(name, stored shape, kind, outlier columns?) in GPT2LMHeadModel state-dict order."""
    p = "transformer.h.0."
    return [
        (p + "ln_1.weight", (GPT2_EMBD,), "norm", False),
        (p + "attn.c_attn.weight", (GPT2_EMBD, 3 * GPT2_EMBD), "conv1d", True),
        (p + "attn.c_attn.bias", (3 * GPT2_EMBD,), "bias", False),
        (p + "mlp.c_fc.weight", (GPT2_EMBD, GPT2_INNER), "conv1d", True),
        (p + "mlp.c_fc.bias", (GPT2_INNER,), "bias", False),
        (p + "mlp.c_proj.weight", (GPT2_INNER, GPT2_EMBD), "conv1d", False),
        (p + "mlp.c_proj.bias", (GPT2_EMBD,), "bias", False),
    ]


def make_gpt2():
    """float32 tensors of pico-gpt2-conv1d. Conv1D weights are drawn [out, in] like the pico-llama linear
    weights (per-output-row std jitter; c_attn and c_fc, which read a LayerNorm output, get 2 outlier
    input columns) and stored transposed, [in, out]."""
    tensors = {}
    for i, (name, shape, kind, outliers) in enumerate(gpt2_specs()):
        gen = SplitMix64((GPT2_SEED + (i + 1) * 0xD1B54A32D192ED03) & MASK64)
        if kind == "norm":
            tensors[name] = (gen.normal(shape[0]) * NORM_NOISE_STD + 1.0).astype(np.float32)
        elif kind == "bias":
            tensors[name] = (gen.normal(shape[0]) * WEIGHT_STD).astype(np.float32)
        else:
            fan_in, fan_out = shape
            tensors[name] = np.ascontiguousarray(linear_values(gen, fan_out, fan_in, outliers).T)
    return tensors


def label_seed(label):
    """64-bit FNV-1a of a UTF-8 label: the SplitMix64 seed of one adapter tensor."""
    h = 0xCBF29CE484222325
    for byte in label.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def lora_normal(label, shape, std):
    """float64 normal(0, std) values of `shape`, seeded by `label`."""
    n = 1
    for d in shape:
        n *= d
    return SplitMix64(label_seed(label)).normal(n).reshape(shape) * std


def lowrank_product(b, a):
    """b [out, r] @ a [r, in] in float64, summed over the rank in a fixed order (exact IEEE ops only)."""
    b, a = b.astype(np.float64), a.astype(np.float64)
    acc = b[:, :1] * a[:1, :]
    for k in range(1, b.shape[1]):
        acc = acc + b[:, k:k + 1] * a[k:k + 1, :]
    return acc


def row_norms(v):
    """Euclidean norm of every row of a float64 matrix, summed column by column (fixed order)."""
    acc = v[:, 0] * v[:, 0]
    for j in range(1, v.shape[1]):
        acc = acc + v[:, j] * v[:, j]
    return np.sqrt(acc)  # IEEE square root: correctly rounded, the same everywhere


def bf16_values(bits):
    """BF16 bits (uint16) -> their float32 values."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def pattern_value(patterns, module, default):
    """PEFT's get_pattern_key (utils/other.py): the first key p, in the dict's order, for which
    re.match(rf"(.*\.)?({p})$", module) succeeds, else the default."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def peft_config(base, r, alpha, targets, **fields):
    """adapter_config.json of a LoRA adapter as PEFT 0.18.1's save_pretrained writes it: every LoraConfig
    field, defaults for those not given."""
    config = {
        "alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None, "auto_mapping": None,
        "base_model_name_or_path": base, "bias": "none", "corda_config": None, "ensure_weight_tying": False,
        "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha, "lora_bias": False,
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "peft_version": PEFT_VERSION, "qalora_group_size": 16, "r": r, "rank_pattern": {},
        "revision": None, "target_modules": targets, "target_parameters": None, "task_type": "CAUSAL_LM",
        "trainable_token_indices": None, "use_dora": False, "use_qalora": False, "use_rslora": False,
    }
    for key, value in fields.items():
        assert key in config, f"not a LoraConfig field: {key}"
        config[key] = value
    return config


def peft_json_bytes(config):
    """PeftConfigMixin.save_pretrained: json.dumps(indent=2, sort_keys=True), no trailing newline."""
    return json.dumps(config, indent=2, sort_keys=True).encode("utf-8")


def lora_adapter(folder, config, modules, base, b_std, stored="F32"):
    """(config, tensors) of one adapter. `modules` are base module names whose weight `base[M + ".weight"]`
    is [out, in] (or [in, out] with fan_in_fan_out). A ~ normal(0, 1/sqrt(in)), B ~ normal(0,
    b_std/sqrt(r)), both rounded to the stored dtype; rank and alpha per PEFT's rank_pattern/alpha_pattern."""
    tensors = {}
    for m in modules:
        w = base[m + ".weight"].astype(np.float64)
        if config["fan_in_fan_out"]:
            w = w.T  # compute in [out, in]
        out_features, in_features = w.shape
        r = pattern_value(config["rank_pattern"], m, config["r"])
        alpha = pattern_value(config["alpha_pattern"], m, config["lora_alpha"])
        scaling = alpha / math.sqrt(r) if config["use_rslora"] else alpha / r
        a = lora_normal(f"{folder}/{m}.lora_A", (r, in_features), 1.0 / math.sqrt(in_features)).astype(np.float32)
        b = lora_normal(f"{folder}/{m}.lora_B", (out_features, r), b_std / math.sqrt(r)).astype(np.float32)
        key = "base_model.model." + m
        if stored == "BF16":
            tensors[key + ".lora_A.weight"], tensors[key + ".lora_B.weight"] = bf16_bits(a), bf16_bits(b)
            a, b = bf16_values(tensors[key + ".lora_A.weight"]), bf16_values(tensors[key + ".lora_B.weight"])
        else:
            tensors[key + ".lora_A.weight"], tensors[key + ".lora_B.weight"] = a, b
        assert np.count_nonzero(b) == b.size, f"{m}: lora_B must be nonzero (trained)"
        delta = lowrank_product(b, a) * scaling  # [out, in]
        ratio = np.linalg.norm(delta) / np.linalg.norm(w)
        assert LORA_RATIO_RANGE[0] <= ratio <= LORA_RATIO_RANGE[1], f"{folder} {m}: ||dW||/||W|| = {ratio}"
        text = f"r {r}, scaling {scaling:g}, ||dW||/||W|| = {100 * ratio:.2f}%"
        if config["lora_bias"]:
            bias = lora_normal(f"{folder}/{m}.lora_B.bias", (out_features,), LORA_BIAS_STD).astype(np.float32)
            tensors[key + ".lora_B.bias"] = bias
            base_bias = base[m + ".bias"].astype(np.float64)
            text += f", ||db||/||b|| = {100 * np.linalg.norm(bias * scaling) / np.linalg.norm(base_bias):.2f}%"
        if config["use_dora"]:
            v = w + delta
            norms = row_norms(v)
            noise = lora_normal(f"{folder}/{m}.lora_magnitude_vector", (out_features,), LORA_DORA_NOISE)
            magnitude = (norms * (1.0 + noise)).astype(np.float32)
            tensors[key + ".lora_magnitude_vector"] = magnitude
            factor = magnitude.astype(np.float64) / norms
            assert np.all(np.abs(factor - 1.0) < 0.25)
            merged = factor[:, None] * v
            text += (f", m/||W+dW||_row in {factor.min():.3f}..{factor.max():.3f}, merged "
                     f"||W'-W||/||W|| = {100 * np.linalg.norm(merged - w) / np.linalg.norm(w):.2f}%")
        LORA_REPORT.append((folder, m, text))
    return config, tensors


def lora_files(f32):
    """{relative path: bytes} of pico-gpt2-conv1d and the four PEFT adapters."""
    files = {}
    gpt2 = make_gpt2()
    files["pico-gpt2-conv1d/model.safetensors"] = safetensors.numpy.save(gpt2, metadata=METADATA)
    layers = range(LAYERS)

    folder = "pico-llama-lora/plain"
    config = peft_config("pico-llama", 8, 16, ["q_proj", "v_proj", "down_proj"], modules_to_save=["lm_head"],
                         rank_pattern={"down_proj": 4}, alpha_pattern={"model.layers.1.self_attn.v_proj": 32})
    modules = [f"model.layers.{n}.{m}" for n in layers
               for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")]
    config, tensors = lora_adapter(folder, config, modules, f32, b_std=0.003)
    # modules_to_save: the full trained lm_head (base + a small change), saved under its module name
    head = f32["lm_head.weight"].astype(np.float64)
    replaced = (head + lora_normal(f"{folder}/lm_head.weight", head.shape, LORA_HEAD_NOISE)).astype(np.float32)
    tensors["base_model.model.lm_head.weight"] = replaced
    LORA_REPORT.append((folder, "lm_head", "modules_to_save replacement, ||W_saved - W||/||W|| = "
                        f"{100 * np.linalg.norm(replaced.astype(np.float64) - head) / np.linalg.norm(head):.2f}%"))
    files[folder + "/adapter_config.json"] = peft_json_bytes(config)
    files[folder + "/adapter_model.safetensors"] = safetensors.numpy.save(tensors, metadata=METADATA)

    folder = "pico-llama-lora/rslora"
    config = peft_config("pico-llama", 16, 8, ["q_proj", "k_proj"], use_rslora=True)
    modules = [f"model.layers.{n}.self_attn.{m}" for n in layers for m in ("q_proj", "k_proj")]
    config, tensors = lora_adapter(folder, config, modules, f32, b_std=0.006, stored="BF16")
    files[folder + "/adapter_config.json"] = peft_json_bytes(config)
    files[folder + "/adapter_model.safetensors"] = serialize_bf16(tensors)

    folder = "pico-llama-lora/dora"
    config = peft_config("pico-llama", 4, 8, ["o_proj", "up_proj"], use_dora=True)
    modules = [f"model.layers.{n}.{m}" for n in layers for m in ("self_attn.o_proj", "mlp.up_proj")]
    config, tensors = lora_adapter(folder, config, modules, f32, b_std=0.006)
    files[folder + "/adapter_config.json"] = peft_json_bytes(config)
    files[folder + "/adapter_model.safetensors"] = safetensors.numpy.save(tensors, metadata=METADATA)

    folder = "pico-gpt2-lora/fan-in-fan-out"
    config = peft_config("pico-gpt2-conv1d", 4, 8, ["c_attn", "c_fc"], fan_in_fan_out=True, lora_bias=True)
    modules = ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"]
    config, tensors = lora_adapter(folder, config, modules, gpt2, b_std=0.003)
    files[folder + "/adapter_config.json"] = peft_json_bytes(config)
    files[folder + "/adapter_model.safetensors"] = safetensors.numpy.save(tensors, metadata=METADATA)
    return files


# --- writing -------------------------------------------------------------------------------------
METADATA = {"format": "pt"}


def serialize_bf16(named_bits):
    """safetensors bytes of BF16 tensors given as uint16 bit arrays (the reference writer's layout)."""
    arrays = {name: np.ascontiguousarray(bits.astype("<u2")) for name, bits in named_bits.items()}
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.7
        specs = {name: safetensors.TensorSpec(dtype="bfloat16", shape=list(a.shape), data_ptr=a.ctypes.data,
                                              data_len=a.nbytes) for name, a in arrays.items()}
    else:  # older releases take plain dicts with the data as bytes
        specs = {name: {"dtype": "bfloat16", "shape": list(a.shape), "data": a.tobytes()} for name, a in arrays.items()}
    data = bytes(safetensors.serialize(specs, metadata=METADATA))
    del arrays  # kept alive until serialize returned
    return data


def config(torch_dtype):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": WEIGHT_STD,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 256,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "pretraining_tp": 1,
        "rms_norm_eps": RMS_NORM_EPS,
        "rope_scaling": None,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def json_bytes(obj):
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def generate(root):
    """Writes every file under `root`; returns their paths relative to `root`, sorted."""
    _self_check()
    specs = tensor_specs()
    f32 = {name: make_tensor(i, name, shape, kind) for i, (name, shape, kind) in enumerate(specs)}
    bf16 = {name: bf16_bits(v) for name, v in f32.items()}
    files = {}

    files["pico-llama-f32/model.safetensors"] = safetensors.numpy.save(f32, metadata=METADATA)
    files["pico-llama-f32/config.json"] = json_bytes(config("float32"))

    files["pico-llama-bf16/model.safetensors"] = serialize_bf16(bf16)
    files["pico-llama-bf16/config.json"] = json_bytes(config("bfloat16"))

    # Greedy split in state-dict order: shard 1 takes tensors while it stays within half of the
    # total bytes, shard 2 takes the rest.
    total = sum(b.nbytes for b in bf16.values())
    first, size = [], 0
    for name, _, _ in specs:
        if size + bf16[name].nbytes > total // 2:
            break
        first.append(name)
        size += bf16[name].nbytes
    shards = [first, [name for name, _, _ in specs[len(first):]]]
    weight_map = {}
    for i, names in enumerate(shards):
        shard = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        files["pico-llama-bf16-sharded/" + shard] = serialize_bf16({n: bf16[n] for n in names})
        for n in names:
            weight_map[n] = shard
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    files["pico-llama-bf16-sharded/model.safetensors.index.json"] = json_bytes(index)
    files["pico-llama-bf16-sharded/config.json"] = json_bytes(config("bfloat16"))

    # `count` is the only metadata key: safetensors writes __metadata__ from a hash map, so the
    # order of several keys (and with it the file's bytes) changes from run to run.
    tokens = calibration_tokens()
    logits, inputs = forward(f32, tokens)
    stats, count = calibration_statistics(inputs, tokens.size)
    files["pico-llama-calibration/calibration.safetensors"] = safetensors.numpy.save(
        stats, metadata={"count": str(count)})
    # A separate file, so that calibration.safetensors keeps its bytes; `count` = samples here.
    grads = lm_head_gradients(f32, tokens, logits, inputs)
    files["pico-llama-calibration/gradients.safetensors"] = safetensors.numpy.save(
        {GRADIENT_WEIGHT + ".grads": grads}, metadata={"count": str(grads.shape[0])})

    # LoRA adapters in PEFT's layout for pico-llama-f32, and the Conv1D base of the fan_in_fan_out one.
    del LORA_REPORT[:]
    files.update(lora_files(f32))

    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return sorted(files)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def readme_hashes():
    """{relative path: sha256} from the table rows "| `path` | `hash` |" of README.md."""
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return dict(re.findall(r"^\|\s*`([^`]+)`\s*\|\s*`([0-9a-f]{64})`\s*\|", f.read(), re.M))


def check():
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(tmp)
        listed = readme_hashes()
        for rel in generated:
            committed = os.path.join(HERE, rel)
            fresh = os.path.join(tmp, rel)
            if not os.path.exists(committed):
                problems.append(f"{rel}: missing (run: python3 TestModels/make_test_models.py)")
                continue
            with open(committed, "rb") as a, open(fresh, "rb") as b:
                old, new = a.read(), b.read()
            if old != new:
                first = next((i for i, (x, y) in enumerate(zip(old, new)) if x != y), min(len(old), len(new)))
                problems.append(f"{rel}: committed file ({len(old)} bytes) differs from the regenerated one "
                                f"({len(new)} bytes), first at byte {first}")
            digest = sha256(fresh)
            if listed.get(rel) != digest:
                problems.append(f"{rel}: README.md lists sha256 {listed.get(rel)}, regenerated file has {digest}")
    for p in problems:
        print("make_test_models --check: " + p, file=sys.stderr)
    if not problems:
        print(f"make_test_models --check: {len(generated)} files byte-identical to a fresh regeneration")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and compare with the committed files")
    args = parser.parse_args()
    if args.check:
        return check()
    for rel in generate(HERE):
        print(f"| `{rel}` | `{sha256(os.path.join(HERE, rel))}` |")
    for folder, module, text in LORA_REPORT:
        print(f"{folder} {module}: {text}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
