import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile mixed-width tensors in GGUF (`GGUFQuantizedLayout` with `format` =
/// `mixed-column-quantized`): one case per check, each with the exact error naming the file and the
/// tensor, in memory and from a file, plus a seeded mutation run that must only ever succeed or throw.
@Suite("Mixed-width GGUF layout: hostile input")
struct MixedWidthGGUFHostileTests {
    /// `w`: asymmetric [4, 10], widths 3, 0, 5, 8, 2 repeated (Σb = 36 bits: 5 bytes per row, 4 padding
    /// bits; classes 2, 3, 5, 8); `s`: symmetric [3, 4], widths 4, 2.
    static func base() throws -> Checkpoint {
        let w = MixedWidthSamples.make([4, 10], widths: [3, 0, 5, 8, 2], symmetric: false, seed: 21)
        let s = MixedWidthSamples.make([3, 4], widths: [4, 2], symmetric: true, seed: 22)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        return try GGUFQuantizedLayout.expand(Checkpoint(entries: [TensorEntry(name: "norm", tensor: norm), TensorEntry(name: "w", payload: .quantized(w)),
                                                                   TensorEntry(name: "s", payload: .quantized(s))],
                                                         metadata: [MetadataEntry(key: "general.architecture", value: .gguf(.string("llama")))]))
    }

    static func key(_ name: String, _ field: String) -> String { "modelpress.quantization.\(name).\(field)" }

    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case unknownFormat, formatNotString, wrongScheme, wrongGranularity, nestedKey, bitsAbove8, bitsNotWidest, symmetricNotBool, shapeNegative
        case missingColumnBits, columnBitsWrongDType, columnBitsWrongCount, columnBitsWrongShape, widthAbove8
        case missingCodes, codesWrongDType, codesAreGGML, codesWrongCount, codesWrongShape, paddingBitsSet
        case missingScale, scaleWrongDType, scaleWrongCount, scaleWrongShape, scaleNotFinite
        case missingZeroPoint, zeroPointWrongDType, zeroPointWrongShape, zeroPointNegative, zeroPointTooLarge, symmetricWithZeroPoints

        var testDescription: String { rawValue }

        /// The broken checkpoint, the tensor the error names and its reason.
        func apply(to c: Checkpoint) throws -> (checkpoint: Checkpoint, tensor: String, reason: String) {
            func set(_ key: String, _ value: GGUFValue) throws -> Checkpoint {
                var metadata = c.metadata.filter { $0.key != key }
                metadata.append(MetadataEntry(key: key, value: .gguf(value)))
                return try Checkpoint(entries: c.entries, metadata: metadata)
            }
            func replace(_ name: String, _ payload: TensorPayload?) throws -> Checkpoint {
                var entries = c.entries.filter { $0.name != name }
                if let payload { entries.append(TensorEntry(name: name, payload: payload)) }
                return try Checkpoint(entries: entries, metadata: c.metadata)
            }
            func zeros(_ dtype: DType, _ dims: [Int]) throws -> TensorPayload {
                let shape = Shape(dims)
                return .dense(try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage([UInt8](repeating: 0, count: dtype.byteCount(elementCount: shape.elementCount)!))))
            }
            func edited(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> Checkpoint {
                guard case .dense(let t)? = c[name]?.payload else { throw TestFailure("\(name) is not dense") }
                var bytes = t.storage.array
                edit(&bytes)
                return try replace(name, .dense(try DenseTensor(dtype: t.dtype, shape: t.shape, storage: ByteStorage(bytes))))
            }
            let k = MixedWidthGGUFHostileTests.key
            let needs = "mixed-column-quantized needs scheme 'int' and granularity 'channel'"
            switch self {
            case .unknownFormat:
                return (try set(k("w", "format"), .string("mixed")), "w", "unknown format 'mixed'")
            case .formatNotString:
                return (try set(k("w", "format"), .uint32(1)), "w", "'\(k("w", "format"))' is uint32, expected string")
            case .wrongScheme:
                return (try set(k("w", "scheme"), .string("codebook")), "w", needs + ", found 'codebook' and 'channel'")
            case .wrongGranularity:
                return (try set(k("w", "granularity"), .string("group:5")), "w", needs + ", found 'int' and 'group:5'")
            case .nestedKey:
                return (try set(k("w", "nested_block_size"), .uint32(4)), "w", "mixed-column-quantized has no nested scales")
            case .bitsAbove8:
                return (try set(k("w", "bits"), .uint32(9)), "w", "'\(k("w", "bits"))' is uint32 9, expected an integer in 0...8")
            case .bitsNotWidest:
                return (try set(k("w", "bits"), .uint32(7)), "w", "the record gives 7 bits, but the widest column has 8")
            case .symmetricNotBool:
                return (try set(k("w", "symmetric"), .uint8(0)), "w", "'\(k("w", "symmetric"))' is not a bool")
            case .shapeNegative:
                return (try set(k("w", "shape"), .array(elementType: .int64, values: [.int64(-4), .int64(10)])), "w",
                        "'\(k("w", "shape"))' = [-4, 10] is not a valid shape")
            case .missingColumnBits:
                return (try replace("w.column_bits", nil), "w", "missing tensor 'w.column_bits'")
            case .columnBitsWrongDType:
                return (try replace("w.column_bits", zeros(.i16, [10])), "w", "'w.column_bits' is I16, expected I8")
            case .columnBitsWrongCount:
                return (try replace("w.column_bits", zeros(.i8, [11])), "w", "'w.column_bits' holds 11 widths, expected 10")
            case .columnBitsWrongShape:
                return (try replace("w.column_bits", zeros(.i8, [5, 2])), "w", "'w.column_bits' has shape [5, 2], expected [10]")
            case .widthAbove8:
                return (try edited("w.column_bits") { $0[4] = 0xFF }, "w", "'w.column_bits' gives column 4 a width of 255 bits (at most 8)")
            case .missingCodes:
                return (try replace("w", nil), "w", "missing tensor 'w'")
            case .codesWrongDType:
                return (try replace("w", zeros(.f32, [4, 5])), "w", "'w' is F32, expected I8")
            case .codesAreGGML:
                let q8 = GGMLTensor(type: .q8_0, shape: Shape([4, 32]), storage: ByteStorage([UInt8](repeating: 0, count: 4 * 34)))
                return (try replace("w", .ggml(q8)), "w", "'w' is Q8_0, expected I8")
            case .codesWrongCount:
                return (try replace("w", zeros(.i8, [4, 6])), "w", "'w' holds 24 bytes, expected 20")
            case .codesWrongShape:
                return (try replace("w", zeros(.i8, [2, 10])), "w", "'w' has shape [2, 10], expected [4, 5]")
            case .paddingBitsSet:
                return (try edited("w") { $0[3 * 5 + 4] |= 0x10 }, "w", "'w' row 3 has nonzero bits after its last code")
            case .missingScale:
                return (try replace("w.scale", nil), "w", "missing tensor 'w.scale'")
            case .scaleWrongDType:
                return (try replace("w.scale", zeros(.i8, [4, 4])), "w", "'w.scale' is I8, expected F16 or F32")
            case .scaleWrongCount:
                return (try replace("w.scale", zeros(.f32, [4, 5])), "w", "'w.scale' holds 20 scales, expected 16")
            case .scaleWrongShape:
                return (try replace("w.scale", zeros(.f32, [2, 8])), "w", "'w.scale' has shape [2, 8], expected [4, 4]")
            case .scaleNotFinite:
                // Scale 15 (row 3, class 3: width 8) becomes NaN in F16.
                return (try edited("w.scale") { $0[30] = 0x00; $0[31] = 0x7E }, "w", "scale nan of row 3, width class 8 is not finite")
            case .missingZeroPoint:
                return (try replace("w.zero_point", nil), "w", "missing tensor 'w.zero_point'")
            case .zeroPointWrongDType:
                return (try replace("w.zero_point", zeros(.f16, [4, 4])), "w", "'w.zero_point' is F16, expected I8 or I16 or I32")
            case .zeroPointWrongShape:
                return (try replace("w.zero_point", zeros(.i32, [1, 16])), "w", "'w.zero_point' has shape [1, 16], expected [4, 4]")
            case .zeroPointNegative:
                return (try replace("w.zero_point", .dense(try DenseTensor(dtype: .i8, shape: Shape([4, 4]), storage: ByteStorage([UInt8](repeating: 0xFF, count: 16))))),
                        "w", "zero point -1 of row 0 does not fit its 2-bit class")
            case .zeroPointTooLarge:
                let z = (0..<16).flatMap { i in withUnsafeBytes(of: Int16(i == 15 ? 256 : 1).littleEndian, Array.init) }
                return (try replace("w.zero_point", .dense(try DenseTensor(dtype: .i16, shape: Shape([4, 4]), storage: ByteStorage(z)))),
                        "w", "zero point 256 of row 3 does not fit its 8-bit class")
            case .symmetricWithZeroPoints:
                return (try replace("s.zero_point", zeros(.i8, [3, 2])), "s", "symmetric, but has zero points 's.zero_point'")
            }
        }
    }

    @Test("the base checkpoint reads back as its two mixed-width tensors")
    func baseIsValid() throws {
        let back = try GGUFQuantizedLayout.collapse(Self.base(), file: "memory.gguf")
        #expect(back.entries.map(\.name) == ["norm", "w", "s"])
        #expect(back.entries.map(\.encodingName) == ["F32", "int0-8 asym channel mixed", "int2-4 sym channel mixed"])
        #expect(back.metadata.map(\.key) == ["general.architecture"])
    }

    @Test("each broken tensor is rejected with an error naming the file and the tensor", arguments: Hostile.allCases)
    func rejected(_ hostile: Hostile) throws {
        let (checkpoint, tensor, reason) = try hostile.apply(to: Self.base())
        #expect(throws: GGUFQuantizedLayoutError.malformed(file: "memory.gguf", tensor: tensor, reason: reason)) {
            try GGUFQuantizedLayout.collapse(checkpoint, file: "memory.gguf")
        }
        let dir = try TemporaryDirectory(prefix: "mixed-gguf-hostile")
        let path = dir.url("hostile.gguf")
        try GGUFWriter.write(checkpoint, to: path)
        let error = GGUFQuantizedLayoutError.malformed(file: path, tensor: tensor, reason: reason)
        #expect(throws: error) { try CheckpointReader.open(path: path) }
        #expect(error.description == "\(path): quantized tensor '\(tensor)': \(reason)")
    }

    @Test("seeded mutations of keys and parts are read or rejected, never trap")
    func mutations() throws {
        let base = try Self.base()
        let keys = base.metadata.map(\.key).filter { $0.hasPrefix(GGUFQuantizedLayout.keyPrefix) }
        let values: [GGUFValue] = [.uint32(0), .uint32(2), .uint32(8), .uint32(.max), .int64(-1), .string("int"), .string("channel"),
                                   .string("mixed-column-quantized"), .bool(true), .bool(false), .float32(.nan),
                                   .array(elementType: .int64, values: [.int64(4), .int64(10)]), .array(elementType: .int64, values: [.int64(3), .int64(4)]),
                                   .array(elementType: .int64, values: [.int64(1 << 40), .int64(1 << 20)])]
        let parts = base.entries.map(\.name).filter { $0 != "norm" }
        let dtypes: [DType] = [.i8, .i16, .i32, .f16, .f32]
        var rng = SeededGenerator(seed: 2025)
        var rejected = 0
        for _ in 0..<400 {
            var metadata = base.metadata
            var entries = base.entries
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                switch rng.next() % 3 {
                case 0:
                    let key = keys[Int(rng.next() % UInt64(keys.count))]
                    let i = metadata.firstIndex { $0.key == key }!
                    metadata[i] = MetadataEntry(key: key, value: .gguf(values[Int(rng.next() % UInt64(values.count))]))
                case 1:
                    try SeededPartMutations.changeByte(of: parts[Int(rng.next() % UInt64(parts.count))], in: &entries, rng: &rng)
                default:
                    try SeededPartMutations.replace(parts[Int(rng.next() % UInt64(parts.count))], in: &entries, dtypes: dtypes, rng: &rng)
                }
            }
            do {
                let back = try GGUFQuantizedLayout.collapse(Checkpoint(entries: entries, metadata: metadata), file: "m.gguf")
                for case .quantized(let q) in back.entries.map(\.payload) { _ = q.dequantized() }
            } catch is GGUFQuantizedLayoutError {
                rejected += 1
            }
        }
        #expect(rejected > 250)
    }
}
