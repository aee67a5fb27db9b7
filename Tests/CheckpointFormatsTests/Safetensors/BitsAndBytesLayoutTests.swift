import Foundation
import Testing
import TensorCore
@testable import CheckpointFormats

@Suite("bitsandbytes NF4 layout")
struct BitsAndBytesLayoutTests {
    static let nf4: [Float] = [-1.0, -0.6961928, -0.52507305, -0.3949175, -0.28444138, -0.18477343, -0.09105004, 0,
                               0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983, 0.562617, 0.72295684, 1.0]

    /// A random NF4 tensor [rows, 128] in blocks of 64, with or without nested scales.
    static func tensor(rows: Int = 6, nested: Bool, seed: UInt64 = 7) -> QuantizedTensor {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape([rows, 128])
        let codes = (0..<shape.elementCount).map { _ in UInt8(rng.next() % 16) }
        let blocks = shape.elementCount / 64
        if nested {
            let map = (0..<256).map { Float($0 - 127) / 128 }
            let n = QuantizedTensor.NestedScales(codes: (0..<blocks).map { _ in UInt8(rng.next() % 256) },
                                                 secondLevelScales: [0.25], offset: 0.5, blockSize: 256, map: map)
            return QuantizedTensor(shape: shape, scheme: .codebook(nf4), bits: 4, symmetric: true, granularity: .group(64),
                                   codes: codes, scales: n.scales(), zeroPoints: [Int32](repeating: 0, count: blocks), nestedScales: n)
        }
        let scales = (0..<blocks).map { _ in Float(rng.nextUnitDouble()) + 0.01 }
        return QuantizedTensor(shape: shape, scheme: .codebook(nf4), bits: 4, symmetric: true, granularity: .group(64),
                               codes: codes, scales: scales, zeroPoints: [Int32](repeating: 0, count: blocks))
    }

    static func expanded(_ q: QuantizedTensor, name: String = "m.weight") throws -> Checkpoint {
        try CompressedTensorsLayout.expand(try Checkpoint(entries: [TensorEntry(name: name, payload: .quantized(q))]))
    }

