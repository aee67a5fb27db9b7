import Foundation
import TensorCore
import CheckpointFormats
import Recipes
import Passes
import ModelPress

/// `quantize.int bits=8 granularity=channel` throughput, in GB/s of F32 input (1 GB = 10^9 bytes).
///
/// The input is a 1.07 GB F32 safetensors file (16 tensors of [4096, 4096], about normal with
/// std 0.02, plus two 1-D norms that the pass leaves alone), written once into the benchmark folder
/// and read once before timing so that it sits in the page cache.
/// - kernel: `IntegerQuantizer.quantize(float32:shape:threadCount:)` on one tensor in memory
///   (64 MiB), on 1 thread and on all; `referenceQuantize` (the scalar code) on 1 thread for the ratio.
/// - end to end: `CompressionPipeline.compress` (open, bind, quantize each tensor, write the
///   safetensors output, build the error report) on 1 thread and on all; the same with the scalar
///   reference in place of the vectorized quantizer (a registry holding `ReferenceIntegerQuantization`).
/// - `--breakdown`: the phases of `compress` timed one by one with the calls it makes (open + bind,
///   apply, write, report), so "without the report" is open + apply + write.
///
/// Options (after `int`): `--threads 1,2` (default: 1 and all cores), `--repetitions N` (median of N,
/// default 3), `--keep` (leave the input file), `--breakdown`, `--no-reference` (skip the scalar runs),
/// `--kernel-only`.
struct IntQuantizeBenchmark {
    struct Options {
        var threads: [Int] = [1, ProcessInfo.processInfo.activeProcessorCount]
        var repetitions = 3
        var keep = false
        var breakdown = false
        var reference = true
        var kernelOnly = false

        /// Removes the options this benchmark understands from `arguments`.
        static func extract(from arguments: inout [String]) -> Options {
            var options = Options()
            func value(_ flag: String) -> String? {
                guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
                defer { arguments.removeSubrange(i...(i + 1)) }
                return arguments[i + 1]
            }
            func flag(_ name: String) -> Bool {
                guard let i = arguments.firstIndex(of: name) else { return false }
                arguments.remove(at: i)
                return true
            }
            if let v = value("--threads") { options.threads = v.split(separator: ",").compactMap { Int($0) } }
            if let v = value("--repetitions") { options.repetitions = max(1, Int(v) ?? 3) }
            options.keep = flag("--keep")
            options.breakdown = flag("--breakdown")
            options.reference = !flag("--no-reference")
            options.kernelOnly = flag("--kernel-only")
            return options
        }
    }

    static let inputName = "modelpress-bench-int-f32.safetensors"
    static let tensorCount = 16, rows = 4096, columns = 4096
    static let recipeText = "quantize.int bits=8 granularity=channel\n"

    let directory: String
    let options: Options

