import Foundation
import Testing
import TensorCore
@testable import CheckpointFormats
import TestSupport

@Suite("zstd archives")
struct ZstdArchiveTests {
    // MARK: Byte planes

    @Test("byte planes: the rotation puts the BF16/F32 exponent in the top plane; merge inverts split", arguments: [2, 4])
    func planes(width: Int) {
        // 1.0 in BF16 is 0x3F80: rotated left by one, 0x7F00 (exponent 127 whole in the top byte).
        if width == 2 {
            let one: [UInt8] = [0x80, 0x3F, 0x80, 0xBF]   // 1.0, -1.0
            var out = [UInt8](repeating: 0, count: 4)
            one.withUnsafeBytes { src in out.withUnsafeMutableBytes { BytePlanes.split(src, width: 2, into: $0) } }
            #expect(out == [0x00, 0x01, 0x7F, 0x7F])
        }
        var rng = SeededGenerator(seed: UInt64(width))
        for count in [0, 1, 3, 4, 5, 17, 1000] {
            let bytes = (0..<(count * width)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var planes = [UInt8](repeating: 0, count: bytes.count), back = planes
            bytes.withUnsafeBytes { src in planes.withUnsafeMutableBytes { BytePlanes.split(src, width: width, into: $0) } }
            planes.withUnsafeBytes { src in back.withUnsafeMutableBytes { BytePlanes.merge(src, width: width, into: $0) } }
            #expect(back == bytes, "count \(count)")
        }
    }

    // MARK: Round trips

    /// A checkpoint with every kind of data: F32, F16, BF16 normal weights, I8 codes, a U8 blob,
    /// and a float tensor larger than one chunk.
    static func sample() throws -> Checkpoint {
        var rng = SeededGenerator(seed: 7)
        let big = rng.gaussianFloats(count: (ZstdArchive.chunkSize / 4) + 1234, standardDeviation: 0.02)
        let small = rng.gaussianFloats(count: 4096, standardDeviation: 0.02)
        return try Checkpoint(entries: [
            TensorEntry(name: "big.weight", tensor: try DenseTensor(floats: big, shape: Shape([big.count]))),
            TensorEntry(name: "a.f16", tensor: try DenseTensor(floats: small, shape: Shape([64, 64]), dtype: .f16)),
            TensorEntry(name: "a.bf16", tensor: try DenseTensor(floats: small, shape: Shape([64, 64]), dtype: .bf16)),
            TensorEntry(name: "codes", tensor: try DenseTensor(dtype: .i8, shape: Shape([300]), storage: ByteStorage((0..<300).map { UInt8($0 % 7) }))),
            TensorEntry(name: "blob", tensor: try DenseTensor(dtype: .u8, shape: Shape([5]), storage: ByteStorage([1, 2, 3, 4, 5]))),
        ] + DType.allCases.map { dtype in
            // One tensor of every safetensors dtype, with arbitrary bytes.
            let count = dtype.byteCount(elementCount: 32)!
            return TensorEntry(name: "every.\(dtype.rawValue)", tensor: try DenseTensor(dtype: dtype, shape: Shape([32]),
                                                                                      storage: ByteStorage((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })))
        }, metadata: [MetadataEntry(key: "format", value: .string("pt"))])
    }

    static func compress(_ checkpoint: Checkpoint, gguf: Bool = false, layout: ZstdCheckpoint.Layout, threads: Int = 2,
                         in dir: TemporaryDirectory, name: String = "m") throws -> (inner: String, archive: String) {
        let ext = gguf ? "gguf" : "safetensors"
        let inner = dir.url("\(name).\(ext)"), archive = dir.url("\(name).\(ext).zst")
        if gguf { try GGUFWriter.write(checkpoint, to: inner) } else { try SafetensorsWriter.write(checkpoint, to: inner) }
        try ZstdCheckpoint.write(to: archive, layout: layout, threadCount: threads) { path in
            if gguf { try GGUFWriter.write(checkpoint, to: path) } else { try SafetensorsWriter.write(checkpoint, to: path) }
        }
        return (inner, archive)
    }

    @Test("round trip byte for byte for safetensors and GGUF, grouped and plain; zstd -t accepts the file; thread count does not change it",
          arguments: [(false, ZstdCheckpoint.Layout.grouped), (false, .plain), (true, .grouped), (true, .plain)])
    func roundTrip(gguf: Bool, layout: ZstdCheckpoint.Layout) throws {
        let dir = try TemporaryDirectory(prefix: "zst")
        let sample = try Self.sample()   // GGUF has no U8
        let checkpoint = gguf ? try Checkpoint(entries: sample.entries.filter { $0.name != "blob" && !$0.name.hasPrefix("every.") }, metadata: sample.metadata) : sample
        let (inner, archive) = try Self.compress(checkpoint, gguf: gguf, layout: layout, in: dir)
        try ZstdCheckpoint.extract(path: archive, to: dir.url("back"))
        #expect(try TemporaryDirectory.read(dir.url("back")) == TemporaryDirectory.read(inner))
        let (_, single) = try Self.compress(checkpoint, gguf: gguf, layout: layout, threads: 1, in: dir, name: "one")
        #expect(try TemporaryDirectory.read(single) == TemporaryDirectory.read(archive), "same bytes at 1 and 2 threads")
        let test = try Process.run(["zstd", "-q", "-t", archive])
        #expect(test == 0, "zstd -t")
        if layout == .plain {
            #expect(try Process.run(["zstd", "-q", "-d", "-f", archive, "-o", dir.url("cli")]) == 0)
            #expect(try TemporaryDirectory.read(dir.url("cli")) == TemporaryDirectory.read(inner), "zstd -d alone restores the file")
        }
        let read = try CheckpointReader.open(path: archive)
        #expect(read.entries.map(\.name) == checkpoint.entries.map(\.name))
        for (a, b) in zip(read.entries, checkpoint.entries) {
            guard case .dense(let x) = a.payload, case .dense(let y) = b.payload else { Issue.record("not dense"); continue }
            #expect(x == y, "\(a.name)")
        }
    }

    @Test("grouping pays off on float data and is skipped where it does not")
    func ratio() throws {
        let dir = try TemporaryDirectory(prefix: "zst-ratio")
        var rng = SeededGenerator(seed: 3)
        let values = rng.gaussianFloats(count: 1 << 20, standardDeviation: 0.02)
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "w", tensor: try DenseTensor(floats: values, shape: Shape([1024, 1024]), dtype: .bf16))])
        let (inner, grouped) = try Self.compress(checkpoint, layout: .grouped, in: dir, name: "g")
        let (_, plain) = try Self.compress(checkpoint, layout: .plain, in: dir, name: "p")
        let size = { (p: String) in try TemporaryDirectory.read(p).count }
        let groupedRatio = Double(try size(inner)) / Double(try size(grouped))
        let plainRatio = Double(try size(inner)) / Double(try size(plain))
        #expect(groupedRatio > 1.45, "BF16 N(0, 0.02) grouped: \(groupedRatio)")
        #expect(plainRatio < 1.35, "plain zstd: \(plainRatio)")
    }

    @Test("random access reads one tensor's bytes without the rest")
    func randomAccess() throws {
        let dir = try TemporaryDirectory(prefix: "zst-ra")
        let (inner, archive) = try Self.compress(try Self.sample(), layout: .grouped, in: dir)
        let reader = try ZstdArchiveReader(path: archive)
        let original = try TemporaryDirectory.read(inner)
        #expect(reader.size == original.count && reader.inner == "safetensors")
        let ranges = try ZstdCheckpoint.tensorRanges(reader)
        #expect(ranges.count == 5 + DType.allCases.count)
        for (_, range) in ranges { #expect(try reader.read(range) == Array(original[range])) }
        #expect(try reader.read(10..<(ZstdArchive.chunkSize + 99)) == Array(original[10..<(ZstdArchive.chunkSize + 99)]))
    }

    // MARK: Hostile archives

    static func expectArchiveError(_ bytes: [UInt8], contains text: String, in dir: TemporaryDirectory) throws {
        let path = try dir.write(bytes, to: "bad-\(UUID().uuidString).safetensors.zst")
        do {
            _ = try CheckpointReader.open(path: path)
            Issue.record("no error for \(text)")
        } catch let error as ZstdArchiveError {
            #expect("\(error)".contains(text), "\(error)")
        }
    }

    @Test("truncated, corrupted and inconsistent archives are reported, naming the tensor where one is hit")
    func hostile() throws {
        let dir = try TemporaryDirectory(prefix: "zst-bad")
        let (_, archive) = try Self.compress(try Self.sample(), layout: .grouped, in: dir)
        let good = try TemporaryDirectory.read(archive)
        // Truncated: the seek table is gone, and the frames are cut.
        try Self.expectArchiveError(Array(good.prefix(good.count - 100)), contains: "truncated zstd stream", in: dir)
        // A corrupted byte inside big.weight's frames (the checksum catches it).
        let reader = try ZstdArchiveReader(path: archive)
        let header = try reader.read(0..<8)
        let headerLength = header.withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        var corrupt = good
        corrupt[headerLength + 200] ^= 0x55   // inside the first frames after the header frame
        try Self.expectArchiveError(corrupt, contains: "tensor 'big.weight'", in: dir)
        // Seek table sizes that do not add up.
        var table = good
        let count = table.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: table.count - 9, as: UInt32.self)) }
        let first = table.count - (8 + 8 * count + 9) + 8
        table[first] &-= 1   // (the first frame is the header's, larger than 1 byte)
        try Self.expectArchiveError(table, contains: "seek table covers", in: dir)
        // A frame count too large for the file.
        var huge = good
        let at = huge.count - 9
        huge.withUnsafeMutableBytes { $0.storeBytes(of: UInt32.max, toByteOffset: at, as: UInt32.self) }
        try Self.expectArchiveError(huge, contains: "does not fit the file", in: dir)
        // A plain zstd stream that is not a checkpoint.
        let notCheckpoint = try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try ZstdFrame.compress($0) }
        do {
            _ = try CheckpointReader.open(path: try dir.write(notCheckpoint, to: "x.zst"))
            Issue.record("no error")
        } catch {
            #expect(error is InputDataError, "\(error)")
        }
    }

    @Test("a .zst made by the zstd tool reads like the file it holds")
    func plainStream() throws {
        let dir = try TemporaryDirectory(prefix: "zst-cli")
        let inner = dir.url("m.safetensors")
        try SafetensorsWriter.write(try Self.sample(), to: inner)
        #expect(try Process.run(["zstd", "-q", "-19", inner, "-o", inner + ".zst"]) == 0)
        let read = try CheckpointReader.open(path: inner + ".zst")
        #expect(read.entries.map(\.name) == (try Self.sample()).entries.map(\.name))
    }
}

extension Process {
    /// Runs a command from PATH and returns its exit status.
    static func run(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
