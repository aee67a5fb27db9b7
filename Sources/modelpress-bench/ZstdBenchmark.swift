import Foundation
import TensorCore
import CheckpointFormats

/// Lossless compression of weights: a ≥256 MiB BF16 and a F32 safetensors file of realistic
/// weights (N(0, σ_row), σ_row = 0.02·exp(N(0, 0.15)) per row), compressed to a `.zst` archive
/// (byte planes) and decompressed back, at 1 and 2 threads, against the `zstd` tool at -1, -3 and
/// -19 (one thread, same file, page cache; -19 on the first 32 MiB only). Ratio = input / output
/// bytes; MB/s of uncompressed bytes; median of 3.
struct ZstdBenchmark {
    let directory: String
    let rows = 8192, columns = 8192          // 64 Mi values: 256 MiB F32, 128 MiB BF16 ... ×2 tensors for BF16

    func run() throws {
        for dtype in [DType.bf16, .f32] {
            let path = directory + "/modelpress-bench-zstd-\(dtype.rawValue).safetensors"
            try makeFile(path: path, dtype: dtype)
            defer { unlink(path); unlink(path + ".zst"); unlink(path + ".back"); unlink(path + ".cli.zst") }
            let size = Double(try MappedFile(path: path).byteCount)
            print("zstd benchmark: \(dtype.rawValue), \(fixed(size / 1e6, 0)) MB of weights, median of 3")
            try profile(path: path, width: dtype == .bf16 ? 2 : 4)
            print("  tool              threads   ratio   compress MB/s   decompress MB/s")
            for threads in [1, 2] {
                let c = try medianSeconds(repetitions: 3) {
                    try ZstdCheckpoint.write(to: path + ".zst", threadCount: threads) { inner in
                        unlink(inner)
                        guard link(path, inner) == 0 else { throw FileAccessError.cannotOpen(path: inner, reason: "link failed") }
                    }
                }
                let compressed = Double(try MappedFile(path: path + ".zst").byteCount)
                let d = try medianSeconds(repetitions: 3) { try ZstdCheckpoint.extract(path: path + ".zst", to: path + ".back", threadCount: threads) }
                let back = try MappedFile(path: path + ".back"), original = try MappedFile(path: path)
                guard back.byteCount == original.byteCount, memcmp(back.bytes.baseAddress!, original.bytes.baseAddress!, back.byteCount) == 0 else {
                    throw FileAccessError.cannotOpen(path: path, reason: "round trip differs")
                }
                print("  modelpress .zst   \(threads)         \(fixed(size / compressed, 3))   \(fixed(size / c / 1e6, 0))             \(fixed(size / d / 1e6, 0))")
            }
            for level in ["-1", "-3", "-19"] {
                var input = path
                var bytes = size
                if level == "-19" {
                    input = path + ".head"
                    _ = shell(["head", "-c", "33554432", path], stdout: input)
                    bytes = 33_554_432
                }
                defer { if level == "-19" { unlink(input) } }
                let c = medianSeconds(repetitions: level == "-19" ? 1 : 3) { _ = shell(["zstd", "-q", "-f", "-T1", level, input, "-o", path + ".cli.zst"]) }
                let compressed = Double(try MappedFile(path: path + ".cli.zst").byteCount)
                let d = medianSeconds(repetitions: level == "-19" ? 1 : 3) { _ = shell(["zstd", "-q", "-d", "-f", path + ".cli.zst", "-o", path + ".back"]) }
                print("  zstd \(level)\(level.count == 2 ? " " : "")        1         \(fixed(bytes / compressed, 3))   \(fixed(bytes / c / 1e6, 0))             \(fixed(bytes / d / 1e6, 0))\(level == "-19" ? "   (first 32 MiB)" : "")")
            }
        }
    }

    /// Single-thread speed of the parts, on the data of `path`: byte-plane split and merge, and each
    /// plane's zstd frame (4 MiB chunks, as the archive cuts them).
    func profile(path: String, width: Int) throws {
        let file = try MappedFile(path: path)
        let data = UnsafeRawBufferPointer(rebasing: file.bytes[4096..<(4096 + 64 << 20)])
        let chunk = ZstdArchive.chunkSize, n = chunk / width
        let planes = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        let back = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: ZstdCodec.bound(chunk), alignment: 64)
        defer { planes.deallocate(); back.deallocate(); out.deallocate() }
        let codec = try ZstdCodec()
        let chunks = data.count / chunk
        func each(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Double {
            try medianSeconds(repetitions: 3) { for c in 0..<chunks { try body(UnsafeRawBufferPointer(rebasing: data[(c * chunk)..<((c + 1) * chunk)])) } }
        }
        let split = each { BytePlanes.split($0, width: width, into: planes) }
        let merge = each { _ in BytePlanes.merge(UnsafeRawBufferPointer(planes), width: width, into: back) }
        let exponent = try each { c in
            BytePlanes.split(c, width: width, into: planes)
            _ = try codec.compress(UnsafeRawBufferPointer(rebasing: planes[((width - 1) * n)...]), into: out, profile: .exponentPlane)
        } - split
        // The exponent plane's ratio with its own profile and at zstd level 1, on the same chunks.
        var exponentBytes = (tuned: 0, level1: 0)
        for c in 0..<chunks {
            BytePlanes.split(UnsafeRawBufferPointer(rebasing: data[(c * chunk)..<((c + 1) * chunk)]), width: width, into: planes)
            let plane = UnsafeRawBufferPointer(rebasing: planes[((width - 1) * n)...])
            exponentBytes.tuned += try codec.compress(plane, into: out, profile: .exponentPlane)
            exponentBytes.level1 += try codec.compress(plane, into: out, profile: .level(1))
        }
        let planeBytes = Double(chunks * n)
        let mantissa = try each { c in
            BytePlanes.split(c, width: width, into: planes)
            _ = try codec.compress(UnsafeRawBufferPointer(rebasing: planes[0..<((width - 1) * n)]), into: out, profile: .mantissaPlane)
        } - split
        let mb = Double(data.count) / 1e6
        print("  parts, 1 thread, MB/s of weights: split \(fixed(mb / split, 0)), merge \(fixed(mb / merge, 0)), exponent plane \(fixed(mb / exponent, 0)), other planes \(fixed(mb / mantissa, 0))")
        print("  exponent plane ratio: \(fixed(planeBytes / Double(exponentBytes.tuned), 3)) with its profile, \(fixed(planeBytes / Double(exponentBytes.level1), 3)) at zstd level 1")
    }

    /// Two tensors [rows, columns] of N(0, σ_row) weights.
    func makeFile(path: String, dtype: DType) throws {
        var rng = SeededGenerator(seed: 2026)
        let count = dtype == .bf16 ? 2 : 1
        var entries: [TensorEntry] = []
        for t in 0..<count {
            var values = [Float](repeating: 0, count: rows * columns)
            for r in 0..<rows {
                let sigma = 0.02 * Float(exp(Double(rng.gaussianFloats(count: 1)[0]) * 0.15))
                let row = rng.gaussianFloats(count: columns, standardDeviation: sigma)
                values.replaceSubrange((r * columns)..<((r + 1) * columns), with: row)
            }
            entries.append(TensorEntry(name: "layers.\(t).weight", tensor: try DenseTensor(floats: values, shape: Shape([rows, columns]), dtype: dtype)))
        }
        try SafetensorsWriter.write(try Checkpoint(entries: entries), to: path)
    }

    @discardableResult
    func shell(_ arguments: [String], stdout: String? = nil) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let stdout {
            FileManager.default.createFile(atPath: stdout, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: stdout)
        }
        try? process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
