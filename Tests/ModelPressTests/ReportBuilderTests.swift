import Testing
import TensorCore
import CheckpointFormats
import Reports
import TestSupport
@testable import ModelPress

/// The report's streamed measurement (decode and dequantize 4096 values at a time, tensors in
/// parallel) against measuring whole `floatValues` arrays one tensor after another.
@Suite("ReportBuilder: streamed metrics equal whole-array metrics")
struct ReportBuilderTests {
    static func pairs() throws -> (original: Checkpoint, compressed: Checkpoint) {
        var rng = SeededGenerator(seed: 99)
        var before: [TensorEntry] = [], after: [TensorEntry] = []
        for (i, dims) in [[33, 130], [4, 4096], [1, 7], [5000], [2, 3, 9]].enumerated() {
            let shape = Shape(dims)
            var w = rng.gaussianFloats(count: shape.elementCount, standardDeviation: 0.05)
            if w.count > 20 { w[3] = 0; w[10] = -0.0 }
            for (j, dtype) in [DType.f32, .f16, .bf16].enumerated() {
                let name = "t\(i).\(j).weight"
                let original = try DenseTensor(floats: w, shape: shape, dtype: dtype)
                before.append(TensorEntry(name: name, tensor: original))
                let values = try original.floats()
                let payload: TensorPayload = switch (i + j) % 3 {
                case 0: .quantized(QuantizedTensorFixture.integer(values, shape: shape, bits: 4 + j))
                case 1: .dense(try DenseTensor(floats: values.map { $0 * 1.001 }, shape: shape, dtype: .bf16))
                default: .dense(original)
                }
                after.append(TensorEntry(name: name, payload: payload))
            }
        }
        return (try Checkpoint(entries: before), try Checkpoint(entries: after))
    }

    @Test("every record, at 1 and 3 threads")
    func sameRecords() throws {
        let (original, compressed) = try Self.pairs()
        var expected: [TensorRecord] = []
        for before in original.entries {
            let after = compressed[before.name]!
            let metrics = try ErrorMetrics(original: try before.floatValues()!, reconstruction: try after.floatValues()!)
            let dtype = if case .dense(let t) = before.payload { t.dtype.rawValue } else { "?" }
            expected.append(TensorRecord(name: before.name, shape: before.shape, inputDType: dtype, encoding: after.encodingName,
                                         inputByteCount: before.byteCount, outputByteCount: after.byteCount, metrics: metrics))
        }
        for threads in [1, 3] {
            let report = try ReportBuilder.report(original: original, compressed: compressed, input: "in", output: "out", recipe: nil, threadCount: threads)
            #expect(report.tensors == expected, "threads \(threads)")
        }
    }

    @Test("the first problem in the original's order is thrown")
    func firstProblem() throws {
        let (original, compressed) = try Self.pairs()
        let dropped: Set<String> = ["t1.0.weight", "t3.2.weight"]
        let shorter = try Checkpoint(entries: compressed.entries.filter { !dropped.contains($0.name) })
        let expected = ReportBuildError.missingTensor("t1.0.weight")
        #expect(throws: expected) {
            _ = try ReportBuilder.report(original: original, compressed: shorter, input: "in", output: "out", recipe: nil, threadCount: 3)
        }
    }
}

