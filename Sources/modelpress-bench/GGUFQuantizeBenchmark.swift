import Foundation
import TensorCore
import CheckpointFormats
import ModelPress

/// End-to-end GGUF quantization throughput: `CheckpointConversion` from an F32 GGUF file to a
/// quantized GGUF file (open + map, per-tensor float read, codec, write), as `modelpress convert
/// IN.gguf -o OUT.gguf --type T --threads N` runs it. Reported as MB/s of F32 input (1 MB = 10^6 bytes).
///
/// The input is a 268 MB llama-named GGUF: `token_embd`, `output` and two layers of the seven llama
/// matrices, each [1024, 4096] F32 (rows of 4096 values, normal with std 0.02), plus F32 norms. The
/// imatrix (for "Q4_K+imatrix") is a GGUF imatrix with an entry for every matrix. Both files are
/// written once and reused (`--keep` leaves them for `Benchmarks/peer/llama_quantize_bench.py`, which
/// times llama.cpp's `llama_model_quantize` on the same files with the same types and threads).
///
/// Options (after `gguf`): `--only Q8_0,Q4_K_M,...` (default: all of `GGUFQuantizeBenchmark.cases`),
/// `--threads 1,2` (default 1,2), `--repetitions N` (median of N, default 3), `--keep`, `--breakdown`.
///
/// `--breakdown` also times the phases of the same work separately, with the calls
/// `CheckpointConversion` makes per tensor: read (`DenseTensor.floats()`, a fresh array from the
/// map), check (the scan for NaN/Inf), codec (row-parallel `quantizeRow` into a fresh buffer) and
/// write (`AtomicFileWriter`, with padding). Their sum is close to the end-to-end time, which shows
/// where the time goes.
struct GGUFQuantizeBenchmark {
    struct Options {
        var only: [String] = []
        var threads: [Int] = [1, 2]
        var repetitions = 3
        var keep = false
        var breakdown = false

        /// Removes the options this benchmark understands from `arguments`.
        static func extract(from arguments: inout [String]) -> Options {
            var options = Options()
            func value(_ flag: String) -> String? {
                guard let i = arguments.firstIndex(of: flag), i + 1 < arguments.count else { return nil }
                defer { arguments.removeSubrange(i...(i + 1)) }
                return arguments[i + 1]
            }
            if let v = value("--only") { options.only = v.split(separator: ",").map(String.init) }
            if let v = value("--threads") { options.threads = v.split(separator: ",").compactMap { Int($0) } }
            if let v = value("--repetitions") { options.repetitions = max(1, Int(v) ?? 3) }
            if let i = arguments.firstIndex(of: "--keep") { options.keep = true; arguments.remove(at: i) }
            if let i = arguments.firstIndex(of: "--breakdown") { options.breakdown = true; arguments.remove(at: i) }
            return options
        }
    }

    /// (label, `--type` text, uses the imatrix). Plain types are llama-quantize `--pure`.
    static let cases: [(label: String, type: String, imatrix: Bool)] = [
        ("Q8_0", "Q8_0", false), ("Q4_0", "Q4_0", false), ("Q4_K", "Q4_K", false), ("Q5_K", "Q5_K", false),
        ("Q6_K", "Q6_K", false), ("Q4_K_M", "Q4_K_M", false), ("Q4_K+imatrix", "Q4_K", true),
    ]

    static let inputName = "modelpress-bench-gguf-f32.gguf"
    static let imatrixName = "modelpress-bench-gguf-imatrix.gguf"
    static let rows = 1024, columns = 4096, layers = 2

    let directory: String
    let options: Options

