import Foundation
import ArgumentParser
import ModelPress
import CheckpointFormats
import Reports
import Glibc

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Compress a checkpoint with a recipe file and print the per-layer error report."
    )

    @Argument(help: "Input checkpoint (.safetensors, sharded index or its folder, .gguf).")
    var input: String

    @Option(help: "The recipe file (one step per line).")
    var recipe: String

    @Option(name: .shortAndLong, help: "Output path (.safetensors or .gguf).")
    var output: String

    @Option(name: .customLong("set"), help: "Override a recipe variable: --set bits=3 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Calibration statistics (safetensors act_sq/hessian, or a llama.cpp imatrix .dat/.gguf); replaces the recipe's calibration step.")
    var calibration: String?

    @Option(help: "Write the report here (.json, .csv or .md by extension).")
    var report: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the report as JSON instead of the summary.")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            var pipeline = CompressionPipeline(inputPath: input, recipePath: recipe, overrides: try parseOverrides(overrides))
            pipeline.calibrationPath = calibration
            try runPipeline(pipeline, output: output, threads: threads, report: report, json: json, quiet: quiet)
        }
    }
}

/// Runs `pipeline` to `output` as `compress` and `merge-lora` do: progress, warnings and notes on
/// stderr unless `quiet`, the report written to `report` when given, then the summary (or JSON) on
/// stdout.
func runPipeline(_ pipeline: CompressionPipeline, output: String, threads: Int?, report: String?, json: Bool, quiet: Bool) throws {
    var pipeline = pipeline
    pipeline.threadCount = try threadCount(threads)
    if !quiet {
        pipeline.warning = { Console.standardError("warning: \(Console.printable($0))\n") }
        pipeline.note = { Console.standardError("\(Console.printable($0))\n") }
        let reporter = ProgressReporter()
        pipeline.progress = { reporter.update(done: $0, total: $1, bytes: $2, name: $3) }
    }
    let result = try pipeline.compress(outputPath: output)
    if let report {
        try writeText(result.rendered(forPath: report), to: report)
    }
    if json { Console.standardOutput(result.renderJSON()) } else if !quiet {
        Console.standardOutput(result.renderSummary())
        if output.hasSuffix(".zst"), let size = FileSystem.size(output) {
            // The report counts the inner file's bytes; this is what zstd made of them.
            let ratio = Double(result.totals.inputByteCount) / Double(max(size, 1))
            Console.standardOutput("zstd file:       \(size) bytes, \(String(format: "%.2f", ratio))x smaller than the input\n")
        }
    }
}

/// `name=value` pairs from `--set`.
func parseOverrides(_ items: [String]) throws -> [(name: String, text: String)] {
    try items.map { item in
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw UsageError("--set expects name=value, got '\(item)'") }
        return (String(item[..<eq]), String(item[item.index(after: eq)...]))
    }
}
