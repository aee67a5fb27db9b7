import ArgumentParser
import ModelPress
import TensorCore

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Re-write a checkpoint, optionally casting float tensors (safetensors to safetensors)."
    )

    @Argument(help: "Input checkpoint (.safetensors, sharded index or its folder).")
    var input: String

    @Option(name: .shortAndLong, help: "Output path; its extension picks the writer (.safetensors).")
    var output: String

    @Option(help: "Cast every float tensor to f32, f16 or bf16 (round to nearest even). Other tensors are copied.")
    var dtype: String?

    @Flag(help: "Print the written checkpoint's summary as JSON.")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            let target: DType?
            if let dtype {
                guard let parsed = DType(userName: dtype) else { throw UsageError("--dtype must be f32, f16 or bf16 (got \(dtype))") }
                target = parsed
            } else {
                target = nil
            }
            let summary = try CheckpointConversion(inputPath: input, outputPath: output, targetDType: target).run()
            if json {
                Console.standardOutput(summary.renderJSON())
            } else if !quiet {
                Console.standardOutput("wrote \(output): \(summary.rows.count) tensors, \(summary.parameterCount) parameters, \(summary.byteCount) bytes\n")
            }
        }
    }
}