    func run() throws {
        let input = directory + "/" + Self.inputName
        let recipe = directory + "/modelpress-bench-int.recipe"
        let output = directory + "/modelpress-bench-int-out.safetensors"
        try Self.recipeText.write(toFile: recipe, atomically: true, encoding: .utf8)
        let inputBytes = try Self.makeInput(path: input)
        defer {
            unlink(output); unlink(recipe)
            if !options.keep { unlink(input) }
        }
        let gigabytes = Double(inputBytes) / 1e9
        print("int quantize benchmark: \(input) (\(Self.tensorCount) F32 tensors [\(Self.rows), \(Self.columns)], "
              + "\(fixed(gigabytes, 3)) GB), `\(Self.recipeText.dropLast())`, median of \(options.repetitions)")
        Self.warmPageCache(path: input)

        // Kernel: one tensor in memory.
        let checkpoint = try CheckpointReader.open(path: input)
        guard case .dense(let tensor) = checkpoint.entries[0].payload else { return }
        let values = try tensor.floats()
        let shape = tensor.shape
        let kernelGigabytes = Double(values.count * 4) / 1e9
        let quantizer = IntegerQuantizer(bits: 8, symmetric: true, granularity: .channel)
        print("  kernel (per-channel int8, one [\(Self.rows), \(Self.columns)] tensor in memory):")
        var fastSingle = 0.0
        for threads in options.threads {
            let seconds = medianSeconds(repetitions: max(options.repetitions, 5)) {
                values.withUnsafeBytes { blackHole(quantizer.quantize(float32: $0, shape: shape, threadCount: threads)) }
            }
            if threads == 1 { fastSingle = seconds }
            print("    SIMD, threads \(threads): \(fixed(kernelGigabytes / seconds)) GB/s (\(fixed(seconds * 1e3, 1)) ms)")
        }
        if options.reference {
            let seconds = medianSeconds(repetitions: options.repetitions) { blackHole(quantizer.referenceQuantize(values, shape: shape)) }
            let ratio = fastSingle > 0 ? ", SIMD is \(fixed(seconds / fastSingle, 1))x faster on 1 thread" : ""
            print("    scalar reference, threads 1: \(fixed(kernelGigabytes / seconds)) GB/s (\(fixed(seconds * 1e3, 1)) ms)\(ratio)")
        }

        if options.kernelOnly { return }

        // End to end.
        print("  end to end (CompressionPipeline.compress, file to file, with the report):")
        var variants: [(label: String, registry: PassRegistry)] = [("SIMD", .builtIn)]
        if options.reference { variants.append(("scalar reference", PassRegistry([ReferenceIntegerQuantization.self]))) }
        for variant in variants {
            for threads in options.threads {
                var pipeline = CompressionPipeline(inputPath: input, recipePath: recipe)
                pipeline.threadCount = threads
                pipeline.registry = variant.registry
                let repetitions = variant.label == "SIMD" ? options.repetitions : 1
                var outputBytes = 0
                var times: [Double] = []
                for _ in 0..<repetitions {
                    unlink(output)   // outside the timed part: freeing the previous output's blocks is not compress's work
                    times.append(try medianSeconds(repetitions: 1) { blackHole(try pipeline.compress(outputPath: output)) })
                    outputBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                }
                unlink(output)
                let seconds = times.sorted()[times.count / 2]
                let runs = repetitions == 1 ? " (1 run)" : ""
                print("    \(variant.label), threads \(threads): \(fixed(gigabytes / seconds)) GB/s (\(fixed(seconds, 3)) s, "
                      + "output \(fixed(Double(outputBytes) / 1e6, 1)) MB)\(runs)")
            }
        }
        if options.breakdown {
            for threads in options.threads {
                let phases = try breakdown(input: input, recipe: recipe, output: output, threads: threads)
                let total = phases.reduce(0) { $0 + $1.seconds }
                let withoutReport = total - phases.last!.seconds
                print("    phases, threads \(threads): " + phases.map { "\($0.name) \(fixed($0.seconds * 1e3, 0)) ms" }.joined(separator: ", ")
                      + "; sum \(fixed(total * 1e3, 0)) ms = \(fixed(gigabytes / total)) GB/s, "
                      + "without the report \(fixed(gigabytes / withoutReport)) GB/s")
            }
        }
    }

    /// Median time of each phase of `compress` over the repetitions (see the type's documentation).
    func breakdown(input: String, recipe: String, output: String, threads: Int) throws -> [(name: String, seconds: Double)] {
        var samples: [[Double]] = [[], [], [], []]
        for _ in 0..<options.repetitions {
            var t = [Double](repeating: 0, count: 4)
            func timed<T>(_ phase: Int, _ body: () throws -> T) rethrows -> T {
                let start = ContinuousClock.now
                defer {
                    let d = ContinuousClock.now - start
                    t[phase] += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                }
                return try body()
            }
            let (original, steps) = try timed(0) {
                let checkpoint = try CheckpointReader.open(path: input)
                let steps = try PassRegistry.builtIn.bind(try RecipeParser.parse(path: recipe), manifest: CheckpointManifest(checkpoint))
                return (checkpoint, steps)
            }
            var checkpoint = original
            try timed(1) {
                for step in steps {
                    for i in step.selected {
                        var entry = checkpoint.entries[i]
                        try step.pass.apply(to: &entry, context: PassContext(threadCount: threads))
                        checkpoint.replacePayload(at: i, with: entry.payload)
                    }
                }
            }
            unlink(output)
            try timed(2) { try SafetensorsWriter.write(checkpoint, to: output) }
            try timed(3) {
                blackHole(try ReportBuilder.report(original: original, compressed: checkpoint, input: input, output: output,
                                                   recipe: recipe, threadCount: threads))
            }
            unlink(output)
            for p in 0..<4 { samples[p].append(t[p]) }
        }
        return zip(["open+bind", "apply", "write", "report"], samples).map { ($0, $1.sorted()[$1.count / 2]) }
    }

