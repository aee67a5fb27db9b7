// modelpress-bench: release-mode benchmarks. `swift run -c release modelpress-bench [name...] [--dir D]`
// Benchmarks: read (safetensors read throughput against a plain memory copy);
// gguf (F32 GGUF -> quantized GGUF, file to file; options in GGUFQuantizeBenchmark.swift);
// int (quantize.int bits=8 granularity=channel: kernel and compress end to end; options in IntQuantizeBenchmark.swift);
// zstd (lossless .zst archives against the zstd tool);
// gptq (GPTQ on a 4096 x 4096 layer against the sgemm time of the same FLOPs);
// baq (allocate.bits per column + GPTQ with the widths on the same layer, against the same bound);
// sparsegpt (prune.obs on a 4096 x 4096 layer, 50% and 2:4, against the same bound);
// lora (merge.lora, rank 16 into a 4096 x 4096 weight, against numpy's float64 merge);
// rps (share.rps projection and expansion of a 4096 x 4096 weight);
// streaming (peak RSS of the modelpress binary on a ~2 GB sharded checkpoint; build it first).
import Foundation

var arguments = Array(CommandLine.arguments.dropFirst())
var directory = NSTemporaryDirectory()
if let i = arguments.firstIndex(of: "--dir"), i + 1 < arguments.count {
    directory = arguments[i + 1]
    arguments.removeSubrange(i...(i + 1))
}
// The benchmarks share --threads, --repetitions, --keep and --breakdown: each reads its own copy.
var intArguments = arguments
let intOptions = IntQuantizeBenchmark.Options.extract(from: &intArguments)
let ggufOptions = GGUFQuantizeBenchmark.Options.extract(from: &arguments)
arguments.removeAll { $0 == "--no-reference" || $0 == "--kernel-only" }
let selected = arguments.isEmpty ? ["read"] : arguments
for name in selected {
    switch name {
    case "read": try ReadBenchmark(directory: directory).run()
    case "gguf": try GGUFQuantizeBenchmark(directory: directory, options: ggufOptions).run()
    case "int": try IntQuantizeBenchmark(directory: directory, options: intOptions).run()
    case "zstd": try ZstdBenchmark(directory: directory).run()
    case "gptq": try GPTQBenchmark(n: 4096).run()
    case "baq": try BAQBenchmark(n: 4096, directory: directory).run()
    case "sparsegpt": try SparseGPTBenchmark(n: 4096).run()
    case "lora": try LoRAMergeBenchmark(directory: directory).run()
    case "rps": try RPSBenchmark().run()
    case "streaming": try StreamingBenchmark(directory: directory).run()
    default:
        FileHandle.standardError.write("unknown benchmark '\(name)' (known: read, gguf, int, zstd, gptq, baq, sparsegpt, lora, rps, streaming)\n".data(using: .utf8)!)
        exit(64)
    }
}