extension ReportBuilderTests {
    @Test("F32 read from a memory map at an offset that is not 4-byte aligned")
    func unalignedMappedOriginal() throws {
        let dir = try TemporaryDirectory(prefix: "report")
        let path = dir.url("odd.safetensors")
        var rng = SeededGenerator(seed: 5)
        let w = rng.gaussianFloats(count: 5 * 1000)
        let odd = try DenseTensor(dtype: .u8, shape: Shape([3]), storage: ByteStorage([1, 2, 3]))
        let matrix = try DenseTensor(floats: w, shape: Shape([5, 1000]))
        let planned = [SafetensorsWriter.PlannedTensor(name: "a", dtype: .u8, shape: odd.shape),
                       SafetensorsWriter.PlannedTensor(name: "b.weight", dtype: .f32, shape: matrix.shape)]
        try SafetensorsWriter.write(to: path, metadata: [], tensors: planned) { $0 == 0 ? odd : matrix }
        let original = try SafetensorsReader.open(path: path)
        guard case .dense(let mapped) = original["b.weight"]!.payload else { Issue.record("not dense"); return }
        #expect(mapped.storage.isMapped && mapped.storage.withUnsafeBytes { Int(bitPattern: $0.baseAddress!) % 4 } != 0)
        let q = QuantizedTensorFixture.integer(w, shape: matrix.shape, bits: 8)
        let compressed = try Checkpoint(entries: [original.entries[0], TensorEntry(name: "b.weight", payload: .quantized(q))])
        let report = try ReportBuilder.report(original: original, compressed: compressed, input: "in", output: "out", recipe: nil, threadCount: 2)
        let expected = try ErrorMetrics(original: w, reconstruction: q.dequantized())
        #expect(report.tensors[1].relativeError == expected.relativeError && report.tensors[1].maxAbsoluteError == expected.maxAbsoluteError
                && report.tensors[1].cosine == expected.cosine && report.tensors[1].sqnrDecibels == expected.sqnrDecibels)
    }
}

/// Integer-quantized tensors for report tests (per-channel, asymmetric when `bits` is odd).
enum QuantizedTensorFixture {
    static func integer(_ values: [Float], shape: Shape, bits: Int) -> QuantizedTensor {
        let columns = max(shape.columnCount, 1), rows = values.count / columns
        var codes = [UInt8](repeating: 0, count: values.count)
        var scales: [Float] = [], zeros: [Int32] = []
        for r in 0..<rows {
            let row = values[(r * columns)..<((r + 1) * columns)]
            let scale = max(row.map { abs($0) }.max() ?? 0, 1e-6) / Float((1 << (bits - 1)) - 1)
            let zero = Int32(1 << (bits - 1)) + Int32(bits % 2)
            for (c, x) in row.enumerated() {
                codes[r * columns + c] = UInt8(max(0, min(Int32((1 << bits) - 1), Int32((x / scale).rounded()) + zero)))
            }
            scales.append(scale)
            zeros.append(zero)
        }
        return QuantizedTensor(shape: shape, bits: bits, symmetric: bits % 2 == 0, granularity: .channel, codes: codes, scales: scales, zeroPoints: zeros)
    }
}

extension ReportBuilderTests {
    @Test("from paths, measuring each decoded tensor as it is read, gives the records of the opened checkpoints (safetensors and GGUF)",
          arguments: ["safetensors", "gguf"])
    func fromPaths(ext: String) throws {
        let dir = try TemporaryDirectory(prefix: "report-paths")
        var (original, compressed) = try Self.pairs()
        // Add a compact sparse tensor (safetensors only decodes it into memory; GGUF keeps it dense).
        var rng = SeededGenerator(seed: 3)
        let w = rng.gaussianFloats(count: 64 * 128)
        let pruned = try DenseTensor(floats: w.enumerated().map { $0.offset % 4 < 2 ? 0 : $0.element }, shape: Shape([64, 128]))
        original = try Checkpoint(entries: original.entries + [TensorEntry(name: "pruned.weight", tensor: try DenseTensor(floats: w, shape: Shape([64, 128])))])
        compressed = try Checkpoint(entries: compressed.entries + [TensorEntry(name: "pruned.weight", payload: .dense(pruned), sparsity: .nOfM(kept: 2, group: 4))])
        let originalPath = dir.url("original.safetensors"), compressedPath = dir.url("compressed.\(ext)")
        try SafetensorsWriter.write(original, to: originalPath)
        if ext == "gguf" { try GGUFWriter.write(compressed, to: compressedPath) } else { try SafetensorsWriter.write(compressed, to: compressedPath) }
        let expected = try ReportBuilder.report(original: CheckpointReader.open(path: originalPath), compressed: CheckpointReader.open(path: compressedPath),
                                                input: originalPath, output: compressedPath, recipe: nil)
        let streamed = try ReportBuilder.report(originalPath: originalPath, compressedPath: compressedPath)
        #expect(streamed.tensors == expected.tensors)
        #expect(expected.tensors.contains { $0.encoding.hasPrefix("int") } && expected.tensors.last?.sparsity == 0.5)
    }
}
