import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile quantized-tensor records in GGUF: one case per check of `GGUFQuantizedLayout.collapse`,
/// each with the exact error, in memory and from a file (where the error names that file), plus a
/// seeded mutation run that must only ever succeed or throw.
@Suite("GGUF layout for quantized tensors: hostile input")
struct GGUFQuantizedHostileTests {
    typealias Q = QuantizedTensor
    typealias Make = GGUFQuantizedLayoutTests

    /// `w`: int3 asymmetric group:8 [4, 16] (parts w, w.scale F16 [4, 2], w.zero_point I8 [4, 2]);
    /// `n`: NF4 group:16 [2, 64] with scales double-quantized in blocks of 3 (8 scales, 3 blocks);
    /// `c`: a 3-bit codebook, per channel [3, 10].
    static func base() throws -> Checkpoint {
        let w = Make.make(bits: 3, symmetric: false, .group(8), [4, 16], seed: 11)
        let n = Make.make(.codebook(Make.nf4Values), bits: 4, .group(16), [2, 64], seed: 12, nested: true)
        let c = Make.make(.codebook([-1, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]), bits: 3, .channel, [3, 10], seed: 13, halfScales: false)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        return try GGUFQuantizedLayout.expand(Checkpoint(entries: [TensorEntry(name: "norm", tensor: norm), TensorEntry(name: "w", payload: .quantized(w)),
                                                                   TensorEntry(name: "n", payload: .quantized(n)), TensorEntry(name: "c", payload: .quantized(c))],
                                                         metadata: [MetadataEntry(key: "general.architecture", value: .gguf(.string("llama")))]))
    }

    static func key(_ name: String, _ field: String) -> String { "modelpress.quantization.\(name).\(field)" }

    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case unknownField, keyWithoutField, missingKey, mistypedBits, bitsOutOfRange, unknownScheme, symmetricNotBool
        case unknownGranularity, granularityNotString, shapeNotArray, shapeNegative, shapeOfStrings, shapeOverflow
        case missingCodes, codesWrongDType, codesWrongShape, codesAreGGML, codeOutOfRange
        case missingScale, scaleWrongDType, scaleWrongCount, scaleWrongShape
        case missingZeroPoint, zeroPointWrongDType, zeroPointWrongShape
        case missingCodebook, codebookTooLarge, codebookNotVector
        case nestedBlockZero, nestedOffsetMissing, nestedOffsetWrongType, missingScaleCodes, scaleCodesWrongDType
        case secondLevelWrongCount, mapWrongCount, partClaimedTwice

        var testDescription: String { rawValue }