    func run() throws {
        let input = directory + "/" + Self.inputName
        let imatrix = directory + "/" + Self.imatrixName
        let output = directory + "/modelpress-bench-gguf-out.gguf"
        let inputBytes = try Self.makeInput(path: input)
        try Self.makeImatrix(path: imatrix)
        defer {
            unlink(output)
            if !options.keep { unlink(input); unlink(imatrix) }
        }
        let megabytes = Double(inputBytes) / 1e6
        let selected = options.only.isEmpty ? Self.cases : Self.cases.filter { options.only.contains($0.label) }
        print("gguf quantize benchmark: \(input) (\(fixed(megabytes, 1)) MB of F32), file to file, median of \(options.repetitions)")
        _ = try medianSeconds(repetitions: 1) { try blackHole(GGUFReader.open(path: input).entries.count) }
        for c in selected {
            for threads in options.threads {
                let target = QuantizationTarget(c.type)!
                let conversionOptions = CheckpointConversion.Options(quantization: target, importancePath: c.imatrix ? imatrix : nil,
                                                                     threadCount: threads)
                let seconds = try medianSeconds(repetitions: options.repetitions) {
                    var conversion = try CheckpointConversion(inputPath: input, outputPath: output, options: conversionOptions)
                    try conversion.run()
                }
                let outputBytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                unlink(output)
                print("  \(c.label.padding(toLength: 13, withPad: " ", startingAt: 0)) threads \(threads): "
                      + "\(fixed(megabytes / seconds, 1)) MB/s (\(fixed(seconds, 3)) s, output \(fixed(Double(outputBytes) / 1e6, 1)) MB)")
                if options.breakdown {
                    let phases = try breakdown(input: input, output: output, target: target, importancePath: c.imatrix ? imatrix : nil, threads: threads)
                    let total = phases.reduce(0) { $0 + $1.seconds }
                    print("      " + phases.map { "\($0.name) \(fixed($0.seconds * 1e3, 0)) ms (\(fixed(100 * $0.seconds / total, 0))%)" }.joined(separator: ", ")
                          + "; sum \(fixed(total * 1e3, 0)) ms")
                }
            }
        }
    }

