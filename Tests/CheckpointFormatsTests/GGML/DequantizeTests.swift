import Testing
@testable import CheckpointFormats

/// An independent, element-at-a-time decoder written from the block layouts in formats.md §1.5
/// and §2.2–2.3 (bit positions computed per element rather than by the codecs' packing loops).
/// The float expressions keep the reference's order, so results must match exactly.
enum ElementDecoder {
    static func fp16(_ b: ArraySlice<UInt8>, _ o: Int) -> Float {
        Float(Float16(bitPattern: UInt16(b[b.startIndex + o]) | UInt16(b[b.startIndex + o + 1]) << 8))
    }

    static func byte(_ b: ArraySlice<UInt8>, _ o: Int) -> UInt8 { b[b.startIndex + o] }

    /// Value `k` of one block.
    static func value(_ type: GGMLType, _ blk: ArraySlice<UInt8>, _ k: Int) -> Float {
        switch type {
        case .q8_0:
            return fp16(blk, 0) * Float(Int8(bitPattern: byte(blk, 2 + k)))
        case .q4_0, .q4_1, .q5_0, .q5_1:
            let qsAt = [GGMLType.q4_0: 2, .q4_1: 4, .q5_0: 6, .q5_1: 8][type]!
            let packed = byte(blk, qsAt + k % 16)
            var q = Int(k < 16 ? packed & 0xF : packed >> 4)
            if type == .q5_0 || type == .q5_1 {
                let qhAt = type == .q5_0 ? 2 : 4
                q |= Int((byte(blk, qhAt + k / 8) >> UInt8(k % 8)) & 1) << 4
            }
            let d = fp16(blk, 0)
            switch type {
            case .q4_0: return Float(q - 8) * d
            case .q5_0: return Float(q - 16) * d
            default: return Float(q) * d + fp16(blk, 2)
            }
        case .q2_K:
            let (h, r) = (k / 128, k % 128)
            let q = (byte(blk, 16 + 32 * h + r % 32) >> UInt8(2 * (r / 32))) & 3
            let sc = byte(blk, k / 16)
            return fp16(blk, 80) * Float(sc & 0xF) * Float(q) - fp16(blk, 82) * Float(sc >> 4)
        case .q3_K:
            let (h, r) = (k / 128, k % 128)
            let low = Int((byte(blk, 32 + 32 * h + r % 32) >> UInt8(2 * (r / 32))) & 3)
            let highSet = (byte(blk, k % 32) >> UInt8(k / 32)) & 1 == 1
            let j = k / 16
            let lowScale = j < 8 ? byte(blk, 96 + j) & 0xF : byte(blk, 96 + j - 8) >> 4
            let highScale = (byte(blk, 104 + j % 4) >> UInt8(2 * (j / 4))) & 3
            let sc = Int(lowScale | highScale << 4) - 32
            return fp16(blk, 108) * Float(sc) * Float(low - (highSet ? 0 : 4))
        case .q4_K, .q5_K:
            let j = k / 32, c = k / 64, l = k % 32
            let s = { byte(blk, 4 + $0) }
            let (sc, m): (UInt8, UInt8) = j < 4
                ? (s(j) & 63, s(j + 4) & 63)
                : ((s(j + 4) & 0xF) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4))
            let qsAt = type == .q4_K ? 16 : 48
            let packed = byte(blk, qsAt + 32 * c + l)
            var q = Int(j % 2 == 0 ? packed & 0xF : packed >> 4)
            if type == .q5_K { q += Int((byte(blk, 16 + l) >> UInt8(j)) & 1) * 16 }
            return fp16(blk, 0) * Float(sc) * Float(q) - fp16(blk, 2) * Float(m)
        case .q6_K:
            let (h, r) = (k / 128, k % 128)
            let quarter = r / 32, l = r % 32
            let lowByte = byte(blk, 64 * h + l + (quarter % 2) * 32)
            let low = quarter < 2 ? lowByte & 0xF : lowByte >> 4
            let high = (byte(blk, 128 + 32 * h + l) >> UInt8(2 * quarter)) & 3
            let q = Int(low | high << 4) - 32
            let sc = Int8(bitPattern: byte(blk, 192 + k / 16))
            return fp16(blk, 208) * Float(sc) * Float(q)
        default:
            fatalError("no element decoder for \(type.name)")
        }
    }
}

func dequantize(_ codec: any BlockCodec.Type, _ bytes: [UInt8], elements: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: elements)
    bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { codec.dequantizeRow(b, into: $0) } }
    return out
}

@Suite("Dequantization")
struct DequantizeTests {
    @Test("dequantize(fixture) equals an element-by-element decoder", arguments: Fixtures.tensorNames, fixtureTypes)
    func fixtureBytes(tensor: String, type: GGMLType) throws {
        let codec = try #require(BlockCodecs.codec(for: type))
        let input = try Fixtures.input(tensor)
        for suffix in [".bin", ".imatrix.bin"] where Fixtures.exists("\(tensor).\(type.name)\(suffix)") {
            let bytes = try Fixtures.bytes("\(tensor).\(type.name)\(suffix)")
            let values = dequantize(codec, bytes, elements: input.values.count)
            let blocks = bytes.count / type.bytesPerBlock
            var bad = 0
            for b in 0..<blocks {
                let blk = bytes[(b * type.bytesPerBlock)..<((b + 1) * type.bytesPerBlock)]
                for k in 0..<type.blockSize {
                    let expected = ElementDecoder.value(type, blk, k)
                    let actual = values[b * type.blockSize + k]
                    if expected.bitPattern != actual.bitPattern { bad += 1 }
                }
            }
            #expect(bad == 0, "\(tensor)\(suffix): \(bad) values differ")
        }
    }

    @Test("dequantize writes exactly the row and reads only its bytes", arguments: fixtureTypes)
    func bounds(type: GGMLType) throws {
        let codec = try #require(BlockCodecs.codec(for: type))
        let n = 2 * type.blockSize
        var rng = SplitMix64(seed: 9)
        let x = RowKind.gaussian.make(n, &rng)
        let bytes = DifferentialTests().quantize(codec as! any ReferenceQuantizing.Type, x, nil, reference: false)
        #expect(bytes.count == type.rowByteCount(elements: n))
        // A guard value after the row must survive.
        var out = [Float](repeating: 7, count: n + 1)
        bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBufferPointer { codec.dequantizeRow(b, into: UnsafeMutableBufferPointer(rebasing: $0[0..<n])) }
        }
        #expect(out[n] == 7)
        #expect(!out[0..<n].contains { $0.isNaN })
    }
}
