#!/usr/bin/env python3
"""Times llama.cpp's quantizer on the input of `modelpress-bench gguf`, for a side-by-side table.

Needs llama-cpp-python (0.3.36 was used, built from source so that ggml is compiled for this CPU)
and gguf-py + numpy. Not part of `make test` or `make bench`; run it by hand:

    swift build -c release --product modelpress-bench
    .build/release/modelpress-bench gguf --keep --dir /tmp/mpb      # writes the 268 MB F32 input + imatrix
    PY=/path/to/venv/bin/python
    $PY Benchmarks/peer/llama_quantize_bench.py --dir /tmp/mpb \\
        --modelpress-bench .build/release/modelpress-bench          # interleaved ModelPress / llama.cpp runs

`llama_cpp.llama_model_quantize` is the core of the `llama-quantize` tool: it maps the input, picks
each tensor's type (the mixture rules, or one type with `pure`), quantizes with `nthread` threads and
writes the output. It is called as `tools/quantize/quantize.cpp` calls it (for the imatrix case: the
entries normalised as in_sum2 / counts in `params.imatrix`, plus the quantize.imatrix.* KV overrides).
The plain types run with `pure = true`, like `modelpress convert --type Q4_K`; Q4_K_M runs the preset.

With --modelpress-bench, each repetition runs every (type, threads) pair once with llama.cpp and
once with `modelpress-bench gguf --only TYPE --threads N --repetitions 1` (ModelPress's own timer,
file to file, around `CheckpointConversion.run()`), alternating, so that both see the same machine
load; the table gives medians. MB/s are of F32 input bytes (10^6 bytes per MB).
"""

import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import gguf
import llama_cpp

INPUT = "modelpress-bench-gguf-f32.gguf"
IMATRIX = "modelpress-bench-gguf-imatrix.gguf"
# label -> (llama_ftype, pure, imatrix); the same cases as GGUFQuantizeBenchmark.cases
CASES = {
    "Q8_0": (7, True, False), "Q4_0": (2, True, False), "Q4_K": (15, True, False), "Q5_K": (17, True, False),
    "Q6_K": (18, True, False), "Q4_K_M": (15, False, False), "Q4_K+imatrix": (15, True, True),
}


def load_imatrix(path):
    """As llama-quantize: in_sum2[j*ne0+i] / (float)lround(counts[j]) (1 where the count is 0)."""
    r = gguf.GGUFReader(path)
    fields = {f.name: f for f in r.fields.values()}
    datasets = [bytes(fields["imatrix.datasets"].parts[i]).decode() for i in fields["imatrix.datasets"].data]
    chunks = int(fields["imatrix.chunk_count"].parts[-1][0])
    tensors = {t.name: t for t in r.tensors}
    data = {}
    for name in sorted(n[:-len(".in_sum2")] for n in tensors if n.endswith(".in_sum2")):
        sums = np.asarray(tensors[name + ".in_sum2"].data, dtype=np.float32).reshape(-1)
        counts = np.asarray(tensors[name + ".counts"].data, dtype=np.float32).reshape(-1)
        ne0 = sums.size // counts.size
        e = np.ones_like(sums)
        for j, c in enumerate(counts):
            c = round(float(c))
            if c > 0:
                e[j * ne0:(j + 1) * ne0] = sums[j * ne0:(j + 1) * ne0] / np.float32(c)
        data[name] = np.ascontiguousarray(e)
    return data, datasets, chunks


def quantize_params(ftype, pure, nthread, imatrix_path, keep):
    p = llama_cpp.llama_model_quantize_default_params()
    p.nthread, p.ftype, p.pure = nthread, ftype, pure
    if imatrix_path:
        data, datasets, chunks = load_imatrix(imatrix_path)
        arr = (llama_cpp.llama_model_imatrix_data * (len(data) + 1))()
        for k, (name, values) in enumerate(data.items()):
            arr[k].name, arr[k].size = name.encode(), values.size
            arr[k].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        overrides = []
        for key, tag, value in [("quantize.imatrix.file", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR, imatrix_path.encode()[:127]),
                                ("quantize.imatrix.dataset", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR, datasets[0].encode()[:127]),
                                ("quantize.imatrix.entries_count", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT, len(data)),
                                ("quantize.imatrix.chunks_count", llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT, chunks)]:
            o = llama_cpp.llama_model_kv_override()
            o.key, o.tag = key.encode(), tag
            if tag == llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR:
                o.value.val_str = value
            else:
                o.value.val_i64 = value
            overrides.append(o)
        karr = (llama_cpp.llama_model_kv_override * (len(overrides) + 1))(*overrides)
        karr[len(overrides)].key = b""
        keep += [data, arr, karr]
        p.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        p.kv_overrides = ctypes.cast(karr, ctypes.POINTER(llama_cpp.llama_model_kv_override))
    return p


def time_llama(src, dst, label, nthread, imatrix_path):
    ftype, pure, imat = CASES[label]
    keep = []
    p = quantize_params(ftype, pure, nthread, imatrix_path if imat else None, keep)
    t = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    seconds = time.perf_counter() - t
    if rc != 0:
        sys.exit(f"llama_model_quantize failed for {label}: {rc}")
    os.unlink(dst)
    return seconds


def time_modelpress(binary, directory, label, nthread):
    out = subprocess.run([binary, "gguf", "--dir", directory, "--only", label, "--threads", str(nthread),
                          "--repetitions", "1", "--keep"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"MB/s \(([0-9.]+) s", out)
    if not m:
        sys.exit(f"unexpected modelpress-bench output:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="folder holding the modelpress-bench gguf input (written with --keep)")
    ap.add_argument("--only", default=",".join(CASES), help="comma-separated case labels")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--modelpress-bench", help="path of the modelpress-bench binary: interleave its runs")
    args = ap.parse_args()
    quiet = llama_cpp.llama_log_callback(lambda level, text, user: None)
    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    src = os.path.join(args.dir, INPUT)
    imatrix = os.path.join(args.dir, IMATRIX)
    dst = os.path.join(args.dir, "llama-bench-out.gguf")
    megabytes = sum(int(t.n_bytes) for t in gguf.GGUFReader(src).tensors) / 1e6
    labels = args.only.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    llama, mp = {}, {}
    time_llama(src, dst, labels[0], threads[0], imatrix)   # warm the page cache
    for rep in range(args.repetitions):
        for label in labels:
            for n in threads:
                llama.setdefault((label, n), []).append(time_llama(src, dst, label, n, imatrix))
                if args.modelpress_bench:
                    mp.setdefault((label, n), []).append(time_modelpress(args.modelpress_bench, args.dir, label, n))
        print(f"repetition {rep + 1}/{args.repetitions} done", file=sys.stderr)
    print(f"llama-cpp-python {llama_cpp.__version__}; input {megabytes:.1f} MB F32; median of {args.repetitions}")
    print("| type | threads | ModelPress MB/s | llama.cpp MB/s | ratio |")
    print("|---|---|---|---|---|")
    for label in labels:
        for n in threads:
            l = megabytes / statistics.median(llama[(label, n)])
            if args.modelpress_bench:
                m = megabytes / statistics.median(mp[(label, n)])
                print(f"| {label} | {n} | {m:.1f} | {l:.1f} | {m / l:.2f}x |")
            else:
                print(f"| {label} | {n} | | {l:.1f} | |")


if __name__ == "__main__":
    main()
