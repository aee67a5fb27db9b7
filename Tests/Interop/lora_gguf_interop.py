"""Cross-check of merge.lora into a llama.cpp-named GGUF base (numpy, safetensors, gguf-py only).

make BASE.safetensors OUT_DIR: writes OUT_DIR/base.gguf (llama architecture, 4 heads, 2 KV heads,
  F32 `blk.0.attn_q.weight` and `blk.0.attn_k.weight` permuted as convert_hf_to_gguf.py's `permute`
  does) and OUT_DIR/adapter/ (a PEFT LoRA, r 4, alpha 8, on layer 0's q_proj and k_proj, HF names).
check BASE.safetensors OUT_DIR MERGED.gguf: the merged tensors must equal
  permute(W + (alpha/r)·B·A) computed here in float64, rounded to float32 (max relative error 1e-6).
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file, save_file
import gguf

HEADS, KV_HEADS = 4, 2
NAMES = {"q": ("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight", HEADS),
         "k": ("model.layers.0.self_attn.k_proj", "blk.0.attn_k.weight", KV_HEADS)}


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute (n_head already the KV count for K)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def adapter_tensors():
    rng = np.random.default_rng(7)
    out = {}
    for key, (module, _, _) in NAMES.items():
        rows = 256 if key == "q" else 128
        out[f"base_model.model.{module}.lora_A.weight"] = (rng.standard_normal((4, 256)) / 16).astype(np.float32)
        out[f"base_model.model.{module}.lora_B.weight"] = (rng.standard_normal((rows, 4)) * 0.01).astype(np.float32)
    return out


def make(base_path, out_dir):
    base = load_file(base_path)
    writer = gguf.GGUFWriter(os.path.join(out_dir, "base.gguf"), "llama")
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    for module, name, heads in NAMES.values():
        writer.add_tensor(name, permute(base[module + ".weight"], heads))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    folder = os.path.join(out_dir, "adapter")
    os.makedirs(folder, exist_ok=True)
    save_file(adapter_tensors(), os.path.join(folder, "adapter_model.safetensors"))
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj"]}, f)


def check(base_path, out_dir, merged_path):
    base = load_file(base_path)
    tensors = adapter_tensors()
    merged = {t.name: np.array(t.data) for t in gguf.GGUFReader(merged_path).tensors}
    worst = 0.0
    for module, name, heads in NAMES.values():
        a = tensors[f"base_model.model.{module}.lora_A.weight"].astype(np.float64)
        b = tensors[f"base_model.model.{module}.lora_B.weight"].astype(np.float64)
        expected = permute(base[module + ".weight"].astype(np.float64) + 2.0 * (b @ a), heads).astype(np.float32)
        got = merged[name].reshape(expected.shape)
        error = np.abs(got.astype(np.float64) - expected) / np.maximum(np.abs(expected), 1e-3)
        worst = max(worst, float(error.max()))
        unpermuted = permute(base[module + ".weight"].astype(np.float64), heads) + 2.0 * (b @ a)
        print(f"{name}: max relative error {error.max():.3e}; without permuting the delta it would be "
              f"{float(np.abs(got - unpermuted).max()):.3e} off")
    sys.exit(0 if worst <= 1e-6 else 1)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
