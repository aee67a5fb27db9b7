import Foundation
import TensorCore
import CheckpointFormats

/// Read throughput of a ~1 GB safetensors file from page cache, against a plain memory copy of the
/// same bytes on the same machine (the ceiling for any reader that hands out owned data).
///
/// - memcpy: copy the file's bytes (already in memory) into a reused buffer.
/// - open: map + validate the header (no tensor bytes touched).
/// - read F32 -> Float: open, then decode every tensor into a reused Float buffer.
/// - read F32 -> [Float]: open, then `floats()` for every tensor (fresh arrays, as a pass does).
/// - read BF16 -> Float: the BF16 copy, widened to Float into a reused buffer.
struct ReadBenchmark {
    let directory: String
    let tensorCount = 64
    let rows = 4096, columns = 1024          // 16 MiB of F32 per tensor, 1 GiB in all

    func run() throws {
        let f32Path = directory + "/modelpress-bench-read-f32.safetensors"
        let bf16Path = directory + "/modelpress-bench-read-bf16.safetensors"
        try makeFile(path: f32Path, dtype: .f32)
        try makeFile(path: bf16Path, dtype: .bf16)
        defer { unlink(f32Path); unlink(bf16Path) }

        let file = try MappedFile(path: f32Path)
        let bytes = file.bytes
        let gigabytes = Double(bytes.count) / 1e9
        print("read benchmark: \(tensorCount) F32 tensors [\(rows), \(columns)], \(fixed(gigabytes, 3)) GB, median of 5")
        let copyBuffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        defer { copyBuffer.deallocate() }
        memset(copyBuffer, 0, bytes.count)
        _ = medianSeconds(repetitions: 1) { copyBuffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }  // fault in
        let memcpyTime = medianSeconds(repetitions: 5) { copyBuffer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        report("memcpy (baseline)", gigabytes, memcpyTime, memcpyTime)

        let openTime = medianSeconds(repetitions: 5) { blackHole(try! SafetensorsReader.open(path: f32Path)) }
        print("  open + validate header: \(fixed(openTime * 1e3, 3)) ms")

        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        defer { scratch.deallocate() }
        scratch.initialize(repeating: 0, count: rows * columns)
        let reused = try medianSeconds(repetitions: 5) {
            let checkpoint = try SafetensorsReader.open(path: f32Path)
            for entry in checkpoint.entries {
                guard case .dense(let t) = entry.payload else { continue }
                t.storage.withUnsafeBytes { FloatCodec.decode($0, as: t.dtype, into: UnsafeMutableBufferPointer(start: scratch, count: t.elementCount)) }
            }
        }
        report("read F32 -> Float (reused buffer)", gigabytes, reused, memcpyTime)

        let fresh = try medianSeconds(repetitions: 5) {
            let checkpoint = try SafetensorsReader.open(path: f32Path)
            for entry in checkpoint.entries {
                guard case .dense(let t) = entry.payload else { continue }
                blackHole(try t.floats())
            }
        }
        report("read F32 -> [Float] (new array per tensor)", gigabytes, fresh, memcpyTime)

        let bf16 = try medianSeconds(repetitions: 5) {
            let checkpoint = try SafetensorsReader.open(path: bf16Path)
            for entry in checkpoint.entries {
                guard case .dense(let t) = entry.payload else { continue }
                t.storage.withUnsafeBytes { FloatCodec.decode($0, as: t.dtype, into: UnsafeMutableBufferPointer(start: scratch, count: t.elementCount)) }
            }
        }
        report("read BF16 -> Float (reused buffer; GB of F32 output)", gigabytes, bf16, memcpyTime)
    }

    private func report(_ label: String, _ gigabytes: Double, _ seconds: Double, _ baseline: Double) {
        print("  \(label): \(fixed(gigabytes / seconds)) GB/s (\(fixed(seconds * 1e3, 1)) ms, \(fixed(baseline / seconds, 2))x memcpy)")
    }

    private func makeFile(path: String, dtype: DType) throws {
        var rng = SeededGenerator(seed: 2024)
        let row = rng.gaussianFloats(count: rows * columns, standardDeviation: 0.02)
        let tensor = try DenseTensor(floats: row, shape: Shape([rows, columns]), dtype: dtype)
        let planned = (0..<tensorCount).map {
            SafetensorsWriter.PlannedTensor(name: "model.layers.\($0).mlp.weight", dtype: dtype, shape: tensor.shape)
        }
        try SafetensorsWriter.write(to: path, metadata: [("format", "pt")], tensors: planned) { _ in tensor }
    }
}
