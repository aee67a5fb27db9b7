import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Hostile compact sparse tensors: one case per check of the reader, each with the exact error naming
/// the file and the tensor, in memory and from a file, plus a seeded mutation run that must only ever
/// read a file or reject it, and huge claimed shapes that must neither allocate nor loop.
@Suite("Sparse layout: hostile input")
struct SparseHostileTests {
    /// `b.weight`: bitmask F32 [3, 10] with 12 non-zeros (2 mask bytes per row, 6 padding bits);
    /// `n.weight`: 2:4 F32 [2, 8]; `f.weight`: 2:6 F32 [2, 12] (3-bit positions, 12 bits = 2 bytes per
    /// row with 4 padding bits; values 6 and 7 are outside a group of 6).
    static func base() throws -> Checkpoint {
        let b = try SparseSamples.unstructured([3, 10], dtype: .f32, zeroCount: 18, seed: 31)
        let n = try SparseSamples.nOfM([2, 8], dtype: .f32, kept: 2, group: 4, seed: 32)
        let f = try SparseSamples.nOfM([2, 12], dtype: .f32, kept: 2, group: 6, seed: 33)
        let norm = try DenseTensor(floats: [1, 2], shape: Shape([2]))
        return try SparseLayout.expand(try Checkpoint(entries: [
            TensorEntry(name: "norm", tensor: norm), TensorEntry(name: "b.weight", payload: .dense(b), sparsity: .unstructured),
            TensorEntry(name: "n.weight", payload: .dense(n), sparsity: .nOfM(kept: 2, group: 4)),
            TensorEntry(name: "f.weight", payload: .dense(f), sparsity: .nOfM(kept: 2, group: 6)),
        ]), file: "memory")
    }

    static let key = SparseLayout.metadataKey

    enum Hostile: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case invalidJSON, recordNotObject, memberNotObject, missingFormat, formatNotString, unknownFormat, missingPattern, patternNotString
        case patternUnparseable, nOfMWithUnstructuredPattern, recordedTwice, recordedNameAlsoStored, partClaimedTwice
        case missingShape, missingCompressed, missingBitmask, missingRowOffsets, missingIndices
        case shapeWrongDType, shapeWrongRank, shapeEmpty, shapeNegative, shapeProductOverflow, partSizeOverflow
        case compressedSubByte, compressedNot1D, bitmaskWrongDType, bitmaskWrongShape, rowOffsetsWrongDType, rowOffsetsWrongShape
        case popcountMismatch, bitmaskPaddingBits, rowOffsetsMismatch, rowOffsetsDecreasing, rowOffsetsNegative, rowOffsetsBeyondValues
        case notWholeGroups, nOfMCompressedWrongShape, indicesWrongDType, indicesWrongShape, indexOutsideGroup, indexRepeated, indicesPaddingBits

        var testDescription: String { rawValue }

