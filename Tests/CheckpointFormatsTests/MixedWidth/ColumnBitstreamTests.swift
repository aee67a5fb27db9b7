import Testing
import TensorCore
@testable import CheckpointFormats

/// The per-row bitstream of mixed-width codes: hand-computed bytes, round trips over random widths,
/// and rows whose padding bits are set.
@Suite("Column bitstream of mixed-width codes")
struct ColumnBitstreamTests {
    @Test("codes 5, –, 17, 0xAB, 1 at widths 3, 0, 5, 8, 1 are 0x8D 0xAB 0x01, least significant bit first")
    func handComputed() throws {
        let widths: [UInt8] = [3, 0, 5, 8, 1]
        #expect(ColumnBitstream.rowByteCount(columnBits: widths) == 3)   // 17 bits
        // 5 = 101 at bits 0–2, 17 = 10001 at bits 3–7: 0b1000_1101; 0xAB at bits 8–15; 1 at bit 16.
        let bytes = ColumnBitstream.pack([5, 0, 17, 0xAB, 1, 7, 0, 31, 0xFF, 1], rows: 2, columnBits: widths)
        #expect(bytes == [0x8D, 0xAB, 0x01, 0xFF, 0xFF, 0x01])
        let back = bytes.withUnsafeBytes { ColumnBitstream.unpack($0, rows: 2, columnBits: widths) }
        #expect(try back.get() == [5, 0, 17, 0xAB, 1, 7, 0, 31, 0xFF, 1])
        #expect(ColumnBitstream.pack([], rows: 3, columnBits: []) == [])
        #expect(ColumnBitstream.pack([0, 0, 0], rows: 3, columnBits: [0]) == [])
    }

    @Test("pack then unpack is the identity for random widths 0...8")
    func roundTrip() throws {
        var rng = SeededGenerator(seed: 4)
        for trial in 0..<40 {
            let columns = Int(rng.next() % 40), rows = Int(rng.next() % 5)
            let widths = (0..<columns).map { _ in UInt8(rng.next() % 9) }
            let codes = (0..<(rows * columns)).map { i in UInt8(truncatingIfNeeded: rng.next() % (UInt64(1) << UInt64(widths[i % columns]))) }
            let bytes = ColumnBitstream.pack(codes, rows: rows, columnBits: widths)
            #expect(bytes.count == rows * ColumnBitstream.rowByteCount(columnBits: widths))
            let back = bytes.withUnsafeBytes { ColumnBitstream.unpack($0, rows: rows, columnBits: widths) }
            #expect(try back.get() == codes, "trial \(trial)")
        }
    }

    @Test("a set bit after the last code of a row is reported with the row")
    func dirtyPadding() {
        let widths: [UInt8] = [3, 2]   // 5 bits: 3 padding bits per row
        var bytes = ColumnBitstream.pack([1, 2, 3, 1, 7, 3], rows: 3, columnBits: widths)
        bytes[1] |= 0x80
        let result = bytes.withUnsafeBytes { ColumnBitstream.unpack($0, rows: 3, columnBits: widths) }
        guard case .failure(let dirty) = result else { Issue.record("padding bits accepted"); return }
        #expect(dirty.row == 1)
    }
}
