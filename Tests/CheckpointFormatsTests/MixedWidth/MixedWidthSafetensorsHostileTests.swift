import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile `mixed-column-quantized` tensors in safetensors: one case per check of the reader, each
/// with the exact error naming the file and the tensor, in memory and from a file, plus a seeded
/// mutation run that must only ever succeed or throw.
@Suite("Mixed-width safetensors layout: hostile input")
struct MixedWidthSafetensorsHostileTests {
    /// `w.weight`: asymmetric [4, 10], widths 3, 0, 5, 8, 2 repeated (Σb = 36 bits: 5 bytes per row,
    /// 4 padding bits; classes 2, 3, 5, 8); `s.weight`: symmetric [3, 4], widths 4, 2.
    static func base() throws -> Checkpoint {
        let w = MixedWidthSamples.make([4, 10], widths: [3, 0, 5, 8, 2], symmetric: false, seed: 21)
        let s = MixedWidthSamples.make([3, 4], widths: [4, 2], symmetric: true, seed: 22)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        return try CompressedTensorsLayout.expand(Checkpoint(entries: [TensorEntry(name: "norm", tensor: norm), TensorEntry(name: "w.weight", payload: .quantized(w)),
                                                                       TensorEntry(name: "s.weight", payload: .quantized(s))]))
    }

    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case unknownFormat, formatNotString, wrongScheme, wrongGranularity, bitsNotInteger, bitsAbove8, bitsNotWidest, symmetricMissing
        case missingShape, shapeNotI64, shapeNegative
        case missingColumnBits, columnBitsWrongDType, columnBitsWrongCount, columnBitsWrongShape, widthAbove8
        case missingPacked, packedWrongDType, packedWrongCount, packedWrongShape, paddingBitsSet
        case missingScale, scaleWrongDType, scaleWrongCount, scaleWrongShape, scaleNotFinite
        case missingZeroPoint, zeroPointWrongDType, zeroPointWrongShape, zeroPointTooLarge, symmetricWithZeroPoints

        var testDescription: String { rawValue }

