import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// The exact stored bytes of small hand-worked tensors, and the writer's choice between the compact
/// forms and dense storage at the boundary where they take the same bytes.
@Suite("Sparse layout: exact bytes and the smaller-than-dense decision")
struct SparseLayoutBytesTests {
    static func f32(_ values: [Float], _ dims: [Int]) throws -> DenseTensor { try DenseTensor(floats: values, shape: Shape(dims)) }
    static func i64Bytes(_ values: [Int]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) } }
    static func f32Bytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    /// Expands `entries` and returns the stored parts by name, plus the record.
    static func expand(_ entries: [TensorEntry]) throws -> (parts: Checkpoint, record: String?) {
        let expanded = try SparseLayout.expand(try Checkpoint(entries: entries), file: "memory")
        return (expanded, expanded.metadataValue(SparseLayout.metadataKey)?.description)
    }

    static func expectPart(_ c: Checkpoint, _ name: String, _ dtype: DType, _ dims: [Int], _ bytes: [UInt8],
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        let t = try denseTensor(c, name)
        #expect(t.dtype == dtype && t.shape == Shape(dims), "\(name): \(t.dtype) \(t.shape)", sourceLocation: sourceLocation)
        #expect(t.storage.array == bytes, "\(name)", sourceLocation: sourceLocation)
    }

    @Test("unstructured F32 [2, 10]: values 1.5, −2, 3 | 0.5, −0.0; masks 0x12 0x02 | 0x01 0x01; row offsets 0, 3")
    func bitmaskBytes() throws {
        let w = try Self.f32([0, 1.5, 0, 0, -2, 0, 0, 0, 0, 3,
                              0.5, 0, 0, 0, 0, 0, 0, 0, -0.0, 0], [2, 10])
        let (c, record) = try Self.expand([TensorEntry(name: "w.weight", payload: .dense(w), sparsity: .unstructured)])
        #expect(c.entries.map(\.name) == ["w.shape", "w.compressed", "w.bitmask", "w.row_offsets"])
        try Self.expectPart(c, "w.shape", .i64, [2], Self.i64Bytes([2, 10]))
        try Self.expectPart(c, "w.compressed", .f32, [5], Self.f32Bytes([1.5, -2, 3, 0.5, -0.0]))
        try Self.expectPart(c, "w.bitmask", .u8, [2, 2], [0x12, 0x02, 0x01, 0x01])
        try Self.expectPart(c, "w.row_offsets", .i64, [2], Self.i64Bytes([0, 3]))
        #expect(record == #"{"w.weight":{"format":"sparse-bitmask","pattern":"unstructured"}}"#)
        // 16 + 20 + 4 + 16 bytes instead of 80.
        #expect(TensorEntry(name: "w.weight", payload: .dense(w), sparsity: .unstructured).byteCount(in: .safetensors) == 56)
        #expect(try denseTensor(SparseLayout.collapse(c, file: "memory"), "w.weight") == w)
    }

    @Test("2:4 F32 [2, 8]: kept positions 1 3 | 0 3 and 0 1 | 1 2 (zero slots filled lowest first), indices 0xCD | 0x94")
    func twoOfFourBytes() throws {
        let m = try Self.f32([0, 1, 0, 2, 0, 0, 0, 3,
                              4, 0, 0, 0, 0, 5, 6, 0], [2, 8])
        let (c, record) = try Self.expand([TensorEntry(name: "m.weight", payload: .dense(m), sparsity: .nOfM(kept: 2, group: 4))])
        #expect(c.entries.map(\.name) == ["m.shape", "m.compressed", "m.indices"])
        try Self.expectPart(c, "m.shape", .i64, [2], Self.i64Bytes([2, 8]))
        try Self.expectPart(c, "m.compressed", .f32, [2, 4], Self.f32Bytes([1, 2, 0, 3, 4, 0, 5, 6]))
        // Row 0 fields 1, 3, 0, 3 (2 bits each, first field lowest): 0b11_00_11_01; row 1 fields 0, 1, 1, 2: 0b10_01_01_00.
        try Self.expectPart(c, "m.indices", .u8, [2, 1], [0xCD, 0x94])
        #expect(record == #"{"m.weight":{"format":"sparse-n-of-m","pattern":"2:4"}}"#)
        #expect(TensorEntry(name: "m.weight", payload: .dense(m), sparsity: .nOfM(kept: 2, group: 4)).byteCount(in: .safetensors) == 16 + 32 + 2)
        #expect(try denseTensor(SparseLayout.collapse(c, file: "memory"), "m.weight") == m)
    }

    @Test("4:8 F32 [1, 16]: 3-bit positions 0 1 2 6 | 0 1 2 3 cross byte boundaries: indices 0x88 0x8C 0x68")
    func fourOfEightBytes() throws {
        let g = try Self.f32([0, 0, 7, 0, 0, 0, -1, 0, 1, 2, 3, 4, 0, 0, 0, 0], [1, 16])
        let (c, _) = try Self.expand([TensorEntry(name: "g.weight", payload: .dense(g), sparsity: .nOfM(kept: 4, group: 8))])
        try Self.expectPart(c, "g.compressed", .f32, [1, 8], Self.f32Bytes([0, 0, 7, -1, 1, 2, 3, 4]))
        // Σ f_i·8^i = 0 + 1·8 + 2·64 + 6·512 + 0 + 1·32768 + 2·262144 + 3·2097152 = 0x688C88.
        try Self.expectPart(c, "g.indices", .u8, [1, 3], [0x88, 0x8C, 0x68])
        #expect(try denseTensor(SparseLayout.collapse(c, file: "memory"), "g.weight") == g)
    }

    @Test("unstructured F16 [1, 16] (32 bytes dense): 2 non-zeros take 16+4+2+8 = 30 bytes (bitmask), 3 take 32 (dense)")
    func bitmaskBoundary() throws {
        for (nonZeros, expected) in [(2, SparseLayout.Storage.bitmask(nonZeroCount: 2)), (3, .dense)] {
            let values = (0..<16).map { i in i < nonZeros ? Float(i + 1) * 0.5 : 0 }
            let t = try DenseTensor(floats: values, shape: Shape([1, 16]), dtype: .f16)
            let entry = TensorEntry(name: "b.weight", payload: .dense(t), sparsity: .unstructured)
            #expect(SparseLayout.storage(for: t, pattern: .unstructured) == expected, "\(nonZeros) non-zeros")
            #expect(entry.byteCount(in: .safetensors) == (nonZeros == 2 ? 30 : 32))
            let (c, record) = try Self.expand([entry])
            #expect(c.entries.map(\.name) == (nonZeros == 2 ? ["b.shape", "b.compressed", "b.bitmask", "b.row_offsets"] : ["b.weight"]))
            #expect((record == nil) == (nonZeros == 3))
            #expect(c.entries.reduce(0) { $0 + $1.byteCount } == entry.byteCount(in: .safetensors))
        }
    }

    @Test("2:4 I8 rows of 48 take 16+24+6 = 46 < 48 bytes (N:M); rows of 44 take 16+22+6 = 44 = dense (dense)")
    func nOfMBoundary() throws {
        for (columns, expected) in [(48, SparseLayout.Storage.nOfM(kept: 2, group: 4)), (44, .dense)] {
            // Positions 1 and 2 of every group: −3…−9 and 5…13.
            let bytes = (0..<columns).map { i -> UInt8 in
                switch i % 4 {
                case 1: UInt8(bitPattern: Int8(-3 - i % 7))
                case 2: UInt8(5 + i % 9)
                default: 0
                }
            }
            let t = try DenseTensor(dtype: .i8, shape: Shape([1, columns]), storage: ByteStorage(bytes))
            let entry = TensorEntry(name: "n", payload: .dense(t), sparsity: .nOfM(kept: 2, group: 4))
            #expect(SparseLayout.storage(for: t, pattern: .nOfM(kept: 2, group: 4)) == expected, "\(columns) columns")
            #expect(entry.byteCount(in: .safetensors) == (columns == 48 ? 46 : 44))
            let (c, _) = try Self.expand([entry])
            #expect(c.entries.map(\.name) == (columns == 48 ? ["n.shape", "n.compressed", "n.indices"] : ["n"]))
            #expect(c.entries.reduce(0) { $0 + $1.byteCount } == entry.byteCount(in: .safetensors))
            #expect(try denseTensor(SparseLayout.collapse(c, file: "m"), "n") == t)
        }
    }

    @Test("a 2:4 tensor with a group of 3 non-zeros is stored as a bitmask recorded 2:4, and read back marked 2:4")
    func nOfMFallsBackToBitmask() throws {
        var values = try SparseSamples.nOfM([4, 16], dtype: .f32, kept: 2, group: 4, seed: 9).floats()
        let zero = try #require((20..<24).first { values[$0] == 0 })
        values[zero] = 0.75
        let t = try DenseTensor(floats: values, shape: Shape([4, 16]))
        let entry = TensorEntry(name: "p.weight", payload: .dense(t), sparsity: .nOfM(kept: 2, group: 4))
        #expect(SparseLayout.storage(for: t, pattern: .nOfM(kept: 2, group: 4)) == .bitmask(nonZeroCount: 33))
        // 16 + 33·4 + 4·2 + 4·8 = 188 bytes instead of 256.
        #expect(entry.byteCount(in: .safetensors) == 188)
        let (c, record) = try Self.expand([entry])
        #expect(c.entries.map(\.name) == ["p.shape", "p.compressed", "p.bitmask", "p.row_offsets"])
        #expect(record == #"{"p.weight":{"format":"sparse-bitmask","pattern":"2:4"}}"#)
        let back = try SparseLayout.collapse(c, file: "memory")
        #expect(try denseTensor(back, "p.weight") == t && back["p.weight"]?.sparsity == .nOfM(kept: 2, group: 4))
        // Rows of 10 are not whole groups of 4: the mark cannot hold, so a bitmask too.
        let odd = try SparseSamples.unstructured([2, 10], dtype: .f32, zeroCount: 12, seed: 10)
        #expect(SparseLayout.storage(for: odd, pattern: .nOfM(kept: 2, group: 4)) == .bitmask(nonZeroCount: 8))
    }

    @Test("…and stored dense when the bitmask is not smaller either (F16 [1, 16] with 9 non-zeros: 44 bytes > 32)")
    func nOfMFallsBackToDense() throws {
        var values = (0..<16).map { i -> Float in i % 4 < 2 ? Float(i + 1) : 0 }
        values[2] = 0.5
        let t = try DenseTensor(floats: values, shape: Shape([1, 16]), dtype: .f16)
        let entry = TensorEntry(name: "d.weight", payload: .dense(t), sparsity: .nOfM(kept: 2, group: 4))
        #expect(SparseLayout.storage(for: t, pattern: .nOfM(kept: 2, group: 4)) == .dense)
        #expect(entry.byteCount(in: .safetensors) == 32)
        let (c, record) = try Self.expand([entry])
        #expect(c.entries.map(\.name) == ["d.weight"] && record == nil)
    }

    @Test("scalars, sub-byte dtypes and empty tensors stay dense")
    func alwaysDense() throws {
        let scalar = try DenseTensor(floats: [0], shape: Shape([]))
        let f4 = try DenseTensor(dtype: .f4, shape: Shape([64]), storage: ByteStorage([UInt8](repeating: 0, count: 32)))
        let empty = try DenseTensor(floats: [], shape: Shape([0, 8]))
        for t in [scalar, f4, empty] {
            #expect(SparseLayout.storage(for: t, pattern: .unstructured) == .dense, "\(t.dtype) \(t.shape)")
            #expect(TensorEntry(name: "t", payload: .dense(t), sparsity: .unstructured).byteCount(in: .safetensors) == t.byteCount)
        }
    }
}
