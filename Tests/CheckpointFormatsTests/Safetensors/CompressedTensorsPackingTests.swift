import Testing
import TensorCore
@testable import CheckpointFormats

/// `CompressedTensorsLayout.pack` (16 codes at a time for 8, 4 and 2 bits; shared bytes for 8-bit
/// codes) against the one-code-at-a-time `packWords`.
@Suite("Compressed-tensors packing: pack equals packWords")
struct CompressedTensorsPackingTests {
    static func words(_ t: DenseTensor) -> [UInt32] {
        t.storage.withUnsafeBytes { raw in (0..<t.elementCount).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
    }

    @Test("every bit width, row lengths with and without whole words or vectors", arguments: 2...8)
    func sameWords(bits: Int) throws {
        var rng = SeededGenerator(seed: UInt64(bits))
        for (rows, columns) in [(3, 64), (5, 37), (2, 16), (4, 15), (1, 1), (7, 100), (0, 12), (3, 0)] {
            let codes = (0..<(rows * columns)).map { _ in UInt8(truncatingIfNeeded: rng.next() % UInt64(1 << bits)) }
            let wide = codes.map(UInt32.init)
            let expected = CompressedTensorsLayout.packWords(wide, rows: rows, columns: columns, bits: bits)
            let perWord = 32 / bits
            let shape = Shape([rows, rows == 0 ? 0 : (columns + perWord - 1) / perWord])
            for packed in [try CompressedTensorsLayout.pack(codes, rows: rows, columns: columns, bits: bits),
                           try CompressedTensorsLayout.pack(wide, rows: rows, columns: columns, bits: bits)] {
                #expect(packed.dtype == .i32 && packed.shape == shape, "[\(rows), \(columns)] bits \(bits)")
                #expect(Self.words(packed) == expected, "[\(rows), \(columns)] bits \(bits)")
                #expect(CompressedTensorsLayout.unpackWords(Self.words(packed), rows: rows, columns: columns, bits: bits) == wide)
            }
        }
    }

    @Test("the highest code in every position of a word (no bit leaks into a neighbour)", arguments: [2, 4, 8])
    func highestCodes(bits: Int) throws {
        let top = UInt8((1 << bits) - 1)
        for position in 0..<32 {
            var codes = [UInt8](repeating: 0, count: 32)
            codes[position] = top
            let packed = try CompressedTensorsLayout.pack(codes, rows: 1, columns: 32, bits: bits)
            #expect(Self.words(packed) == CompressedTensorsLayout.packWords(codes.map(UInt32.init), rows: 1, columns: 32, bits: bits),
                    "bits \(bits), position \(position)")
        }
    }
}