    /// Median time of each phase over the repetitions (see the type's documentation).
    func breakdown(input: String, output: String, target: QuantizationTarget, importancePath: String?,
                   threads: Int) throws -> [(name: String, seconds: Double)] {
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
            let checkpoint = try timed(0) { try GGUFReader.open(path: input) }
            let entries = LlamaTensorOrder.sorted(checkpoint.entries)
            let types = try LlamaTensorTypeRules(target: target, allowFallback: true).assign(entries.map { ($0.name, $0.shape) })
            let importance = try importancePath.map { try ImportanceMatrix.load(path: $0) }
            let writer = try AtomicFileWriter(destination: output)
            for (entry, type) in zip(entries, types) {
                guard case .dense(let tensor) = entry.payload else { continue }
                guard let type, let codec = BlockCodecs.codec(for: type) else {
                    try timed(3) { try tensor.storage.withUnsafeBytes { try writer.write($0) } }
                    continue
                }
                let values = try timed(0) { try tensor.floats() }
                let bad = timed(1) { values.firstIndex { !$0.isFinite } }
                precondition(bad == nil)
                let rowLength = tensor.shape.dimensions.last!, rows = tensor.elementCount / rowLength
                let rowBytes = type.rowByteCount(elements: rowLength)!
                let weights = importance?[entry.name]
                let storage = timed(2) {
                    ByteStorage(count: rows * rowBytes) { out in
                        values.withUnsafeBufferPointer { source in
                            ParallelLoop.forEachRange(count: rows, threadCount: threads) { range in
                                for r in range {
                                    let row = UnsafeBufferPointer(rebasing: source[(r * rowLength)..<((r + 1) * rowLength)])
                                    let target = UnsafeMutableRawBufferPointer(rebasing: out[(r * rowBytes)..<((r + 1) * rowBytes)])
                                    if let weights {
                                        weights.withUnsafeBufferPointer { codec.quantizeRow(row, importance: $0, into: target) }
                                    } else {
                                        codec.quantizeRow(row, importance: nil, into: target)
                                    }
                                }
                            }
                        }
                    }
                }
                try timed(3) {
                    try storage.withUnsafeBytes { try writer.write($0) }
                    try writer.writeZeros(GGUFHeader.alignUp(storage.count, 32) - storage.count)
                }
            }
            try timed(3) { try writer.commit() }
            unlink(output)
            for p in 0..<4 { samples[p].append(t[p]) }
        }
        return zip(["read", "check", "codec", "write"], samples).map { ($0, $1.sorted()[$1.count / 2]) }
    }

    static func tensorNames() -> [String] {
        var names = ["token_embd.weight"]
        for i in 0..<layers {
            names += ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { "blk.\(i).\($0).weight" }
        }
        return names + ["output.weight"]
    }

    /// Writes the F32 input unless a file of the right size is already there; returns its F32 tensor bytes.
    static func makeInput(path: String) throws -> Int {
        let names = tensorNames()
        let matrixBytes = rows * columns * 4
        var planned: [GGUFWriter.PlannedTensor] = names.map {
            .init(name: $0, typeID: GGMLType.f32.rawValue, shape: Shape([rows, columns]), byteCount: matrixBytes)
        }
        for i in 0..<layers {
            for norm in ["attn_norm", "ffn_norm"] {
                planned.append(.init(name: "blk.\(i).\(norm).weight", typeID: GGMLType.f32.rawValue, shape: Shape([columns]), byteCount: columns * 4))
            }
        }
        planned.append(.init(name: "output_norm.weight", typeID: GGMLType.f32.rawValue, shape: Shape([columns]), byteCount: columns * 4))
        let total = planned.reduce(0) { $0 + $1.byteCount }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("general.name", .string("modelpress-bench")),
            ("llama.context_length", .uint32(4096)), ("llama.embedding_length", .uint32(UInt32(columns))),
            ("llama.block_count", .uint32(UInt32(layers))), ("llama.feed_forward_length", .uint32(UInt32(columns))),
            ("llama.attention.head_count", .uint32(32)), ("llama.attention.head_count_kv", .uint32(8)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("general.file_type", .uint32(0)),
        ]
        if let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int,
           size == (try GGUFWriter.encodeHeader(metadata: metadata, tensors: planned)).bytes.count + total {
            return total
        }
        try GGUFWriter.write(to: path, metadata: metadata, tensors: planned) { position in
            guard position < names.count else {
                return ByteStorage(count: columns * 4) { $0.withMemoryRebound(to: Float.self) { $0.initialize(repeating: 1) } }
            }
            var rng = SeededGenerator(seed: 0x6767_7566 &+ UInt64(position))
            let values = rng.gaussianFloats(count: rows * columns, standardDeviation: 0.02)
            return ByteStorage(count: matrixBytes) { out in values.withUnsafeBytes { out.copyMemory(from: $0) } }
        }
        return total
    }

    /// A GGUF imatrix with an entry for every matrix (in_sum2 = E[x^2]·4096, counts = 4096).
    static func makeImatrix(path: String) throws {
        if FileManager.default.fileExists(atPath: path) { return }
        var rng = SeededGenerator(seed: 0x696d_6174)
        var planned: [GGUFWriter.PlannedTensor] = []
        var data: [ByteStorage] = []
        for name in tensorNames().sorted() {
            let sums = (0..<columns).map { _ in Float(exp(rng.nextGaussian())) * 0.01 * 4096 }
            planned.append(.init(name: name + ".in_sum2", typeID: GGMLType.f32.rawValue, shape: Shape([1, columns]), byteCount: columns * 4))
            data.append(ByteStorage(count: columns * 4) { out in sums.withUnsafeBytes { out.copyMemory(from: $0) } })
            planned.append(.init(name: name + ".counts", typeID: GGMLType.f32.rawValue, shape: Shape([1, 1]), byteCount: 4))
            data.append(ByteStorage(count: 4) { $0.storeBytes(of: Float(4096), as: Float.self) })
        }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.type", .string("imatrix")),
            ("imatrix.datasets", .array(elementType: .string, values: [.string("modelpress-bench")])),
            ("imatrix.chunk_count", .uint32(8)), ("imatrix.chunk_size", .uint32(512)),
        ]
        try GGUFWriter.write(to: path, metadata: metadata, tensors: planned) { data[$0] }
    }
}