        /// The broken checkpoint, the tensor the error names and its reason.
        func apply(to c: Checkpoint) throws -> (checkpoint: Checkpoint, tensor: String, reason: String) {
            func metadata(_ text: String) throws -> Checkpoint {
                try Checkpoint(entries: c.entries, metadata: [MetadataEntry(key: key, value: .string(text))])
            }
            func members(_ edit: ([(key: String, value: JSONValue)]) -> [(key: String, value: JSONValue)]) throws -> Checkpoint {
                let json = try JSONParser.parse(Array(c.metadataValue(key)!.description.utf8))
                return try metadata(JSONWriter.compact(.object(edit(json.objectMembers!))))
            }
            func field(_ tensor: String, _ name: String, _ value: JSONValue?) throws -> Checkpoint {
                try members { $0.map { m in
                    guard m.key == tensor else { return m }
                    var fields = m.value.objectMembers!.filter { $0.key != name }
                    if let value { fields.append((name, value)) }
                    return (m.key, .object(fields))
                } }
            }
            func replace(_ name: String, _ tensor: DenseTensor?) throws -> Checkpoint {
                var entries = c.entries
                let i = entries.firstIndex { $0.name == name }!
                if let tensor { entries[i] = TensorEntry(name: name, tensor: tensor) } else { entries.remove(at: i) }
                return try Checkpoint(entries: entries, metadata: c.metadata)
            }
            func tensor(_ dtype: DType, _ dims: [Int], _ bytes: [UInt8]? = nil) throws -> DenseTensor {
                let shape = Shape(dims)
                return try DenseTensor(dtype: dtype, shape: shape, storage: ByteStorage(bytes ?? [UInt8](repeating: 0, count: dtype.byteCount(elementCount: shape.elementCount)!)))
            }
            func i64(_ values: [Int], _ dims: [Int]? = nil) throws -> DenseTensor {
                try tensor(.i64, dims ?? [values.count], values.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) })
            }
            func edited(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> Checkpoint {
                let t = try denseTensor(c, name)
                var bytes = t.storage.array
                edit(&bytes)
                return try replace(name, try DenseTensor(dtype: t.dtype, shape: t.shape, storage: ByteStorage(bytes)))
            }
            let b = "b.weight", n = "n.weight", f = "f.weight"
            switch self {
            case .invalidJSON:
                var message = ""
                do { _ = try JSONParser.parse(Array(#"{"b.weight":"#.utf8)) } catch { message = error.description }
                return (try metadata(#"{"b.weight":"#), key, "invalid JSON: \(message)")
            case .recordNotObject:
                return (try metadata("[]"), key, "the record is an array, expected an object")
            case .memberNotObject:
                return (try members { $0.map { $0.key == b ? ($0.key, .string("sparse-bitmask")) : $0 } }, b, "its record is a string, expected an object")
            case .missingFormat:
                return (try field(b, "format", nil), b, "its record has no format")
            case .formatNotString:
                return (try field(b, "format", .integer(1)), b, "format is a number, expected a string")
            case .unknownFormat:
                return (try field(b, "format", .string("sparse-24-bitmask")), b, "unknown format 'sparse-24-bitmask'")
            case .missingPattern:
                return (try field(n, "pattern", nil), n, "its record has no pattern")
            case .patternNotString:
                return (try field(n, "pattern", .array([.integer(2), .integer(4)])), n, "pattern is an array, expected a string")
            case .patternUnparseable:
                return (try field(n, "pattern", .string("4:4")), n, "pattern '4:4' is neither 'unstructured' nor N:M with 1 ≤ N < M ≤ 64")
            case .nOfMWithUnstructuredPattern:
                return (try field(n, "pattern", .string("unstructured")), n, "format sparse-n-of-m needs an N:M pattern, not 'unstructured'")
            case .recordedTwice:
                return (try members { $0 + [$0[0]] }, b, "recorded twice")
            case .recordedNameAlsoStored:
                return (try members { $0 + [("norm", .object([("format", .string("sparse-bitmask")), ("pattern", .string("unstructured"))]))] },
                        "norm", "the file also stores a tensor of that name")
            case .partClaimedTwice:
                // `b` has the same part names as `b.weight`.
                return (try members { $0 + [("b", $0[0].value)] }, "b", "part 'b.shape' also belongs to 'b.weight'")
            case .missingShape:
                return (try replace("b.shape", nil), b, "missing part 'b.shape'")
            case .missingCompressed:
                return (try replace("n.compressed", nil), n, "missing part 'n.compressed'")
            case .missingBitmask:
                return (try replace("b.bitmask", nil), b, "missing part 'b.bitmask'")
            case .missingRowOffsets:
                return (try replace("b.row_offsets", nil), b, "missing part 'b.row_offsets'")
            case .missingIndices:
                return (try replace("f.indices", nil), f, "missing part 'f.indices'")
            case .shapeWrongDType:
                return (try replace("b.shape", tensor(.i32, [2])), b, "'b.shape' is I32, expected I64")
            case .shapeWrongRank:
                return (try replace("b.shape", i64([3, 10, 1, 1], [2, 2])), b, "'b.shape' has shape [2, 2], expected [rank]")
            case .shapeEmpty:
                return (try replace("n.shape", i64([])), n, "'n.shape' holds no dimensions (a scalar is never stored sparse)")
            case .shapeNegative:
                return (try replace("b.shape", i64([-3, 10])), b, "'b.shape' holds the negative dimension -3")
            case .shapeProductOverflow:
                return (try replace("b.shape", i64([1 << 40, 1 << 40])), b, "element count overflow: 'b.shape' holds [1099511627776, 1099511627776]")
            case .partSizeOverflow:
                // No element, but 2^61 rows would need 2^64 bytes of row offsets.
                return (try replace("b.shape", i64([1 << 61, 0])), b, "element count overflow: F32 [2305843009213693952, 0] does not fit in memory sizes")
            case .compressedSubByte:
                return (try replace("b.compressed", tensor(.f4, [12])), b, "'b.compressed' is F4, a sub-byte dtype")
            case .compressedNot1D:
                return (try replace("b.compressed", tensor(.f32, [2, 6])), b, "'b.compressed' has shape [2, 6], expected [count]")
            case .bitmaskWrongDType:
                return (try replace("b.bitmask", tensor(.i8, [3, 2])), b, "'b.bitmask' is I8, expected U8")
            case .bitmaskWrongShape:
                return (try replace("b.bitmask", tensor(.u8, [3, 3])), b, "'b.bitmask' has shape [3, 3], expected [3, 2]")
            case .rowOffsetsWrongDType:
                return (try replace("b.row_offsets", tensor(.i32, [3])), b, "'b.row_offsets' is I32, expected I64")
            case .rowOffsetsWrongShape:
                return (try replace("b.row_offsets", i64([0, 4, 8, 12])), b, "'b.row_offsets' has shape [4], expected [3]")
            case .popcountMismatch:
                return (try replace("b.compressed", tensor(.f32, [11])), b, "'b.bitmask' marks 12 non-zeros, but 'b.compressed' holds 11 values")
            case .bitmaskPaddingBits:
                return (try edited("b.bitmask") { $0[2 * 2 + 1] |= 0x80 }, b, "'b.bitmask' row 2 has bits set after its 10 columns")
            case .rowOffsetsMismatch:
                let offsets = try SparseHostileTests.rowOffsets(c)
                return (try replace("b.row_offsets", i64([0, offsets[1] + 1, offsets[2]])), b,
                        "'b.row_offsets' row 1 starts at \(offsets[1] + 1), but the bitmask puts it at \(offsets[1])")
            case .rowOffsetsDecreasing:
                let offsets = try SparseHostileTests.rowOffsets(c)
                return (try replace("b.row_offsets", i64([0, offsets[1], offsets[1] - 1])), b,
                        "'b.row_offsets' decreases at row 2 (\(offsets[1]) then \(offsets[1] - 1))")
            case .rowOffsetsNegative:
                return (try replace("b.row_offsets", i64([-1, 4, 8])), b, "'b.row_offsets' row 0 starts at -1, outside 0...12")
            case .rowOffsetsBeyondValues:
                return (try replace("b.row_offsets", i64([0, 13, 13])), b, "'b.row_offsets' row 1 starts at 13, outside 0...12")
            case .notWholeGroups:
                return (try replace("n.shape", i64([2, 9])), n, "rows of 9 elements are not whole groups of 4")
            case .nOfMCompressedWrongShape:
                return (try replace("n.compressed", tensor(.f32, [8])), n, "'n.compressed' has shape [8], expected [2, 4]")
            case .indicesWrongDType:
                return (try replace("n.indices", tensor(.i8, [2, 1])), n, "'n.indices' is I8, expected U8")
            case .indicesWrongShape:
                return (try replace("f.indices", tensor(.u8, [2, 3])), f, "'f.indices' has shape [2, 3], expected [2, 2]")
            case .indexOutsideGroup:
                // Row 1, field 1 (bits 3...5 of byte 2): position 7 in a group of 6.
                return (try edited("f.indices") { $0[2] |= 0b0011_1000 }, f, "'f.indices' row 1, group 0 keeps position 7, outside the group of 6")
            case .indexRepeated:
                // Row 0, group 0: both fields become the first one.
                let first = try SparseHostileTests.firstIndex(c)
                return (try edited("n.indices") { $0[0] = $0[0] & 0xF0 | UInt8(first) | UInt8(first) << 2 }, n,
                        "'n.indices' row 0, group 0 keeps position \(first) twice")
            case .indicesPaddingBits:
                return (try edited("f.indices") { $0[1] |= 0x40 }, f, "'f.indices' row 0 has bits set after its 4 positions")
            }
        }
    }

    static func rowOffsets(_ c: Checkpoint) throws -> [Int] {
        try denseTensor(c, "b.row_offsets").storage.withUnsafeBytes { raw in (0..<3).map { Int(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) } }
    }

    static func firstIndex(_ c: Checkpoint) throws -> Int {
        Int(try denseTensor(c, "n.indices").storage.array[0] & 0x03)
    }

    /// Writes the entries of `checkpoint` (all dense) to `path` as they are.
    static func writeRaw(_ checkpoint: Checkpoint, to path: String) throws {
        let tensors = try checkpoint.entries.map { try denseTensor(checkpoint, $0.name) }
        try SafetensorsWriter.write(to: path, metadata: checkpoint.metadata.map { ($0.key, $0.value.description) },
                                    tensors: zip(checkpoint.entries, tensors).map { .init(name: $0.name, dtype: $1.dtype, shape: $1.shape) }) { tensors[$0] }
    }

    @Test("the base checkpoint reads back as its three sparse tensors, stored as documented")
    func baseIsValid() throws {
        let base = try Self.base()
        #expect(base.entries.map(\.name) == ["norm", "b.shape", "b.compressed", "b.bitmask", "b.row_offsets", "n.shape", "n.compressed", "n.indices",
                                             "f.shape", "f.compressed", "f.indices"])
        #expect(try denseTensor(base, "f.indices").shape == Shape([2, 2]))
        let back = try SparseLayout.collapse(base, file: "memory.safetensors")
        #expect(back.entries.map(\.name) == ["norm", "b.weight", "n.weight", "f.weight"])
        #expect(back.entries.map(\.sparsity) == [nil, .unstructured, .nOfM(kept: 2, group: 4), .nOfM(kept: 2, group: 6)])
        #expect(back.metadata.isEmpty)
    }

    @Test("each broken record or part is rejected with an error naming the file and the tensor", arguments: Hostile.allCases)
    func rejected(_ hostile: Hostile) throws {
        let (checkpoint, tensor, reason) = try hostile.apply(to: Self.base())
        #expect(throws: SparseLayoutError.malformed(file: "memory.safetensors", tensor: tensor, reason: reason)) {
            try SparseLayout.collapse(checkpoint, file: "memory.safetensors")
        }
        let dir = try TemporaryDirectory(prefix: "sparse-hostile")
        let path = dir.url("hostile.safetensors")
        try Self.writeRaw(checkpoint, to: path)
        let error = SparseLayoutError.malformed(file: path, tensor: tensor, reason: reason)
        #expect(throws: error) { try CheckpointReader.open(path: path) }
        #expect(error.description == "\(path): sparse tensor '\(tensor)': \(reason)")
        #expect(error is any InputDataError)
    }

    @Test("2^60 rows of no columns (every part empty) read back at once as an empty tensor")
    func hugeEmpty() throws {
        let shape = SparseLayoutBytesTests.i64Bytes([1 << 60, 0])
        let entries = [TensorEntry(name: "e.shape", tensor: try DenseTensor(dtype: .i64, shape: Shape([2]), storage: ByteStorage(shape))),
                       TensorEntry(name: "e.compressed", tensor: try DenseTensor(dtype: .bf16, shape: Shape([1 << 60, 0]), storage: ByteStorage([]))),
                       TensorEntry(name: "e.indices", tensor: try DenseTensor(dtype: .u8, shape: Shape([1 << 60, 0]), storage: ByteStorage([])))]
        let record = #"{"e.weight":{"format":"sparse-n-of-m","pattern":"2:4"}}"#
        let back = try SparseLayout.collapse(try Checkpoint(entries: entries, metadata: [MetadataEntry(key: Self.key, value: .string(record))]), file: "m")
        let t = try denseTensor(back, "e.weight")
        #expect(t.dtype == .bf16 && t.shape == Shape([1 << 60, 0]) && t.byteCount == 0)
    }

    @Test("seeded mutations of the record and the parts are read or rejected, never trap")
    func mutations() throws {
        let base = try Self.base()
        let partNames = base.entries.map(\.name).filter { $0 != "norm" }
        let values: [JSONValue] = [.string("sparse-bitmask"), .string("sparse-n-of-m"), .string("unstructured"), .string("2:4"), .string("2:6"),
                                   .string("1:8"), .string("3:4"), .integer(3)]
        let dtypes: [DType] = [.u8, .i8, .i64, .f16, .f32]
        var rng = SeededGenerator(seed: 91)
        var rejected = 0, read = 0
        for _ in 0..<600 {
            var entries = base.entries
            var json = try JSONParser.parse(Array(base.metadataValue(Self.key)!.description.utf8))
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                switch rng.next() % 4 {
                case 0:
                    let tensor = ["b.weight", "n.weight", "f.weight"][Int(rng.next() % 3)], field = rng.next() % 2 == 0 ? "format" : "pattern"
                    let value = values[Int(rng.next() % UInt64(values.count))]
                    json = .object(json.objectMembers!.map { m in
                        m.key == tensor ? (m.key, .object(m.value.objectMembers!.filter { $0.key != field } + [(field, value)])) : m
                    })
                case 1, 2:
                    try SeededPartMutations.changeByte(of: partNames[Int(rng.next() % UInt64(partNames.count))], in: &entries, rng: &rng)
                default:
                    try SeededPartMutations.replace(partNames[Int(rng.next() % UInt64(partNames.count))], in: &entries, dtypes: dtypes, rng: &rng)
                }
            }
            let metadata = [MetadataEntry(key: Self.key, value: .string(JSONWriter.compact(json)))]
            do {
                let back = try SparseLayout.collapse(Checkpoint(entries: entries, metadata: metadata), file: "m.safetensors")
                #expect(back.entries.count == 4)
                read += 1
            } catch is SparseLayoutError {
                rejected += 1
            }
        }
        #expect(rejected > 300 && read > 20, "\(rejected) rejected, \(read) read")
    }
}
