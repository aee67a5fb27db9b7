import ArgumentParser
import ModelPress

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List tensors (name, dtype, shape, parameters, bytes), totals and metadata."
    )

    @Argument(help: "A .safetensors file, a model.safetensors.index.json, or a folder holding either.")
    var file: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            let summary = try CheckpointSummary(path: file)
            Console.standardOutput(json ? summary.renderJSON() : summary.renderTable())
        }
    }
}
