// modelpress-bench: release-mode benchmarks. `swift run -c release modelpress-bench [name...] [--dir D]`
// Benchmarks: read (safetensors read throughput against a plain memory copy);
// gguf (F32 GGUF -> quantized GGUF, file to file; options in GGUFQuantizeBenchmark.swift);
// zstd (lossless .zst archives against the zstd tool).
import Foundation

var arguments = Array(CommandLine.arguments.dropFirst())
var directory = NSTemporaryDirectory()
if let i = arguments.firstIndex(of: "--dir"), i + 1 < arguments.count {
    directory = arguments[i + 1]
    arguments.removeSubrange(i...(i + 1))
}
let ggufOptions = GGUFQuantizeBenchmark.Options.extract(from: &arguments)
let selected = arguments.isEmpty ? ["read"] : arguments
for name in selected {
    switch name {
    case "read": try ReadBenchmark(directory: directory).run()
    case "gguf": try GGUFQuantizeBenchmark(directory: directory, options: ggufOptions).run()
    case "zstd": try ZstdBenchmark(directory: directory).run()
    default:
        FileHandle.standardError.write("unknown benchmark '\(name)' (known: read, gguf, zstd)\n".data(using: .utf8)!)
        exit(64)
    }
}
