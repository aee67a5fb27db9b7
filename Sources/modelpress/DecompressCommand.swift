import ArgumentParser
import ModelPress
import CheckpointFormats
import TensorCore

struct DecompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decompress",
        abstract: "Write a dense safetensors copy (original names, order and shapes) that any tool can load."
    )

    @Argument(help: "A compressed checkpoint (.safetensors from compress, .gguf).")
    var input: String

    @Option(name: .shortAndLong, help: "Output path (.safetensors).")
    var output: String

    @Option(help: "dtype of the reconstructed tensors: f32 (default), f16 or bf16. Never-compressed tensors keep their dtype unless this is given.")
    var dtype: String?

    @Option(help: "Worker threads (default: all cores). The output bytes do not depend on it.")
    var threads: Int?

    @Flag(help: "Print what was written as JSON (the output's inspect summary).")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            // A lossless .zst file comes back byte for byte when asked for its own format.
            if dtype == nil, try CheckpointFormat.detect(path: input).format == .zstd {
                let inner = try ZstdCheckpoint.innerFormat(path: input) ?? ZstdCheckpoint.innerPath(of: input).path.split(separator: ".").last.map(String.init)
                // Dense safetensors archives are recognised from their header frames alone; anything
                // else is opened (decoded) to see whether it holds compressed tensors (compact sparse
                // ones read back as dense entries marked sparse).
                if let inner, output.hasSuffix("." + inner),
                   try ZstdCheckpoint.denseSafetensorsHeader(path: input) != nil
                    || CheckpointReader.open(path: input).entries.allSatisfy({ if case .dense = $0.payload { $0.sparsity == nil } else { false } }) {
                    try UsageError.refuseOverwriting(input: input, output: output)
                    try ZstdCheckpoint.extract(path: input, to: output)
                    if json { Console.standardOutput(try CheckpointSummary(path: output).renderJSON()) } else if !quiet {
                        Console.standardOutput("wrote \(output): the original \(inner) file, byte for byte\n")
                    }
                    return
                }
            }
            guard output.hasSuffix(".safetensors") else { throw UsageError("\(output): decompress writes .safetensors") }
            var options = CheckpointConversion.Options()
            options.threadCount = try threadCount(threads)
            if let dtype {
                guard let parsed = DType(userName: dtype) else { throw UsageError("--dtype must be f32, f16 or bf16 (got \(dtype))") }
                options.dtype = parsed
            }
            var conversion = try CheckpointConversion(inputPath: input, outputPath: output, options: options)
            let summary = try conversion.run()
            if json { Console.standardOutput(summary.renderJSON()) } else if !quiet {
                Console.standardOutput("wrote \(output): \(summary.rows.count) tensors, \(summary.parameterCount) parameters, \(summary.byteCount) bytes\n")
            }
        }
    }
}