        /// The broken checkpoint, the tensor the error names and its reason.
        func apply(to c: Checkpoint) throws -> (checkpoint: Checkpoint, tensor: String, reason: String) {
            func record(_ tensor: String, _ field: String, _ value: JSONValue?) throws -> Checkpoint {
                let key = CompressedTensorsLayout.metadataKey
                let json = try JSONParser.parse(Array(c.metadataValue(key)!.description.utf8))
                let members = json.objectMembers!.map { member -> (key: String, value: JSONValue) in
                    guard member.key == tensor else { return member }
                    var fields = member.value.objectMembers!.filter { $0.key != field }
                    if let value { fields.append((field, value)) }
                    return (member.key, .object(fields))
                }
                return try Checkpoint(entries: c.entries, metadata: [MetadataEntry(key: key, value: .string(JSONWriter.compact(.object(members))))])
            }
            func replace(_ name: String, _ tensor: DenseTensor?) throws -> Checkpoint {
                var entries = c.entries.filter { $0.name != name }
                if let tensor { entries.insert(TensorEntry(name: name, tensor: tensor), at: min(2, entries.count)) }
                return try Checkpoint(entries: entries, metadata: c.metadata)
            }
            func zeros(_ dtype: DType, _ dims: [Int]) throws -> DenseTensor {
                let shape = Shape(dims)
                return try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage([UInt8](repeating: 0, count: dtype.byteCount(elementCount: shape.elementCount)!)))
            }
            func edited(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> Checkpoint {
                guard case .dense(let t)? = c[name]?.payload else { throw TestFailure("\(name) is not dense") }
                var bytes = t.storage.array
                edit(&bytes)
                return try replace(name, try DenseTensor(dtype: t.dtype, shape: t.shape, storage: ByteStorage(bytes)))
            }
            let w = "w.weight"
            switch self {
            case .unknownFormat:
                return (try record(w, "format", .string("mixed")), w, "unknown format 'mixed'")
            case .formatNotString:
                return (try record(w, "format", .integer(1)), w, "format is a number, expected a string")
            case .wrongScheme:
                return (try record(w, "scheme", .string("fp8_e4m3")), w, "mixed-column-quantized needs scheme int and granularity channel")
            case .wrongGranularity:
                return (try record(w, "granularity", .string("group:5")), w, "mixed-column-quantized needs scheme int and granularity channel")
            case .bitsNotInteger:
                return (try record(w, "bits", .string("8")), w, "malformed scheme record")
            case .bitsAbove8:
                return (try record(w, "bits", .integer(9)), w, "malformed scheme record")
            case .bitsNotWidest:
                return (try record(w, "bits", .integer(7)), w, "the record gives 7 bits, but the widest column has 8")
            case .symmetricMissing:
                return (try record(w, "symmetric", nil), w, "malformed scheme record")
            case .missingShape:
                return (try replace("w.weight_shape", nil), w, "missing part 'w.weight_shape'")
            case .shapeNotI64:
                return (try replace("w.weight_shape", zeros(.i32, [2])), w, "weight_shape must be I64")
            case .shapeNegative:
                let dims: [Int64] = [-4, 10]
                let bytes = dims.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) }
                return (try replace("w.weight_shape", DenseTensor(dtype: .i64, shape: Shape([2]), storage: ByteStorage(bytes))), w, "bad weight_shape [-4, 10]")
            case .missingColumnBits:
                return (try replace("w.weight_column_bits", nil), w, "missing part 'w.weight_column_bits'")
            case .columnBitsWrongDType:
                return (try replace("w.weight_column_bits", zeros(.i8, [10])), w, "'w.weight_column_bits' is I8, expected U8")
            case .columnBitsWrongCount:
                return (try replace("w.weight_column_bits", zeros(.u8, [9])), w, "'w.weight_column_bits' holds 9 widths, expected 10")
            case .columnBitsWrongShape:
                return (try replace("w.weight_column_bits", zeros(.u8, [2, 5])), w, "'w.weight_column_bits' has shape [2, 5], expected [10]")
            case .widthAbove8:
                return (try edited("w.weight_column_bits") { $0[3] = 9 }, w, "'w.weight_column_bits' gives column 3 a width of 9 bits (at most 8)")
            case .missingPacked:
                return (try replace("w.weight_packed", nil), w, "missing part 'w.weight_packed'")
            case .packedWrongDType:
                return (try replace("w.weight_packed", zeros(.i32, [4, 5])), w, "'w.weight_packed' is I32, expected U8")
            case .packedWrongCount:
                return (try replace("w.weight_packed", zeros(.u8, [4, 4])), w, "'w.weight_packed' holds 16 bytes, expected 20")
            case .packedWrongShape:
                return (try replace("w.weight_packed", zeros(.u8, [20])), w, "'w.weight_packed' has shape [20], expected [4, 5]")
            case .paddingBitsSet:
                return (try edited("w.weight_packed") { $0[2 * 5 + 4] |= 0x80 }, w, "'w.weight_packed' row 2 has nonzero bits after its last code")
            case .missingScale:
                return (try replace("w.weight_scale", nil), w, "missing part 'w.weight_scale'")
            case .scaleWrongDType:
                return (try replace("w.weight_scale", zeros(.bf16, [4, 4])), w, "'w.weight_scale' is BF16, expected F16 or F32")
            case .scaleWrongCount:
                return (try replace("w.weight_scale", zeros(.f32, [4, 3])), w, "'w.weight_scale' holds 12 scales, expected 16")
            case .scaleWrongShape:
                return (try replace("w.weight_scale", zeros(.f16, [16])), w, "'w.weight_scale' has shape [16], expected [4, 4]")
            case .scaleNotFinite:
                // Scale 5 (row 1, class 1: width 3) becomes +Inf in F16.
                return (try edited("w.weight_scale") { $0[10] = 0x00; $0[11] = 0x7C }, w, "scale inf of row 1, width class 3 is not finite")
            case .missingZeroPoint:
                return (try replace("w.weight_zero_point", nil), w, "missing part 'w.weight_zero_point'")
            case .zeroPointWrongDType:
                return (try replace("w.weight_zero_point", zeros(.i32, [4, 4])), w, "'w.weight_zero_point' is I32, expected U8")
            case .zeroPointWrongShape:
                return (try replace("w.weight_zero_point", zeros(.u8, [16])), w, "'w.weight_zero_point' has shape [16], expected [4, 4]")
            case .zeroPointTooLarge:
                // Zero point 6 (row 1, class 2: width 5) set to 32.
                return (try edited("w.weight_zero_point") { $0[6] = 32 }, w, "zero point 32 of row 1 does not fit its 5-bit class")
            case .symmetricWithZeroPoints:
                return (try replace("s.weight_zero_point", zeros(.u8, [3, 2])), "s.weight", "symmetric, but has zero points 's.weight_zero_point'")
            }
        }
    }

    @Test("the base checkpoint reads back as its two mixed-width tensors")
    func baseIsValid() throws {
        let back = try CompressedTensorsLayout.collapse(Self.base(), file: "memory.safetensors")
        #expect(back.entries.map(\.name) == ["norm", "w.weight", "s.weight"])
        #expect(back.entries.map(\.encodingName) == ["F32", "int0-8 asym channel mixed", "int2-4 sym channel mixed"])
    }

    @Test("each broken tensor is rejected with an error naming the file and the tensor", arguments: Hostile.allCases)
    func rejected(_ hostile: Hostile) throws {
        let (checkpoint, tensor, reason) = try hostile.apply(to: Self.base())
        #expect(throws: CompressedTensorsError.malformed(tensor: tensor, reason: "memory.safetensors: " + reason)) {
            try CompressedTensorsLayout.collapse(checkpoint, file: "memory.safetensors")
        }
        // The same from a file, written as it is (the writer would replace the scheme record).
        let dir = try TemporaryDirectory(prefix: "mixed-st-hostile")
        let path = dir.url("hostile.safetensors")
        let tensors = checkpoint.entries.map { entry -> DenseTensor in
            guard case .dense(let t) = entry.payload else { preconditionFailure("hostile parts are dense") }
            return t
        }
        try SafetensorsWriter.write(to: path, metadata: checkpoint.metadata.map { ($0.key, $0.value.description) },
                                    tensors: zip(checkpoint.entries, tensors).map { .init(name: $0.name, dtype: $1.dtype, shape: $1.shape) }) { tensors[$0] }
        let error = CompressedTensorsError.malformed(tensor: tensor, reason: "\(path): " + reason)
        #expect(throws: error) { try CheckpointReader.open(path: path) }
        #expect(error.description == "quantized tensor '\(tensor)': \(path): \(reason)")
    }

    @Test("seeded mutations of the record and the parts are read or rejected, never trap")
    func mutations() throws {
        let base = try Self.base()
        let partNames = base.entries.map(\.name).filter { $0 != "norm" }
        let fields: [(String, [JSONValue])] = [("bits", [.integer(0), .integer(4), .integer(8), .string("x")]), ("symmetric", [.bool(true), .bool(false)]),
                                                ("scheme", [.string("int"), .string("nf4")]), ("granularity", [.string("channel"), .string("tensor")])]
        let dtypes: [DType] = [.u8, .i8, .i64, .f16, .f32]
        var rng = SeededGenerator(seed: 77)
        var rejected = 0
        for _ in 0..<400 {
            var entries = base.entries
            var json = try JSONParser.parse(Array(base.metadataValue(CompressedTensorsLayout.metadataKey)!.description.utf8))
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                switch rng.next() % 3 {
                case 0:
                    let (field, values) = fields[Int(rng.next() % UInt64(fields.count))]
                    let tensor = rng.next() % 2 == 0 ? "w.weight" : "s.weight"
                    let value = values[Int(rng.next() % UInt64(values.count))]
                    json = .object(json.objectMembers!.map { m in
                        m.key == tensor ? (m.key, .object(m.value.objectMembers!.filter { $0.key != field } + [(field, value)])) : m
                    })
                case 1:
                    try SeededPartMutations.changeByte(of: partNames[Int(rng.next() % UInt64(partNames.count))], in: &entries, rng: &rng)
                default:
                    try SeededPartMutations.replace(partNames[Int(rng.next() % UInt64(partNames.count))], in: &entries, dtypes: dtypes, rng: &rng)
                }
            }
            let metadata = [MetadataEntry(key: CompressedTensorsLayout.metadataKey, value: .string(JSONWriter.compact(json)))]
            do {
                let back = try CompressedTensorsLayout.collapse(Checkpoint(entries: entries, metadata: metadata), file: "m.safetensors")
                for case .quantized(let q) in back.entries.map(\.payload) { _ = q.dequantized() }
            } catch is CompressedTensorsError {
                rejected += 1
            }
        }
        #expect(rejected > 250)
    }
}