        /// The broken checkpoint, the tensor the error names and its reason.
        func apply(to c: Checkpoint) throws -> (checkpoint: Checkpoint, tensor: String, reason: String) {
            func set(_ key: String, _ value: GGUFValue?) throws -> Checkpoint {
                var metadata = c.metadata.filter { $0.key != key }
                if let value {
                    if let i = c.metadata.firstIndex(where: { $0.key == key }) { metadata.insert(MetadataEntry(key: key, value: .gguf(value)), at: i) }
                    else { metadata.append(MetadataEntry(key: key, value: .gguf(value))) }
                }
                return try Checkpoint(entries: c.entries, metadata: metadata)
            }
            func replace(_ name: String, _ payload: TensorPayload?) throws -> Checkpoint {
                let entries = c.entries.compactMap { e in e.name == name ? payload.map { TensorEntry(name: name, payload: $0) } : e }
                return try Checkpoint(entries: entries, metadata: c.metadata)
            }
            func dense(_ dtype: DType, _ dims: [Int]) throws -> TensorPayload {
                let shape = Shape(dims)
                return .dense(try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage([UInt8](repeating: 0, count: dtype.byteCount(elementCount: shape.elementCount)!))))
            }
            let k = GGUFQuantizedHostileTests.key
            switch self {
            case .unknownField:
                return (try set(k("w", "colour"), .string("red")), "w", "unknown metadata key '\(k("w", "colour"))'")
            case .keyWithoutField:
                return (try set("modelpress.quantization.w", .string("int")), "w", "unknown metadata key 'modelpress.quantization.w'")
            case .missingKey:
                return (try set(k("w", "bits"), nil), "w", "missing metadata key '\(k("w", "bits"))'")
            case .mistypedBits:
                return (try set(k("w", "bits"), .string("3")), "w", "'\(k("w", "bits"))' is string 3, expected an integer in 2...8")
            case .bitsOutOfRange:
                return (try set(k("w", "bits"), .uint32(9)), "w", "'\(k("w", "bits"))' is uint32 9, expected an integer in 2...8")
            case .unknownScheme:
                return (try set(k("w", "scheme"), .string("int4")), "w", "unknown scheme 'int4'")
            case .symmetricNotBool:
                return (try set(k("w", "symmetric"), .uint8(1)), "w", "'\(k("w", "symmetric"))' is not a bool")
            case .unknownGranularity:
                return (try set(k("w", "granularity"), .string("group:0")), "w", "unknown granularity 'group:0'")
            case .granularityNotString:
                return (try set(k("w", "granularity"), .uint32(8)), "w", "'\(k("w", "granularity"))' is uint32, expected string")
            case .shapeNotArray:
                return (try set(k("w", "shape"), .string("[4, 16]")), "w", "'\(k("w", "shape"))' is string, expected an int64 array")
            case .shapeNegative:
                return (try set(k("w", "shape"), .array(elementType: .int64, values: [.int64(-4), .int64(16)])), "w", "'\(k("w", "shape"))' = [-4, 16] is not a valid shape")
            case .shapeOfStrings:
                return (try set(k("w", "shape"), .array(elementType: .string, values: [.string("4")])), "w", "'\(k("w", "shape"))' holds string values, expected integers")
            case .shapeOverflow:
                let dims: [GGUFValue] = [.int64(.max), .int64(4)]
                return (try set(k("w", "shape"), .array(elementType: .int64, values: dims)), "w", "'\(k("w", "shape"))' = [\(Int64.max), 4] is not a valid shape")
            case .missingCodes:
                return (try replace("w", nil), "w", "missing tensor 'w'")
            case .codesWrongDType:
                return (try replace("w", dense(.f32, [4, 8])), "w", "'w' is F32, expected I8")
            case .codesWrongShape:
                return (try replace("w", dense(.i8, [4, 9])), "w", "'w' has shape [4, 9], expected [4, 8]")
            case .codesAreGGML:
                let q8 = GGMLTensor(type: .q8_0, shape: Shape([4, 32]), storage: ByteStorage([UInt8](repeating: 0, count: 4 * 34)))
                return (try replace("w", .ggml(q8)), "w", "'w' is Q8_0, expected I8")
            case .codeOutOfRange:
                guard case .dense(let t)? = c["w"]?.payload else { throw Failure("w is not dense") }
                var bytes = t.storage.array
                bytes[5] = 0x8F   // high nibble 8: not a 3-bit code
                return (try replace("w", .dense(try DenseTensor(dtype: .i8, shape: t.shape, storage: ByteStorage(bytes)))), "w", "a code of 'w' does not fit in 3 bits")
            case .missingScale:
                return (try replace("w.scale", nil), "w", "missing tensor 'w.scale'")
            case .scaleWrongDType:
                return (try replace("w.scale", dense(.i8, [4, 2])), "w", "'w.scale' is I8, expected F16 or F32")
            case .scaleWrongCount:
                return (try replace("w.scale", dense(.f32, [4, 3])), "w", "'w.scale' holds 12 scales, expected 8")
            case .scaleWrongShape:
                return (try replace("w.scale", dense(.f32, [8])), "w", "'w.scale' has shape [8], expected [4, 2]")
            case .missingZeroPoint:
                return (try replace("w.zero_point", nil), "w", "missing tensor 'w.zero_point'")
            case .zeroPointWrongDType:
                return (try replace("w.zero_point", dense(.f32, [4, 2])), "w", "'w.zero_point' is F32, expected I8 or I16 or I32")
            case .zeroPointWrongShape:
                return (try replace("w.zero_point", dense(.i8, [8])), "w", "'w.zero_point' has shape [8], expected [4, 2]")
            case .missingCodebook:
                return (try replace("c.codebook", nil), "c", "missing tensor 'c.codebook'")
            case .codebookTooLarge:
                return (try replace("c.codebook", dense(.f32, [257])), "c", "'c.codebook' has shape [257], expected [n] with n ≤ 256")
            case .codebookNotVector:
                return (try replace("c.codebook", dense(.f32, [2, 4])), "c", "'c.codebook' has shape [2, 4], expected [n] with n ≤ 256")
            case .nestedBlockZero:
                return (try set(k("n", "nested_block_size"), .uint32(0)), "n", "'\(k("n", "nested_block_size"))' is uint32 0, expected an integer in 1...4294967295")
            case .nestedOffsetMissing:
                return (try set(k("n", "nested_offset"), nil), "n", "missing metadata key '\(k("n", "nested_offset"))'")
            case .nestedOffsetWrongType:
                return (try set(k("n", "nested_offset"), .float64(0.5)), "n", "'\(k("n", "nested_offset"))' is not a float32")
            case .missingScaleCodes:
                return (try replace("n.scale_codes", nil), "n", "missing tensor 'n.scale_codes'")
            case .scaleCodesWrongDType:
                return (try replace("n.scale_codes", dense(.f32, [2, 4])), "n", "'n.scale_codes' is F32, expected I8")
            case .secondLevelWrongCount:
                return (try replace("n.scale_scales", dense(.f32, [4])), "n", "'n.scale_scales' has shape [4], expected [3]")
            case .mapWrongCount:
                return (try replace("n.scale_map", dense(.f32, [255])), "n", "'n.scale_map' has shape [255], expected [256]")
            case .partClaimedTwice:
                // A second record whose codes are w's scales.
                var broken = try set(k("w.scale", "scheme"), .string("int"))
                for (field, value) in [("bits", GGUFValue.uint32(8)), ("symmetric", .bool(true)), ("granularity", .string("tensor")),
                                       ("shape", .array(elementType: .int64, values: [.int64(4), .int64(2)]))] {
                    broken.metadata.append(MetadataEntry(key: k("w.scale", field), value: .gguf(value)))
                }
                return (broken, "w.scale", "tensor 'w.scale' also belongs to another quantized tensor")
            }
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    @Test("the base checkpoint collapses back to its three quantized tensors")
    func baseIsValid() throws {
        let back = try GGUFQuantizedLayout.collapse(Self.base(), file: "memory.gguf")
        #expect(back.entries.map(\.name) == ["norm", "w", "n", "c"])
        #expect(back.entries.map(\.encodingName) == ["F32", "int3 asym group:8", "nf4 group:16", "codebook3 channel"])
        #expect(back.metadata.map(\.key) == ["general.architecture"])
    }

