// modelpress-bench: release-mode benchmarks. `swift run -c release modelpress-bench [name...] [--dir D]`
// Benchmarks: read (safetensors read throughput against a plain memory copy).
import Foundation

var arguments = Array(CommandLine.arguments.dropFirst())
var directory = NSTemporaryDirectory()
if let i = arguments.firstIndex(of: "--dir"), i + 1 < arguments.count {
    directory = arguments[i + 1]
    arguments.removeSubrange(i...(i + 1))
}
let selected = arguments.isEmpty ? ["read"] : arguments
for name in selected {
    switch name {
    case "read": try ReadBenchmark(directory: directory).run()
    default:
        FileHandle.standardError.write("unknown benchmark '\(name)' (known: read)\n".data(using: .utf8)!)
        exit(64)
    }
}
