#!/usr/bin/env python3
"""Writes the llama-quantize compatibility fixtures in this folder (run by hand, never in CI).

    PY=/path/to/venv/bin/python      # a venv with gguf-py and llama-cpp-python (see below)
    $PY Tests/Fixtures/llama-quantize/make_fixtures.py           # (re)write every file + README.md
    $PY Tests/Fixtures/llama-quantize/make_fixtures.py --check   # regenerate into a temp folder and
                                                                  # compare bytes with the committed files

Needs (only here, never in `make test`):
  * gguf-py (PyPI `gguf`, 0.19.0 was used) and numpy, to write the input model and the imatrix;
  * llama-cpp-python (0.3.36 was used, built from source), whose `llama_cpp.llama_model_quantize`
    is the core of llama.cpp's `llama-quantize` tool: this script calls it exactly the way
    `tools/quantize/quantize.cpp` does (same params, same imatrix array, same KV overrides).

What it writes (ModelPressTests/LlamaQuantizeCompatibilityTests.swift reads them):

  model-f16.gguf            the input: a tiny llama-architecture GGUF (3 layers, n_embd 256, 4 heads /
                            2 KV heads of head size 16, n_ff 64, vocab 128). 2-D weights are F16, except
                            output.weight, which is F32 (both conversion paths); norms are F32. Its
                            metadata carries every GGUF value type and the three split.* keys that
                            llama-quantize removes. Rows of attn_output and ffn_down have 64 elements,
                            so the K-quant types take llama-quantize's shape fallback there.
  imatrix.gguf              a GGUF imatrix as llama-imatrix writes it (general.type = imatrix,
                            imatrix.datasets / chunk_count / chunk_size; <W>.in_sum2 and <W>.counts for
                            every blk.* matrix; counts = 4096, a power of two, so sum/count is exact).
  <CASE>.gguf               llama.cpp's output for each case in CASES below.
  README.md                 the file list with sizes and sha256, and the peer's exact version.

The quantize.imatrix.file KV holds the path string the tool was given. The imatrix cases are run
with the imatrix copied to IMATRIX_PATH (a fixed absolute path), and the Swift test copies it to
the same path, so the two strings agree wherever the repository lives.

Values come from numpy's seeded PCG64 generator; the input files are committed, so the llama.cpp
outputs depend only on them and on the peer version.
"""

import argparse
import ctypes
import hashlib
import os
import shutil
import sys
import tempfile

import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))

# --- the input model ------------------------------------------------------------------------------
LAYERS = 3
EMBD = 256
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 16          # llama.attention.key_length / value_length (so attn_output rows are 64 long)
FF = 64                # ffn_down rows are 64 long: K-quants fall back to legacy types there
VOCAB = 128
SEED = 20240917
INPUT = "model-f16.gguf"
IMATRIX = "imatrix.gguf"
IMATRIX_DATASET = "modelpress-fixture-calibration.txt"
IMATRIX_CHUNKS = 8
IMATRIX_CHUNK_SIZE = 512
IMATRIX_COUNT = IMATRIX_CHUNKS * IMATRIX_CHUNK_SIZE   # 4096 tokens per matrix
# The path string passed as the imatrix file (it ends up in quantize.imatrix.file).
IMATRIX_PATH = "/tmp/modelpress-llama-quantize-fixture/imatrix.gguf"

# --- the cases: (file, llama_ftype, pure, imatrix) -------------------------------------------------
# ModelPress spells them --type Q4_K_M / Q3_K_M / Q5_K_M (presets) and Q6_K / Q8_0 / Q2_K (plain types,
# which are llama-quantize --pure, with --allow-fallback for the 64-element rows).
CASES = [
    ("Q4_K_M.gguf", 15, False, False),
    ("Q4_K_M-imatrix.gguf", 15, False, True),
    ("Q3_K_M.gguf", 12, False, False),
    ("Q3_K_M-imatrix.gguf", 12, False, True),
    ("Q5_K_M.gguf", 17, False, False),
    ("Q6_K-pure.gguf", 18, True, False),
    ("Q8_0-pure.gguf", 7, True, False),
    ("Q2_K-pure-imatrix.gguf", 10, True, True),
]
NTHREAD = 2   # the output bytes do not depend on it


def layer_shapes():
    """(name, numpy shape) of every blk.* matrix, in llama's tensor naming."""
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    return [("attn_q", (q, EMBD)), ("attn_k", (kv, EMBD)), ("attn_v", (kv, EMBD)), ("attn_output", (EMBD, q)),
            ("ffn_gate", (FF, EMBD)), ("ffn_up", (FF, EMBD)), ("ffn_down", (EMBD, FF))]


