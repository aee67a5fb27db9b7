import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Quantized tensors in GGUF (`GGUFQuantizedLayout`): every scheme written by `GGUFWriter` and read
/// by `CheckpointReader` comes back equal, stored as the documented parts; the writer refuses what
/// it cannot store faithfully.
@Suite("GGUF layout for quantized tensors")
struct GGUFQuantizedLayoutTests {
    typealias Q = QuantizedTensor

    /// Scales per tensor, computed here independently of the layout.
    static func groupCount(_ shape: Shape, _ granularity: Q.Granularity) -> Int {
        switch granularity {
        case .tensor: 1
        case .channel: shape.rowCount
        case .group(let n): shape.rowCount * ((shape.columnCount + n - 1) / n)
        }
    }

    /// A random quantized tensor: codes below 2^bits, FP16-exact scales unless `halfScales` is false,
    /// random zero points when asymmetric; with `nested`, scales double-quantized in blocks of 3.
    static func make(_ scheme: Q.Scheme = .integer, bits: Int, symmetric: Bool = true, _ granularity: Q.Granularity,
                     _ dims: [Int], seed: UInt64, halfScales: Bool = true, nested: Bool = false) -> Q {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape(dims)
        let codes = (0..<shape.elementCount).map { _ in UInt8(truncatingIfNeeded: rng.next() % UInt64(1 << bits)) }
        let groups = groupCount(shape, granularity)
        var scales = (0..<groups).map { _ -> Float in
            let s = Float(rng.nextUnitDouble()) * 0.1 + 0.001
            return halfScales ? HalfPrecision.float(halfBits: HalfPrecision.halfBits(s)) : s
        }
        let zeros: [Int32] = (0..<groups).map { _ in
            guard scheme == .integer else { return 0 }
            return symmetric ? Int32(1 << (bits - 1)) : Int32(rng.next() % UInt64(1 << bits))
        }
        var nestedScales: Q.NestedScales?
        if nested {
            let map = (0..<256).map { _ in Float(rng.nextUnitDouble()) * 2 - 1 }.sorted()
            let scaleCodes = (0..<groups).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let second = (0..<((groups + 2) / 3)).map { _ in Float(rng.nextUnitDouble()) * 0.01 }
            nestedScales = Q.NestedScales(codes: scaleCodes, secondLevelScales: second, offset: 0.03125, blockSize: 3, map: map)
            scales = nestedScales!.scales()
        }
        return Q(shape: shape, scheme: scheme, bits: bits, symmetric: symmetric, granularity: granularity,
                 codes: codes, scales: scales, zeroPoints: zeros, nestedScales: nestedScales)
    }