    @Test("write → read gives back the same tensor, with bitsandbytes' part names, and the exact stored size", arguments: [false, true])
    func roundTrip(nested: Bool) throws {
        let q = Self.tensor(nested: nested)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "model.layers.0.mlp.up_proj.weight", payload: .quantized(q)),
                                                  TensorEntry(name: "model.norm.weight", tensor: norm)])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bnb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("q.safetensors").path
        try SafetensorsWriter.write(checkpoint, to: path)
        let raw = try SafetensorsReader.open(path: path)
        let w = "model.layers.0.mlp.up_proj.weight"
        let expected = nested
            ? [w, w + ".absmax", w + ".quant_map", w + ".nested_absmax", w + ".nested_quant_map", w + ".quant_state.bitsandbytes__nf4", "model.norm.weight"]
            : [w, w + ".absmax", w + ".quant_map", w + ".quant_state.bitsandbytes__nf4", "model.norm.weight"]
        #expect(raw.entries.map(\.name) == expected)
        guard case .dense(let packed) = raw.entries[0].payload else { Issue.record("packed codes not dense"); return }
        #expect(packed.dtype == .u8 && packed.shape == Shape([384, 1]))
        #expect(packed.storage.array[0] == q.codes[0] << 4 | q.codes[1])   // even element in the high nibble
        let back = try CheckpointReader.open(path: path)
        #expect(back.entries.map(\.name) == [w, "model.norm.weight"])
        guard case .quantized(let q2) = back.entries[0].payload else { Issue.record("not quantized after reading"); return }
        #expect(q2 == q)
        let written = try BitsAndBytesLayout.encode(name: w, q).reduce(0) { $0 + $1.tensor.byteCount }
        #expect(CompressedTensorsLayout.storedByteCount(q) == written)
    }

    @Test("a file without our metadata record (as bitsandbytes writes it) is read by its quant_state part")
    func foreignFile() throws {
        let q = Self.tensor(nested: true)
        var expanded = try Self.expanded(q)
        expanded.metadata = []
        let back = try CompressedTensorsLayout.collapse(expanded, file: "f")
        guard case .quantized(let q2)? = back["m.weight"]?.payload else { Issue.record("not collapsed"); return }
        #expect(q2 == q)
        #expect(back.count == 1)
    }

    // MARK: One hostile case per error

    /// `q` expanded, with part `suffix` of `m.weight` replaced (nil removes it), then collapsed.
    static func collapse(_ q: QuantizedTensor, replacing suffix: String, with tensor: DenseTensor?) throws -> Checkpoint {
        let expanded = try expanded(q)
        var entries = expanded.entries.filter { $0.name != "m.weight" + suffix }
        if let tensor { entries.append(TensorEntry(name: "m.weight" + suffix, tensor: tensor)) }
        return try CompressedTensorsLayout.collapse(try Checkpoint(entries: entries, metadata: expanded.metadata), file: "f")
    }

    static func state(_ json: String) throws -> DenseTensor {
        try DenseTensor(dtype: .u8, shape: Shape([json.utf8.count]), storage: ByteStorage(Array(json.utf8)))
    }

    static func expectMalformed(_ reason: String, nested: Bool = false, suffix: String, tensor: DenseTensor?) {
        #expect(throws: CompressedTensorsError.malformed(tensor: "m.weight", reason: "f: " + reason)) {
            _ = try collapse(Self.tensor(nested: nested), replacing: suffix, with: tensor)
        }
    }

    static let stateSuffix = ".quant_state.bitsandbytes__nf4"

    @Test("missing quant_state") func missingState() {
        Self.expectMalformed("missing part 'm.weight.quant_state.bitsandbytes__nf4'", suffix: Self.stateSuffix, tensor: nil)
    }
    @Test("quant_state not bytes") func stateDType() throws {
        Self.expectMalformed("quant_state must be U8 bytes", suffix: Self.stateSuffix, tensor: try DenseTensor(floats: [1], shape: Shape([1])))
    }
    @Test("quant_state not JSON") func stateNotJSON() throws {
        #expect(throws: CompressedTensorsError.self) { _ = try Self.collapse(Self.tensor(nested: false), replacing: Self.stateSuffix, with: try Self.state("{nope")) }
    }
    @Test("quant_type not nf4") func quantType() throws {
        Self.expectMalformed("quant_state.quant_type must be \"nf4\"", suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"fp4","blocksize":64,"shape":[6,128]}"#))
    }
    @Test("bad blocksize") func blockSize() throws {
        Self.expectMalformed("quant_state.blocksize must be a positive even integer", suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"nf4","blocksize":63,"shape":[6,128]}"#))
    }
    @Test("bad shape") func shape() throws {
        Self.expectMalformed("quant_state.shape is not a valid shape", suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"nf4","blocksize":64,"shape":[6,-128]}"#))
        Self.expectMalformed("quant_state.shape is not a valid shape", suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"nf4","blocksize":64,"shape":[4294967296,4294967296,4294967296]}"#))
    }
    @Test("rows not a multiple of the block") func rows() throws {
        Self.expectMalformed("row length 96 is not a multiple of the block size 64", suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"nf4","blocksize":64,"shape":[8,96]}"#))
    }
    @Test("packed codes of the wrong size") func packedSize() throws {
        Self.expectMalformed("packed codes must be U8 with 384 bytes, found U8 with 3", suffix: "",
                             tensor: try DenseTensor(dtype: .u8, shape: Shape([3]), storage: ByteStorage([1, 2, 3])))
    }
    @Test("quant_map not 16 floats") func quantMap() throws {
        Self.expectMalformed("quant_map must hold 16 finite floats", suffix: ".quant_map", tensor: try DenseTensor(floats: [1, 2], shape: Shape([2])))
        Self.expectMalformed("quant_map must hold 16 finite floats", suffix: ".quant_map",
                             tensor: try DenseTensor(floats: [Float](repeating: .nan, count: 16), shape: Shape([16])))
    }
    @Test("missing absmax") func missingAbsmax() {
        Self.expectMalformed("missing part 'm.weight.absmax'", suffix: ".absmax", tensor: nil)
    }
    @Test("absmax count") func absmaxCount() throws {
        Self.expectMalformed("absmax has 2 values, expected 12", suffix: ".absmax", tensor: try DenseTensor(floats: [1, 2], shape: Shape([2])))
    }
    @Test("absmax NaN") func absmaxNaN() throws {
        Self.expectMalformed("absmax holds NaN or Inf", suffix: ".absmax", tensor: try DenseTensor(floats: [Float](repeating: .infinity, count: 12), shape: Shape([12])))
    }
    @Test("nested fields malformed") func nestedFields() throws {
        Self.expectMalformed("quant_state has malformed nested_blocksize or nested_offset", nested: true, suffix: Self.stateSuffix,
                             tensor: try Self.state(#"{"quant_type":"nf4","blocksize":64,"shape":[6,128],"nested_blocksize":256,"nested_offset":"x"}"#))
    }
    @Test("double-quantized absmax not codes") func nestedAbsmaxDType() throws {
        Self.expectMalformed("double-quantized absmax must be U8 codes", nested: true, suffix: ".absmax",
                             tensor: try DenseTensor(floats: [Float](repeating: 1, count: 12), shape: Shape([12])))
    }
    @Test("nested_absmax count") func nestedAbsmax() throws {
        Self.expectMalformed("nested_absmax must hold 1 finite floats", nested: true, suffix: ".nested_absmax",
                             tensor: try DenseTensor(floats: [1, 2], shape: Shape([2])))
    }
    @Test("nested_quant_map count") func nestedMap() throws {
        Self.expectMalformed("nested_quant_map must hold 256 finite floats", nested: true, suffix: ".nested_quant_map",
                             tensor: try DenseTensor(floats: [1, 2], shape: Shape([2])))
    }
}
