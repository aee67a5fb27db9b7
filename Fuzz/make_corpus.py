#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into Fuzz/Corpus/<target>/ (run from the repository root:
`python3 Fuzz/make_corpus.py .build/debug/modelpress`). Python's standard library writes the tiny
hand-made inputs; the modelpress binary writes the compressed layouts, GGUF block types and zstd
containers from them, so the seeds follow the current writers. Seeds named `invalid-*` are meant to be
rejected; every other seed must be accepted by its target (a test checks both)."""
import json, os, random, shutil, struct, subprocess, sys, tempfile

ROOT = os.getcwd()
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".build/debug/modelpress")
rng = random.Random(11)


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), written in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def bf16(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def normals(n, scale=0.05):
    return [rng.gauss(0, scale) for _ in range(n)]


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def run(*args):
    subprocess.run([BIN, *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(metadata, tensors):
    """A GGUF v3 file: metadata [(key, type id, encoded value)], tensors [(name, ne list, type, raw)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, type_id, value in metadata:
        out += gguf_string(key) + struct.pack("<I", type_id) + value
    offset, data = 0, b""
    for name, ne, type_id, raw in tensors:
        out += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", d) for d in ne)
        out += struct.pack("<IQ", type_id, offset)
        pad = raw + b"\0" * (-len(raw) % 32)
        data += pad
        offset += len(pad)
    out += b"\0" * (-len(out) % 32)
    return out + data


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    work = tempfile.mkdtemp(prefix="modelpress-corpus-")
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "model.layers.0.mlp.down_proj.weight", "lm_head.weight"]
    tiny = [(n, "BF16", [4, 256], bf16(normals(1024))) for n in names]
    tiny.insert(2, ("model.layers.0.input_layernorm.weight", "BF16", [256], bf16([1.0 + v for v in normals(256)])))
    model = os.path.join(work, "tiny.safetensors")
    with open(model, "wb") as f:
        f.write(safetensors(tiny, {"format": "pt"}))

    # safetensors: plain dtypes, then every compact layout the writers produce.
    put("safetensors", "tiny-bf16.safetensors", open(model, "rb").read())
    put("safetensors", "dtypes.safetensors", safetensors([
        ("f32", "F32", [2, 2], f32([1, -2, 0.5, 3])), ("f16", "F16", [3], b"\x00\x3c\x00\xc0\x00\x00"),
        ("f64", "F64", [1], struct.pack("<d", 2.5)), ("i8", "I8", [4], b"\x01\xff\x02\x80"),
        ("u8", "U8", [2], b"\x07\x09"), ("i64", "I64", [1], struct.pack("<q", -3)), ("bool", "BOOL", [2], b"\x01\x00"),
        ("e4m3", "F8_E4M3", [4], b"\x38\x40\xb8\x00"), ("e5m2", "F8_E5M2", [2], b"\x3c\xbc"),
        ("f4", "F4", [4], b"\x12\x34"), ("empty", "F32", [0, 3], b""), ("scalar", "F32", [], f32([7]))]))
    put("safetensors", "empty.safetensors", safetensors([]))
    put("safetensors", "invalid-truncated.safetensors", safetensors(tiny[:1])[:-3])
    for recipe in ["w4-group128", "nf4", "fp8-e4m3", "w8-per-channel", "prune50-magnitude", "prune50-then-w4", "share-embeddings"]:
        out = os.path.join(work, recipe + ".safetensors")
        run("compress", model, "--recipe", os.path.join(ROOT, "Recipes", recipe + ".recipe"), "-o", out)
        put("safetensors", recipe + ".safetensors", open(out, "rb").read())
    nm = os.path.join(work, "prune24.recipe")
    with open(nm, "w") as f:
        f.write("prune.magnitude pattern=2:4 ignore=\"*embed*\"\n")
    run("compress", model, "--recipe", nm, "-o", os.path.join(work, "prune24.safetensors"))
    put("safetensors", "prune-2of4.safetensors", open(os.path.join(work, "prune24.safetensors"), "rb").read())

    # GGUF: every block type, ModelPress's integer layout and a shared array in GGUF.
    for t in ["F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
        out = os.path.join(work, t + ".gguf")
        run("convert", model, "-o", out, "--type", t)
        put("gguf", "tiny-" + t + ".gguf", open(out, "rb").read())
    for recipe in ["w4-group128", "nf4", "share-embeddings"]:
        src = os.path.join(work, recipe + ".recipe")
        with open(src, "w") as f:
            f.write(open(os.path.join(ROOT, "Recipes", recipe + ".recipe")).read() + "\noutput format=gguf\n")
        out = os.path.join(work, recipe + ".gguf")
        run("compress", model, "--recipe", src, "-o", out)
        put("gguf", recipe + ".gguf", open(out, "rb").read())
    put("gguf", "empty.gguf", gguf([], []))
    put("gguf", "metadata.gguf", gguf([("general.architecture", 8, gguf_string("llama")), ("general.alignment", 4, struct.pack("<I", 32)),
                                       ("a.array", 9, struct.pack("<IQ", 4, 2) + struct.pack("<II", 1, 2))], []))

    # imatrix: legacy .dat (with and without the trailer) and GGUF.
    def dat(entries, trailer=None):
        out = struct.pack("<i", len(entries))
        for name, ncall, values in entries:
            out += struct.pack("<i", len(name)) + name.encode() + struct.pack("<ii", ncall, len(values)) + f32(values)
        if trailer is not None:
            out += struct.pack("<ii", trailer[0], len(trailer[1])) + trailer[1].encode()
        return out
    put("imatrix", "legacy.dat", dat([("blk.0.attn_q.weight", 10, [abs(v) for v in normals(32)]), ("blk.0.ffn_down.weight", 0, [1.0] * 16)], (10, "wiki.txt")))
    put("imatrix", "legacy-no-trailer.dat", dat([("output.weight", 3, [0.5] * 8)]))
    u32 = lambda v: struct.pack("<I", v)
    put("imatrix", "imatrix.gguf", gguf(
        [("general.type", 8, gguf_string("imatrix")), ("imatrix.datasets", 9, struct.pack("<IQ", 8, 1) + gguf_string("wiki.txt")),
         ("imatrix.chunk_count", 4, u32(10)), ("imatrix.chunk_size", 4, u32(512))],
        [("blk.0.attn_q.weight.in_sum2", [16, 2], 0, f32([abs(v) for v in normals(32)])),
         ("blk.0.attn_q.weight.counts", [1, 2], 0, f32([10, 0]))]))

    # recipes: the shipped ones (each binds against the fuzz target's manifest) plus includes.
    for name in sorted(os.listdir(os.path.join(ROOT, "Recipes"))):
        if name.endswith(".recipe") and not any(k in name for k in ["lora", "gguf"]):
            put("recipe", name, open(os.path.join(ROOT, "Recipes", name), "rb").read())
    put("recipe", "variables.recipe", b"let bits = 4\nlet g = 64\nquantize.int bits=$bits granularity=group:$g\n  targets=\"*proj*\" ignore=\"*embed*\"\ncast dtype=bf16 targets=\"lm_head.weight\"\n")
    put("recipe", "invalid-include.recipe", b"include other.recipe\nquantize.int bits=4\n")

    # adapter_config.json: the test adapters, and every field set.
    for folder in ["pico-llama-lora/plain", "pico-llama-lora/dora", "pico-llama-lora/rslora", "pico-gpt2-lora/fan-in-fan-out"]:
        put("adapter-config", folder.replace("/", "-") + ".json", open(os.path.join(ROOT, "TestModels", folder, "adapter_config.json"), "rb").read())
    put("adapter-config", "patterns.json", json.dumps({
        "peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": False, "fan_in_fan_out": False, "use_dora": False,
        "lora_bias": False, "bias": "none", "modules_to_save": ["lm_head"],
        "rank_pattern": {"q_proj": 4, "layers\\.1\\..*": 2}, "alpha_pattern": {"down_proj": 8.5}}).encode())

    # zstd: ModelPress archives of safetensors and GGUF, and a plain zstd stream.
    lossless = os.path.join(ROOT, "Recipes", "lossless.recipe")
    for src, out in [(model, "tiny.safetensors.zst"), (os.path.join(work, "Q4_K.gguf"), "tiny.gguf.zst"), (os.path.join(work, "w4-group128.safetensors"), "w4.safetensors.zst")]:
        run("compress", src, "--recipe", lossless, "-o", os.path.join(work, out))
        put("zstd", out, open(os.path.join(work, out), "rb").read())
    subprocess.run(["zstd", "-q", "-19", model, "-o", os.path.join(work, "plain.zst")], check=True)
    put("zstd", "plain-stream.safetensors.zst", open(os.path.join(work, "plain.zst"), "rb").read())
    shutil.rmtree(work)


main()
