import ArgumentParser
import ModelPress
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Re-write a checkpoint as safetensors or GGUF; cast float tensors or quantize to ggml types (llama-quantize style).",
        discussion: """
        --type takes a ggml type (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K), given to every \
        2-D weight as llama-quantize --pure does (norms and other 1-D tensors keep their type), or a preset \
        (Q3_K_M Q4_K_M Q5_K_M) with llama-quantize's per-tensor mixture rules for llama.cpp tensor names.
        """
    )

    @Argument(help: "Input checkpoint (.safetensors, sharded index or its folder, .gguf).")
    var input: String

    @Option(name: .shortAndLong, help: "Output path; its extension picks the writer (.safetensors or .gguf).")
    var output: String

    @Option(help: "Cast every float tensor to f32, f16 or bf16 (round to nearest even). Other tensors are copied.")
    var dtype: String?

    @Option(help: "ggml type or llama-quantize preset for the weights (GGUF output).")
    var type: String?

    @Option(help: "Importance matrix from llama-imatrix (GGUF or legacy .dat) for the block quantizers.")
    var imatrix: String?

    @Flag(help: "With a plain --type, give tensors whose rows are not whole blocks llama-quantize's fallback type instead of failing.")
    var allowFallback = false

    @Option(help: "Worker threads (default: all cores). The output bytes do not depend on it.")
    var threads: Int?

    @Flag(help: "Print the written checkpoint's summary as JSON.")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            var options = CheckpointConversion.Options()
            if let dtype {
                guard let parsed = DType(userName: dtype) else { throw UsageError("--dtype must be f32, f16 or bf16 (got \(dtype))") }
                options.dtype = parsed
            }
            if let type {
                guard let target = QuantizationTarget(type) else {
                    throw UsageError("unknown --type '\(type)'; use one of \(QuantizationTarget.supportedTypes.map(\.name).joined(separator: ", ")) or a preset (\(LlamaQuantizePreset.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                options.quantization = target
            }
            options.importancePath = imatrix
            options.allowFallback = allowFallback
            options.threadCount = try threadCount(threads)
            var conversion = try CheckpointConversion(inputPath: input, outputPath: output, options: options)
            let summary = try conversion.run()
            if !quiet { for w in conversion.warnings { Console.standardError("modelpress: warning: \(w)\n") } }
            if json {
                Console.standardOutput(summary.renderJSON())
            } else if !quiet {
                Console.standardOutput("wrote \(output): \(summary.rows.count) tensors, \(summary.parameterCount) parameters, \(summary.byteCount) bytes\n")
            }
        }
    }
}