def make_weight(rng, shape, name):
    """N(0, 0.02) with a log-normal scale per row, a few outlier input columns, and (in some tensors)
    an all-zero 256-block, an all-zero 32-block and a constant 32-block."""
    rows, cols = shape
    w = rng.standard_normal(shape) * 0.02 * np.exp(0.3 * rng.standard_normal((rows, 1)))
    outliers = rng.choice(cols, size=2, replace=False)
    w[:, outliers] *= 8.0
    if name.endswith("attn_q.weight") or name.endswith("ffn_gate.weight"):
        w[3, :min(cols, 256)] = 0.0
        w[5, :32] = 0.0
        w[7, 32:64] = 0.01
    return w


def write_input(path):
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("modelpress llama-quantize fixture")
    w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    w.add_context_length(256)
    w.add_embedding_length(EMBD)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    # Every GGUF value type, copied through by llama-quantize in order.
    w.add_uint8("modelpress.fixture.u8", 200)
    w.add_int8("modelpress.fixture.i8", -100)
    w.add_uint16("modelpress.fixture.u16", 60000)
    w.add_int16("modelpress.fixture.i16", -30000)
    w.add_int32("modelpress.fixture.i32", -2000000000)
    w.add_uint64("modelpress.fixture.u64", 2**63 + 5)
    w.add_int64("modelpress.fixture.i64", -(2**62))
    w.add_float64("modelpress.fixture.f64", 2.718281828459045)
    w.add_bool("modelpress.fixture.bool", True)
    w.add_string("modelpress.fixture.utf8", "grüße, 量子化")
    w.add_array("modelpress.fixture.strings", ["a", "", "ccc"])
    w.add_array("modelpress.fixture.i32s", [1, -2, 3])
    w.add_array("modelpress.fixture.f32s", [0.5, -1.25])
    # llama-quantize removes exactly these three.
    w.add_uint16("split.no", 0)
    w.add_uint16("split.count", 1)
    w.add_int32("split.tensors.count", 3 + 9 * LAYERS)

    def norm():
        return (1.0 + 0.02 * rng.standard_normal(EMBD)).astype(np.float32)

    # Hugging Face order, which is not llama-quantize's output order.
    w.add_tensor("token_embd.weight", make_weight(rng, (VOCAB, EMBD), "token_embd.weight").astype(np.float16))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm())
        for n, shape in layer_shapes():
            if n == "ffn_gate":
                w.add_tensor(p + "ffn_norm.weight", norm())
            w.add_tensor(p + n + ".weight", make_weight(rng, shape, p + n + ".weight").astype(np.float16))
    w.add_tensor("output_norm.weight", norm())
    w.add_tensor("output.weight", make_weight(rng, (VOCAB, EMBD), "output.weight").astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_imatrix(path):
    """llama-imatrix's GGUF form; tensors in sorted name order, as it writes them."""
    rng = np.random.default_rng(SEED + 1)
    w = gguf.GGUFWriter(path, "")   # an empty arch: gguf-py then writes no general.architecture
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", [IMATRIX_DATASET])
    w.add_uint32("imatrix.chunk_count", IMATRIX_CHUNKS)
    w.add_uint32("imatrix.chunk_size", IMATRIX_CHUNK_SIZE)
    entries = {}
    for i in range(LAYERS):
        for n, (rows, cols) in layer_shapes():
            # E[x_j^2] per input column: log-normal, a few hot columns; times the count (exact: 2^12).
            mean_sq = np.exp(1.5 * rng.standard_normal(cols)).astype(np.float32) * np.float32(1e-2)
            mean_sq[rng.choice(cols, size=3, replace=False)] *= np.float32(50.0)
            entries[f"blk.{i}.{n}.weight"] = mean_sq * np.float32(IMATRIX_COUNT)
    for name in sorted(entries):
        w.add_tensor(name + ".in_sum2", entries[name].reshape(1, -1))
        w.add_tensor(name + ".counts", np.array([[IMATRIX_COUNT]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --- llama-quantize, through llama.cpp's C API ----------------------------------------------------
def load_imatrix_like_llama_quantize(path):
    """common_imatrix_load (GGUF branch) + load_imatrix in tools/quantize/quantize.cpp:
    entry -> in_sum2[j*ne0+i] / (float)lround(counts[j]), or 1 where the count is 0."""
    r = gguf.GGUFReader(path)
    kv = {f.name: f for f in r.fields.values()}
    for key in ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"):
        if key not in kv:
            sys.exit(f"missing imatrix metadata in file {path}")
    datasets = [bytes(kv["imatrix.datasets"].parts[i]).decode() for i in kv["imatrix.datasets"].data]
    chunk_count = int(kv["imatrix.chunk_count"].parts[-1][0])
    tensors = {t.name: t for t in r.tensors}
    data = {}
    for name in sorted({n.rsplit(".", 1)[0] for n in tensors if n.endswith(".in_sum2") or n.endswith(".counts")}):
        sums = np.asarray(tensors[name + ".in_sum2"].data, dtype=np.float32).reshape(-1)
        counts = np.asarray(tensors[name + ".counts"].data, dtype=np.float32).reshape(-1)
        ne0 = sums.size // counts.size
        e = np.empty_like(sums)
        for j, c in enumerate(counts):
            c = float(np.floor(abs(float(c)) + 0.5) * np.sign(c))   # lround
            e[j * ne0:(j + 1) * ne0] = sums[j * ne0:(j + 1) * ne0] / np.float32(c) if c > 0 else np.float32(1)
        data[name] = np.ascontiguousarray(e, dtype=np.float32)
    return data, datasets, chunk_count


def llama_quantize(llama_cpp, src, dst, ftype, pure, imatrix_path):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread = NTHREAD
    p.ftype = ftype
    p.pure = pure
    keep = []   # keeps the ctypes buffers alive during the call
    if imatrix_path is not None:
        data, datasets, chunk_count = load_imatrix_like_llama_quantize(imatrix_path)
        arr = (llama_cpp.llama_model_imatrix_data * (len(data) + 1))()
        for k, (name, values) in enumerate(data.items()):
            arr[k].name = name.encode()
            arr[k].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[k].size = values.size
        arr[len(data)].name = None   # array terminator
        keep += [arr, data]
        p.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        overrides = []

        def kvo(key, tag):
            o = llama_cpp.llama_model_kv_override()
            o.key = key.encode()
            o.tag = tag
            overrides.append(o)
            return o
        # the same four overrides, in the same order, as quantize.cpp (strings cut at 127 bytes)
        kvo("quantize.imatrix.file", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR).value.val_str = imatrix_path.encode()[:127]
        if datasets:
            kvo("quantize.imatrix.dataset", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR).value.val_str = datasets[0].encode()[:127]
        kvo("quantize.imatrix.entries_count", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT).value.val_i64 = len(data)
        if chunk_count > 0:
            kvo("quantize.imatrix.chunks_count", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT).value.val_i64 = chunk_count
        karr = (llama_cpp.llama_model_kv_override * (len(overrides) + 1))(*overrides)
        karr[len(overrides)].key = b""   # terminator: key[0] == 0
        keep.append(karr)
        p.kv_overrides = ctypes.cast(karr, ctypes.POINTER(llama_cpp.llama_model_kv_override))
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize({dst}) failed: {rc}")


# --- driver ---------------------------------------------------------------------------------------
def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def peer_versions(llama_cpp):
    return {"llama-cpp-python": llama_cpp.__version__, "gguf": gguf.__version__ if hasattr(gguf, "__version__") else _dist_version("gguf"),
            "numpy": np.__version__}


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


def readme(folder, versions):
    files = [INPUT, IMATRIX] + [c[0] for c in CASES]
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    lines = [
        "# llama-quantize compatibility fixtures",
        "",
        "Byte-exact expectations for `modelpress convert --type ...` on a GGUF input:",
        "`Tests/ModelPressTests/LlamaQuantizeCompatibilityTests.swift` runs `CheckpointConversion` on",
        f"`{INPUT}` and requires the very bytes llama.cpp wrote. `make_fixtures.py` (run by hand, never in",
        "CI; it needs gguf-py and llama-cpp-python) regenerates everything in this folder, and `--check`",
        "compares a fresh run with the committed files.",
        "",
        f"- `{INPUT}`: a llama-architecture GGUF written by gguf-py: {LAYERS} layers, n_embd {EMBD},",
        f"  {HEADS} heads / {KV_HEADS} KV heads of size {HEAD_DIM}, n_ff {FF}, vocab {VOCAB}, `output.weight` present.",
        "  2-D weights are F16 except `output.weight` (F32); norms are F32. Metadata has every GGUF value",
        "  type and `split.no` / `split.count` / `split.tensors.count` (llama-quantize drops those). Rows of",
        f"  `attn_output` ({HEADS * HEAD_DIM} elements) and `ffn_down` ({FF}) are not whole 256-blocks, so K-quant targets there take",
        "  llama-quantize's shape fallback (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0).",
        "  Weights are seeded normals with per-row scales, outlier columns, zero and constant blocks.",
        f"- `{IMATRIX}`: the GGUF imatrix form (`general.type = imatrix`, `imatrix.datasets`,",
        f"  `imatrix.chunk_count` = {IMATRIX_CHUNKS}, `imatrix.chunk_size` = {IMATRIX_CHUNK_SIZE}; `<W>.in_sum2` and `<W>.counts` for",
        f"  the {7 * LAYERS} `blk.*` matrices; counts = {IMATRIX_COUNT}). `token_embd` and `output` have no entry, as with",
        "  llama-imatrix's defaults.",
        "- Outputs: `llama_model_quantize` (the core of `llama-quantize`) with `nthread` 2, called as",
        "  `tools/quantize/quantize.cpp` calls it. Imatrix runs pass the normalised entries",
        "  (`in_sum2 / lround(counts)`) as `params.imatrix` and the four `quantize.imatrix.*` KV overrides;",
        f"  the imatrix path given was `{IMATRIX_PATH}` (the test copies `{IMATRIX}` there",
        "  so that `quantize.imatrix.file` agrees).",
        "",
        "| file | llama-quantize equivalent | ModelPress `--type` | bytes | sha256 |",
        "|---|---|---|---|---|",
    ]
    names = {15: "Q4_K_M", 12: "Q3_K_M", 17: "Q5_K_M", 18: "Q6_K", 7: "Q8_0", 10: "Q2_K"}
    lines.append(f"| `{INPUT}` | (input) | | {os.path.getsize(os.path.join(folder, INPUT))} | `{sha256(os.path.join(folder, INPUT))}` |")
    lines.append(f"| `{IMATRIX}` | (imatrix) | | {os.path.getsize(os.path.join(folder, IMATRIX))} | `{sha256(os.path.join(folder, IMATRIX))}` |")
    for f, ftype, pure, imat in CASES:
        tool = ("--pure " if pure else "") + (f"--imatrix {IMATRIX_PATH} " if imat else "") + f"{INPUT} {f} {names[ftype]} 2"
        mp = names[ftype] + (" --allow-fallback" if pure and ftype != 7 else "") + (" --imatrix ..." if imat else "")
        path = os.path.join(folder, f)
        lines.append(f"| `{f}` | `llama-quantize {tool}` | `{mp}` | {os.path.getsize(path)} | `{sha256(path)}` |")
    lines += [
        "",
        f"Total: {total} bytes ({total / 1e6:.2f} MB).",
        "",
        "Peer: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + " (llama-cpp-python built from",
        "source at its commit 1652066e0af45f2313b339670ef9555e8a54e545; the vendored llama.cpp is commit",
        "0c1e57098bba43ac29e6e3b677cdceebdd22334f (2026-10-01);",
        "libllama.so.0.5.0, libggml-base.so.0.25.3; x86-64 Linux).",
        "",
    ]
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write("\n".join(lines))


def generate(folder, llama_cpp):
    write_input(os.path.join(folder, INPUT))
    write_imatrix(os.path.join(folder, IMATRIX))
    os.makedirs(os.path.dirname(IMATRIX_PATH), exist_ok=True)
    shutil.copyfile(os.path.join(folder, IMATRIX), IMATRIX_PATH)
    for f, ftype, pure, imat in CASES:
        llama_quantize(llama_cpp, os.path.join(folder, INPUT), os.path.join(folder, f), ftype, pure,
                       IMATRIX_PATH if imat else None)
    readme(folder, peer_versions(llama_cpp))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with the committed files")
    args = ap.parse_args()
    import llama_cpp
    if llama_cpp.__version__ != "0.3.36":
        print(f"warning: llama-cpp-python {llama_cpp.__version__}; the fixtures were made with 0.3.36", file=sys.stderr)
    quiet = llama_cpp.llama_log_callback(lambda level, text, user: None)
    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    if not args.check:
        generate(HERE, llama_cpp)
        for f in [INPUT, IMATRIX] + [c[0] for c in CASES]:
            print(f"{sha256(os.path.join(HERE, f))}  {os.path.getsize(os.path.join(HERE, f)):>8}  {f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, llama_cpp)
        bad = [f for f in [INPUT, IMATRIX, "README.md"] + [c[0] for c in CASES]
               if sha256(os.path.join(tmp, f)) != sha256(os.path.join(HERE, f))]
        if bad:
            sys.exit("differs from the committed files: " + ", ".join(bad))
        print("all fixtures regenerate byte for byte")


if __name__ == "__main__":
    main()