    @Test("each broken record is rejected with an error naming the file and the tensor", arguments: Hostile.allCases)
    func rejected(_ hostile: Hostile) throws {
        let (checkpoint, tensor, reason) = try hostile.apply(to: Self.base())
        #expect(throws: GGUFQuantizedLayoutError.malformed(file: "memory.gguf", tensor: tensor, reason: reason)) {
            try GGUFQuantizedLayout.collapse(checkpoint, file: "memory.gguf")
        }
        // The same from a file (written as is: nothing in it is quantized any more).
        let dir = try TemporaryDirectory(prefix: "gguf-quantized-hostile")
        let path = dir.url("hostile.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let error = GGUFQuantizedLayoutError.malformed(file: path, tensor: tensor, reason: reason)
        #expect(throws: error) { try CheckpointReader.open(path: path) }
        #expect(error.description.hasPrefix("\(path): quantized tensor '\(tensor)': "))
    }

    @Test("seeded mutations of records and parts are read or rejected, never trap")
    func mutations() throws {
        let base = try Self.base()
        let keys = base.metadata.map(\.key).filter { $0.hasPrefix(GGUFQuantizedLayout.keyPrefix) }
        let values: [GGUFValue] = [.uint32(0), .uint32(1), .uint32(3), .uint32(8), .uint32(.max), .int64(-1), .string("int"), .string("codebook"),
                                   .string("fp8_e5m2"), .string("group:3"), .string("channel"), .bool(false), .float32(.nan),
                                   .array(elementType: .int64, values: [.int64(4)]), .array(elementType: .int64, values: [.int64(2), .int64(64)]),
                                   .array(elementType: .int64, values: [])]
        let dtypes: [DType] = [.i8, .i16, .i32, .f16, .f32]
        var rng = SeededGenerator(seed: 2024)
        var rejected = 0
        for _ in 0..<400 {
            var metadata = base.metadata
            var entries = base.entries
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                if rng.next() % 2 == 0 {
                    let key = keys[Int(rng.next() % UInt64(keys.count))]
                    let i = metadata.firstIndex { $0.key == key }!
                    metadata[i] = MetadataEntry(key: key, value: .gguf(values[Int(rng.next() % UInt64(values.count))]))
                } else {
                    let i = 1 + Int(rng.next() % UInt64(entries.count - 1))
                    let dtype = dtypes[Int(rng.next() % UInt64(dtypes.count))]
                    let dims = [Int(rng.next() % 5), Int(rng.next() % 70)].prefix(1 + Int(rng.next() % 2))
                    let shape = Shape(Array(dims))
                    let bytes = (0..<dtype.byteCount(elementCount: shape.elementCount)!).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    entries[i] = TensorEntry(name: entries[i].name, tensor: try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage(bytes)))
                }
            }
            do {
                let back = try GGUFQuantizedLayout.collapse(Checkpoint(entries: entries, metadata: metadata), file: "m.gguf")
                for case .quantized(let q) in back.entries.map(\.payload) { _ = q.dequantized() }
            } catch is GGUFQuantizedLayoutError {
                rejected += 1
            }
        }
        #expect(rejected > 300)
    }
}