    static let nf4Values: [Float] = [-1, -0.6961928, -0.52507305, -0.3949175, -0.28444138, -0.18477343, -0.09105004, 0,
                                     0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983, 0.562617, 0.72295684, 1]

    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        let q: QuantizedTensor
        var testDescription: String { label }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        var seed: UInt64 = 1
        func add(_ label: String, _ q: Q) { out.append(Case(label: label, q: q)); seed += 1 }
        for bits in 2...8 {
            for symmetric in [true, false] {
                for granularity in [Q.Granularity.tensor, .channel, .group(8)] {
                    add("int\(bits) \(symmetric ? "sym" : "asym") \(granularity)", make(bits: bits, symmetric: symmetric, granularity, [6, 40], seed: seed))
                }
            }
        }
        add("int3 asym group:16, rows of 37 (odd, partial groups)", make(bits: 3, symmetric: false, .group(16), [7, 37], seed: seed))
        add("int4 sym channel, F32 scales", make(bits: 4, .channel, [5, 12], seed: seed, halfScales: false))
        add("int2 asym channel, rank 3", make(bits: 2, symmetric: false, .channel, [3, 4, 5], seed: seed))
        add("int5 sym channel, 1-D", make(bits: 5, .channel, [9], seed: seed))
        add("int8 asym tensor, scalar", make(bits: 8, symmetric: false, .tensor, [], seed: seed))
        add("int4 sym channel, empty", make(bits: 4, .channel, [0, 8], seed: seed))
        for kind in FP8Format.Kind.allCases {
            for granularity in [Q.Granularity.tensor, .channel] {
                add("fp8_\(kind) \(granularity)", make(.float8(kind), bits: 8, granularity, [6, 33], seed: seed, halfScales: false))
            }
        }
        add("fp8_e4m3 channel, empty rows (one scale, as FP8Quantizer gives)",
            Q(shape: Shape([4, 0]), scheme: .float8(.e4m3), bits: 8, symmetric: true, granularity: .channel, codes: [], scales: [1], zeroPoints: [0]))
        add("nf4 group:64", make(.codebook(nf4Values), bits: 4, .group(64), [4, 128], seed: seed, halfScales: false))
        add("nf4 group:16, double-quantized scales", make(.codebook(nf4Values), bits: 4, .group(16), [4, 128], seed: seed, nested: true))
        add("3-bit codebook channel", make(.codebook([-1, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]), bits: 3, .channel, [3, 10], seed: seed, halfScales: false))
        return out
    }()

    /// The parts the layout documents for `q`, with their dtypes.
    static func expectedParts(_ name: String, _ q: Q) -> [(String, String)] {
        var parts = [(name, "I8")]
        if q.nestedScales != nil {
            parts += [(name + ".scale_codes", "I8"), (name + ".scale_scales", "F32"), (name + ".scale_map", "F32")]
        } else {
            let half = q.scheme == .integer && q.scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 }
            parts.append((name + ".scale", half ? "F16" : "F32"))
        }
        if q.scheme == .integer && !q.symmetric { parts.append((name + ".zero_point", q.zeroPoints.contains { $0 > 127 } ? "I16" : "I8")) }
        if case .codebook = q.scheme { parts.append((name + ".codebook", "F32")) }
        return parts
    }

    @Test("write → read gives back the same QuantizedTensor, stored as the documented parts", arguments: cases)
    func roundTrip(_ c: Case) throws {
        let dir = try TemporaryDirectory(prefix: "gguf-quantized")
        let name = "blk.0.ffn_up.weight"
        let norm = try DenseTensor(floats: [1, 2, 3], shape: Shape([3]))
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "blk.0.attn_norm.weight", tensor: norm),
                                                  TensorEntry(name: name, payload: .quantized(c.q)),
                                                  TensorEntry(name: "output_norm.weight", tensor: norm)],
                                        metadata: [MetadataEntry(key: "general.architecture", value: .gguf(.string("llama")))])
        let path = dir.url("q.gguf")
        try GGUFWriter.write(checkpoint, to: path)

        let raw = try GGUFReader.open(path: path)
        let parts = Self.expectedParts(name, c.q)
        #expect(raw.entries.map(\.name) == ["blk.0.attn_norm.weight"] + parts.map(\.0) + ["output_norm.weight"])
        #expect(raw.entries.dropFirst().prefix(parts.count).map(\.encodingName) == parts.map(\.1))
        let storedBytes = raw.entries.dropFirst().prefix(parts.count).reduce(0) { $0 + $1.byteCount }
        #expect(GGUFQuantizedLayout.storedByteCount(c.q) == storedBytes)
        #expect(raw.entries[1].byteCount(in: .gguf) == raw.entries[1].byteCount)
        #expect(raw.metadataValue("modelpress.quantization.\(name).shape") == .gguf(.array(elementType: .int64, values: c.q.shape.dimensions.map { .int64(Int64($0)) })))

        let back = try CheckpointReader.open(path: path)
        #expect(back.entries.map(\.name) == checkpoint.entries.map(\.name))
        #expect(back.metadata == checkpoint.metadata)
        guard case .quantized(let q)? = back[name]?.payload else { Issue.record("not quantized after reading"); return }
        #expect(q == c.q)
        #expect(q.dequantized().map(\.bitPattern) == c.q.dequantized().map(\.bitPattern))
        #expect(back[name]?.byteCount(in: .gguf) == storedBytes)

        // GGUF → GGUF through the reader and writer is byte for byte the same file.
        let again = dir.url("again.gguf")
        try GGUFWriter.write(back, to: again)
        #expect(try TemporaryDirectory.read(again) == TemporaryDirectory.read(path))
    }

    @Test("4-bit codes 1, 2, 3 pack low nibble first into 0x21 0x03; 2-bit codes four to a byte")
    func packing() throws {
        let four = Q(shape: Shape([1, 3]), bits: 4, symmetric: true, granularity: .tensor, codes: [1, 2, 3], scales: [1], zeroPoints: [8])
        let two = Q(shape: Shape([1, 5]), bits: 2, symmetric: true, granularity: .tensor, codes: [1, 2, 3, 0, 3], scales: [1], zeroPoints: [2])
        let parts4 = try GGUFQuantizedLayout.encode(name: "a", four), parts2 = try GGUFQuantizedLayout.encode(name: "b", two)
        #expect(parts4[0].tensor.storage.array == [0x21, 0x03] && parts4[0].tensor.shape == Shape([1, 2]))
        #expect(parts2[0].tensor.storage.array == [0b00_11_10_01, 0b11] && parts2[0].tensor.shape == Shape([1, 2]))
        #expect(GGUFQuantizedLayout.codesPerByte(bits: 3) == 2 && GGUFQuantizedLayout.codesPerByte(bits: 5) == 1)
    }

    @Test("a real tensor named like a part the layout does not use is left alone")
    func unusedPartNames() throws {
        let dir = try TemporaryDirectory(prefix: "gguf-quantized-names")
        let q = Self.make(bits: 4, .channel, [4, 8], seed: 9)   // symmetric: no zero_point part
        let real = try DenseTensor(floats: [1, 2, 3, 4], shape: Shape([4]))
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "w", payload: .quantized(q)), TensorEntry(name: "w.zero_point", tensor: real),
                                                  TensorEntry(name: "w.codebook", tensor: real)])
        let path = dir.url("q.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let back = try CheckpointReader.open(path: path)
        #expect(back.entries.map(\.name) == ["w", "w.zero_point", "w.codebook"])
        #expect(back["w.zero_point"].map { if case .dense(let t) = $0.payload { t == real } else { false } } == true)
    }

    @Test("the writer refuses names it cannot store and tensors the layout would not give back exactly")
    func writerRefusals() throws {
        let dir = try TemporaryDirectory(prefix: "gguf-quantized-refuse")
        let q = Self.make(bits: 4, symmetric: false, .channel, [4, 8], seed: 3)
        let real = try DenseTensor(floats: [1, 2, 3, 4], shape: Shape([4]))
        func refused(_ entries: [TensorEntry], _ expected: GGUFQuantizedLayoutError, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let path = dir.url("refused.gguf")
            #expect(throws: expected, sourceLocation: sourceLocation) { try GGUFWriter.write(try Checkpoint(entries: entries), to: path) }
            #expect(!FileManager.default.fileExists(atPath: path), sourceLocation: sourceLocation)
        }
        try refused([TensorEntry(name: "w", payload: .quantized(q)), TensorEntry(name: "w.zero_point", tensor: real)],
                    .unstorable(tensor: "w", reason: "its part 'w.zero_point' would take the name of another tensor"))
        let long = String(repeating: "x", count: 55)
        try refused([TensorEntry(name: long, payload: .quantized(q))],
                    .unstorable(tensor: long, reason: "the name of its part '\(long).zero_point' is longer than 63 bytes (GGUF limit)"))
        let badZero = Q(shape: Shape([1, 2]), bits: 4, symmetric: true, granularity: .tensor, codes: [1, 2], scales: [1], zeroPoints: [7])
        try refused([TensorEntry(name: "z", payload: .quantized(badZero))], .unstorable(tensor: "z", reason: "symmetric scheme with zero point 7 (must be 8)"))
        let wide = Q(shape: Shape([1, 2]), bits: 3, symmetric: true, granularity: .tensor, codes: [1, 9], scales: [1], zeroPoints: [4])
        try refused([TensorEntry(name: "c", payload: .quantized(wide))], .unstorable(tensor: "c", reason: "code 9 does not fit in 3 bits"))
        let nested = Self.make(.codebook(Self.nf4Values), bits: 4, .group(16), [2, 32], seed: 4, nested: true)
        let inconsistent = Q(shape: nested.shape, scheme: nested.scheme, bits: 4, symmetric: true, granularity: nested.granularity,
                             codes: nested.codes, scales: nested.scales.map { $0 * 2 }, zeroPoints: nested.zeroPoints, nestedScales: nested.nestedScales)
        try refused([TensorEntry(name: "n", payload: .quantized(inconsistent))],
                    .unstorable(tensor: "n", reason: "its nested scales do not give back its scales bit for bit"))
    }
}
