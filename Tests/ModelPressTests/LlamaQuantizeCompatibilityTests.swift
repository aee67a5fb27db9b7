import Foundation
import Testing
import TensorCore
import CheckpointFormats
import ModelPress
import TestSupport

/// `modelpress convert --type ...` on a GGUF input must write the very bytes llama.cpp's
/// llama-quantize writes: same metadata (order, types, the `quantize.imatrix.*` keys), same tensor
/// order, types and padding, same block bytes. The expected files in `Tests/Fixtures/llama-quantize`
/// were written by llama.cpp itself (`make_fixtures.py`, run by hand with llama-cpp-python); nothing
/// here needs the peer.
@Suite("llama-quantize compatibility")
struct LlamaQuantizeCompatibilityTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/llama-quantize").path
    static let input = folder + "/model-f16.gguf"

    /// `quantize.imatrix.file` records the path string the tool was given. The fixtures were made with
    /// the imatrix at this fixed absolute path (see make_fixtures.py), so the test puts it there too.
    static let imatrixPath = "/tmp/modelpress-llama-quantize-fixture/imatrix.gguf"

    struct Case: Sendable, CustomTestStringConvertible {
        let file: String
        let type: String
        var imatrix = false
        /// `.pure` K-quant types need the shape fallback for the 64-element rows (llama-quantize always applies it).
        var allowFallback = false
        var testDescription: String { file }
    }

    static let cases: [Case] = [
        Case(file: "Q4_K_M.gguf", type: "Q4_K_M"),
        Case(file: "Q4_K_M-imatrix.gguf", type: "Q4_K_M", imatrix: true),
        Case(file: "Q3_K_M.gguf", type: "Q3_K_M"),
        Case(file: "Q3_K_M-imatrix.gguf", type: "Q3_K_M", imatrix: true),
        Case(file: "Q5_K_M.gguf", type: "Q5_K_M"),
        Case(file: "Q6_K-pure.gguf", type: "Q6_K", allowFallback: true),
        Case(file: "Q8_0-pure.gguf", type: "Q8_0"),
        Case(file: "Q2_K-pure-imatrix.gguf", type: "Q2_K", imatrix: true, allowFallback: true),
    ]

    @Test("CheckpointConversion writes llama-quantize's bytes", arguments: cases)
    func sameBytesAsLlamaQuantize(_ c: Case) throws {
        let target = try #require(QuantizationTarget(c.type))
        let directory = try TemporaryDirectory(prefix: "llama-quantize")
        let output = directory.url(c.file)
        let options = CheckpointConversion.Options(quantization: target, importancePath: c.imatrix ? try Self.stageImatrix() : nil,
                                                   allowFallback: c.allowFallback, threadCount: 2)
        var conversion = try CheckpointConversion(inputPath: Self.input, outputPath: output, options: options)
        try conversion.run()
        let expectedPath = Self.folder + "/" + c.file
        if let difference = try Self.firstDifference(expected: expectedPath, actual: output) {
            Issue.record("\(c.file): ModelPress differs from llama-quantize: \(difference)")
        }
    }

    @Test("the fixtures exercise what they claim: the imatrix changes blk.* tensors only; fallback types appear")
    func fixturesAreMeaningful() throws {
        let plain = try GGUFReader.header(of: MappedFile(path: Self.folder + "/Q4_K_M.gguf"))
        let weighted = try GGUFReader.header(of: MappedFile(path: Self.folder + "/Q4_K_M-imatrix.gguf"))
        let plainFile = try MappedFile(path: Self.folder + "/Q4_K_M.gguf")
        let weightedFile = try MappedFile(path: Self.folder + "/Q4_K_M-imatrix.gguf")
        #expect(plain.tensors.map(\.name) == weighted.tensors.map(\.name))
        var changed: [String] = []
        for (a, b) in zip(plain.tensors, weighted.tensors) where a.type?.isBlockQuantized == true && a.type != .q8_0 {
            #expect(a.byteCount == b.byteCount)
            if memcmp(plainFile.bytes.baseAddress! + plain.dataOffset + a.offset,
                      weightedFile.bytes.baseAddress! + weighted.dataOffset + b.offset, a.byteCount) != 0 {
                changed.append(a.name)
            }
        }
        #expect(changed.allSatisfy { $0.hasPrefix("blk.") })
        // 3 layers x 7 matrices, less blk.2.ffn_down (Q8_0, which ignores the imatrix)
        #expect(changed.count == 20, "\(changed)")
        let types = Set(plain.tensors.compactMap(\.type))
        #expect(types == [.f32, .q4_K, .q5_0, .q6_K, .q8_0])
        #expect(weighted.metadata.map(\.key).suffix(4) == ["quantize.imatrix.file", "quantize.imatrix.dataset",
                                                           "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"])
        #expect(weighted.metadata.first { $0.key == "quantize.imatrix.file" }?.value == .string(Self.imatrixPath))
    }

    @Test("a mismatch names the first differing metadata key or tensor")
    func mismatchReport() throws {
        let directory = try TemporaryDirectory(prefix: "llama-quantize-report")
        let metadata = try #require(try Self.firstDifference(expected: Self.folder + "/Q4_K_M-imatrix.gguf",
                                                             actual: Self.folder + "/Q4_K_M.gguf"))
        #expect(metadata.hasPrefix("metadata entry #29: llama-quantize has quantize.imatrix.file = \(Self.imatrixPath) (string), ModelPress has nothing"), "\(metadata)")
        var bytes = try TemporaryDirectory.read(Self.folder + "/Q4_K_M.gguf")
        let header = try GGUFReader.header(of: MappedFile(path: Self.folder + "/Q4_K_M.gguf"))
        let tensor = try #require(header.tensors.first { $0.name == "blk.1.attn_q.weight" })
        bytes[header.dataOffset + tensor.offset + 1000] ^= 0x10
        let changed = try directory.write(bytes, to: "changed.gguf")
        let report = try #require(try Self.firstDifference(expected: Self.folder + "/Q4_K_M.gguf", actual: changed))
        #expect(report.hasPrefix("tensor 'blk.1.attn_q.weight' (Q4_K, ne [256, 64]): first differing byte at offset 1000 "), "\(report)")
        #expect(report.hasSuffix("llama-quantize 0x8A, ModelPress 0x9A, row 6, block 0 in that row (144-byte blocks); 1 of 64 blocks differ"), "\(report)")
    }

    /// Copies the committed imatrix to `imatrixPath` (atomically: parallel tests may do it at once).
    static func stageImatrix() throws -> String {
        let source = try TemporaryDirectory.read(folder + "/imatrix.gguf")
        if let current = try? TemporaryDirectory.read(imatrixPath), current == source { return imatrixPath }
        let folder = (imatrixPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let staging = folder + "/.imatrix-\(UUID().uuidString).gguf"
        try Data(source).write(to: URL(fileURLWithPath: staging))
        guard rename(staging, imatrixPath) == 0 else {
            unlink(staging)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: imatrixPath])
        }
        return imatrixPath
    }

    /// nil when the files are equal; otherwise the first difference, as precisely as the two GGUF
    /// headers allow: a metadata key, a tensor info, the first tensor whose bytes differ (name, type,
    /// offset in the tensor and in the file, block index), or a raw byte offset.
    static func firstDifference(expected: String, actual: String) throws -> String? {
        let e = try MappedFile(path: expected), a = try MappedFile(path: actual)
        if e.byteCount == a.byteCount && memcmp(e.bytes.baseAddress!, a.bytes.baseAddress!, e.byteCount) == 0 { return nil }
        let he: GGUFHeader, ha: GGUFHeader
        do {
            he = try GGUFReader.header(of: e)
            ha = try GGUFReader.header(of: a)
        } catch {
            return "a header does not parse (\(error)); sizes \(e.byteCount) vs \(a.byteCount), first differing byte at \(firstDifferingByte(e.bytes, a.bytes))"
        }
        for i in 0..<max(he.metadata.count, ha.metadata.count) {
            let x = i < he.metadata.count ? he.metadata[i] : nil, y = i < ha.metadata.count ? ha.metadata[i] : nil
            if x?.key != y?.key || x?.value != y?.value {
                return "metadata entry #\(i): llama-quantize has \(describe(x)), ModelPress has \(describe(y))"
            }
        }
        for i in 0..<max(he.tensors.count, ha.tensors.count) {
            guard i < he.tensors.count, i < ha.tensors.count else {
                return "tensor count: llama-quantize \(he.tensors.count), ModelPress \(ha.tensors.count)"
            }
            let x = he.tensors[i], y = ha.tensors[i]
            if x != y {
                return "tensor info #\(i): llama-quantize \(describe(x)), ModelPress \(describe(y))"
            }
        }
        if he.dataOffset != ha.dataOffset {
            return "data section offset: llama-quantize \(he.dataOffset), ModelPress \(ha.dataOffset)"
        }
        for t in he.tensors {
            let start = he.dataOffset + t.offset
            let x = UnsafeRawBufferPointer(rebasing: e.bytes[start..<(start + t.byteCount)])
            let y = UnsafeRawBufferPointer(rebasing: a.bytes[start..<(start + t.byteCount)])
            let at = firstDifferingByte(x, y)
            guard at < t.byteCount else { continue }
            var block = ""
            if let type = t.type, type.isBlockQuantized, let bytes = type.rowByteCount(elements: type.blockSize) {
                let rowBytes = type.rowByteCount(elements: t.dimensions[0]) ?? bytes
                let differing = (0..<(t.byteCount / bytes)).filter {
                    !x[($0 * bytes)..<(($0 + 1) * bytes)].elementsEqual(y[($0 * bytes)..<(($0 + 1) * bytes)])
                }.count
                block = ", row \(at / rowBytes), block \(at % rowBytes / bytes) in that row (\(bytes)-byte blocks); \(differing) of \(t.byteCount / bytes) blocks differ"
            }
            return "tensor '\(t.name)' (\(t.type?.name ?? "type \(t.typeID)"), ne \(t.dimensions)): first differing byte at offset \(at) "
                + "in the tensor (file offset \(start + at)): llama-quantize 0x\(hex(x[at])), ModelPress 0x\(hex(y[at]))\(block)"
        }
        return "headers and tensor data agree, but the files differ at byte \(firstDifferingByte(e.bytes, a.bytes)) "
            + "(sizes \(e.byteCount) vs \(a.byteCount); padding?)"
    }

    static func firstDifferingByte(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int {
        let n = min(x.count, y.count)
        var i = 0
        while i < n && x[i] == y[i] { i += 1 }
        return i
    }

    static func hex(_ b: UInt8) -> String { String(format: "%02X", b) }

    static func describe(_ kv: (key: String, value: GGUFValue)?) -> String {
        guard let kv else { return "nothing" }
        return "\(kv.key) = \(kv.value) (\(kv.value.type.name))"
    }

    static func describe(_ t: GGUFHeader.TensorInfo) -> String {
        "\(t.name) \(t.type?.name ?? "type \(t.typeID)") ne \(t.dimensions) at \(t.offset) (\(t.byteCount) bytes)"
    }
}
