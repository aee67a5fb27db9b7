import Foundation
import ArgumentParser
import ModelPress
import CheckpointFormats
import Reports

/// `modelpress merge-lora BASE ADAPTER... -o OUT [--weight W]...`: the one-step recipe
/// `merge.lora adapter=ADAPTER,... weight=W,...` run by the compression pipeline.
struct MergeLoraCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-lora",
        abstract: "Merge PEFT LoRA/DoRA adapters into a base checkpoint (the weighted sum of their deltas) and print the report.",
        discussion: "Each adapter is a PEFT folder (adapter_config.json + adapter_model.safetensors). Quantized bases are requantized to their type; the report says how much of each delta survived."
    )

    @Argument(help: "Base checkpoint (.safetensors, sharded index or its folder, .gguf).")
    var base: String

    @Argument(help: "One or more PEFT adapter folders.")
    var adapters: [String]

    @Option(name: .shortAndLong, help: "Output path (.safetensors or .gguf, optionally .zst).")
    var output: String

    @Option(help: "Merge weight of each adapter, in order (repeatable; default 1 each).")
    var weight: [Double] = []

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
            guard weight.isEmpty || weight.count == adapters.count else {
                throw UsageError("give one --weight per adapter (\(adapters.count) adapters, \(weight.count) weights)")
            }
            if let bad = adapters.first(where: { $0.contains(",") || $0.contains("\"") || $0.contains("\n") }) {
                throw UsageError("adapter path '\(bad)' contains a comma, quote or newline; rename the folder")
            }
            var text = "merge.lora adapter=\"\(adapters.joined(separator: ","))\""
            if !weight.isEmpty { text += " weight=" + weight.map { String($0) }.joined(separator: ",") }
            var pipeline = CompressionPipeline(inputPath: base, recipePath: "merge-lora")
            pipeline.recipeText = text + "\n"
            try runPipeline(pipeline, output: output, threads: threads, report: report, json: json, quiet: quiet)
        }
    }
}