    /// Reads every page of the file once, so that timed runs find it in the page cache.
    static func warmPageCache(path: String) {
        guard let file = try? MappedFile(path: path) else { return }
        var sum: UInt64 = 0
        var offset = 0
        while offset < file.byteCount {
            sum &+= UInt64(file.bytes[offset])
            offset += 4096
        }
        blackHole(sum)
    }

    /// Writes the input unless a file of the right size is already there; returns its tensor bytes.
    ///
    /// Values are about normal with std 0.02: the sum of the four 16-bit halves of a SplitMix64 draw
    /// (seed per tensor), centred and scaled (Irwin–Hall with n = 4), which is fast to generate.
    static func makeInput(path: String) throws -> Int {
        let shape = Shape([rows, columns])
        var planned = (0..<tensorCount).map {
            SafetensorsWriter.PlannedTensor(name: "model.layers.\($0).mlp.weight", dtype: .f32, shape: shape)
        }
        planned += [SafetensorsWriter.PlannedTensor(name: "model.norm.weight", dtype: .f32, shape: Shape([columns])),
                    SafetensorsWriter.PlannedTensor(name: "model.final_norm.weight", dtype: .f32, shape: Shape([columns]))]
        let metadata = [(key: "format", value: "pt")]
        let matrixBytes = rows * columns * 4
        let total = tensorCount * matrixBytes + 2 * columns * 4
        let headerBytes = try SafetensorsWriter.encodeHeader(metadata: metadata, tensors: planned).count
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size == headerBytes + total {
            return total
        }
        try SafetensorsWriter.write(to: path, metadata: metadata, tensors: planned) { position in
            guard position < tensorCount else {
                return try DenseTensor(floats: [Float](repeating: 1, count: columns), shape: Shape([columns]))
            }
            var rng = SeededGenerator(seed: 0x696E_7438 &+ UInt64(position))
            // Sum of four uniforms on [0, 65535]: mean 131070, variance 4 · (65536² − 1) / 12.
            let variance: Double = 4.0 * (65536.0 * 65536.0 - 1) / 12
            let scale = Float(0.02 / variance.squareRoot())
            let storage = ByteStorage(count: matrixBytes) { out in
                let floats = out.bindMemory(to: Float.self)
                for i in 0..<floats.count {
                    let r = rng.next()
                    let low: UInt64 = (r & 0xFFFF) + ((r >> 16) & 0xFFFF)
                    let high: UInt64 = ((r >> 32) & 0xFFFF) + (r >> 48)
                    floats[i] = Float(Int64(low + high) - 131_070) * scale
                }
            }
            return try DenseTensor(dtype: .f32, shape: shape, storage: storage)
        }
        return total
    }
}

/// `quantize.int` with the scalar `referenceQuantize` (as the pass ran before the vectorized path):
/// decode to `[Float]`, scan for NaN/Inf, quantize one value at a time.
struct ReferenceIntegerQuantization: CompressionPass {
    static let name = IntegerQuantization.name
    static let summary = "scalar reference of quantize.int (benchmark only)"
    let options: IntegerQuantization.Options
    init(options: IntegerQuantization.Options) { self.options = options }

    static func selectsByDefault(name: String, rank: Int) -> Bool { IntegerQuantization.selectsByDefault(name: name, rank: rank) }

    func problem(with entry: CheckpointManifest.Entry) -> String? { IntegerQuantization(options: options).problem(with: entry) }

    func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .dense(let tensor) = entry.payload else { return }
        let values = try tensor.floats()
        precondition(!values.contains { !$0.isFinite }, "benchmark input holds NaN or Inf")
        entry.payload = .quantized(options.quantizer.referenceQuantize(values, shape: entry.shape))
    }
}
