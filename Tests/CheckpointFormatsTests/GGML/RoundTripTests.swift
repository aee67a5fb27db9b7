import Testing
@testable import CheckpointFormats

/// Quantize → dequantize error bounds derived from each format's arithmetic, on seeded rows.
@Suite("Round-trip error bounds")
struct RoundTripTests {
    static let kinds: [RowKind] = [.gaussian, .heavyTailed, .uniform, .outliers, .allPositive, .tiny, .mixedScales]

    /// Absolute error of an fp16 value near `v` (normal: relative 2^-11; subnormal: 2^-25).
    static func fp16Error(_ v: Float) -> Float { Swift.max(abs(v) * 0x1p-11, 0x1p-25) }

    static func roundTrip(_ type: GGMLType, _ x: [Float], _ qw: [Float]?) -> (bytes: [UInt8], y: [Float]) {
        let codec = BlockCodecs.codec(for: type)! as! any ReferenceQuantizing.Type
        let bytes = DifferentialTests().quantize(codec, x, qw, reference: false)
        return (bytes, dequantize(codec, bytes, elements: x.count))
    }

    /// Legacy types without importance: `|x - y| ≤ d/2` plus the fp16 rounding of the stored
    /// scale/min, except Q4_0/Q5_0's clipped top code (≤ d).
    @Test("legacy blocks: within half a step", arguments: [GGMLType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1], kinds)
    func legacy(type: GGMLType, kind: RowKind) {
        var rng = SplitMix64(seed: 31 &+ UInt64(type.rawValue))
        let x = kind.make(1024, &rng)
        let (bytes, y) = Self.roundTrip(type, x, nil)
        let nmax: Float = [GGMLType.q8_0: 127, .q4_0: 8, .q5_0: 16, .q4_1: 15, .q5_1: 31][type]!
        for b in 0..<(x.count / 32) {
            let blk = bytes[(b * type.bytesPerBlock)..<((b + 1) * type.bytesPerBlock)]
            let signedD = ElementDecoder.fp16(blk, 0)
            let d = abs(signedD)
            let m = type == .q4_1 || type == .q5_1 ? ElementDecoder.fp16(blk, 2) : 0
            for k in 0..<32 {
                let i = 32 * b + k
                // Q4_0/Q5_0 store codes 0..<2·nmax for values -nmax·d..<nmax·d; the top code
                // absorbs everything up to nmax·d, so it may be a whole step away.
                let symmetric = type == .q4_0 || type == .q5_0
                let clippedTop = symmetric && d > 0 && (y[i] / signedD).rounded() == nmax - 1
                let step = clippedTop ? d : d / 2
                let bound = step + (nmax + 1) * Self.fp16Error(d) + Self.fp16Error(m) + abs(x[i]) * 1e-6
                #expect(abs(x[i] - y[i]) <= bound, "\(type.name) \(kind) block \(b) element \(k): x \(x[i]) y \(y[i]) d \(d)")
                if abs(x[i] - y[i]) > bound { return }
            }
        }
    }

    /// K-quants (with and without importance) end by re-quantizing every sub-block with its stored
    /// scale `dd` (and offset `dm`): `q = clamp(round((x + dm)/dd))`. So an interior code is within
    /// `dd/2` of `x`, and a code at either clamp end lies on the correct side of `x`.
    @Test("K-quants: re-quantization is within half a step", arguments: [GGMLType.q2_K, .q3_K, .q4_K, .q5_K, .q6_K], kinds)
    func kQuants(type: GGMLType, kind: RowKind) {
        var rng = SplitMix64(seed: 57 &+ UInt64(type.rawValue))
        let x = kind.make(1024, &rng)
        for useImportance in [false, true] {
            let qw = useImportance ? makeImportance(1024, 0, &rng) : nil
            let (bytes, y) = Self.roundTrip(type, x, qw)
            for i in 0..<x.count {
                let blk = bytes[((i / 256) * type.bytesPerBlock)..<((i / 256 + 1) * type.bytesPerBlock)]
                let (dd, dm, lo, hi) = Self.subBlockScale(type, blk, i % 256)
                if dd == 0 { continue }
                let code = ((y[i] + dm) / dd).rounded()  // the integer code, recovered
                let tolerance = abs(dd) * 0.5 * (1 + 1e-5) + (abs(x[i]) + abs(dm)) * 1e-6
                let label = "\(type.name) \(kind)\(useImportance ? " +imatrix" : "") element \(i): x \(x[i]) y \(y[i]) dd \(dd)"
                if code > lo && code < hi {
                    #expect(abs(x[i] - y[i]) <= tolerance, "\(label)")
                } else if (code == lo) == (dd > 0) {
                    #expect(x[i] <= y[i] + tolerance, "\(label) (low clamp)")
                } else {
                    #expect(x[i] >= y[i] - tolerance, "\(label) (high clamp)")
                }
            }
        }
    }

    /// The effective step `dd`, offset `dm` and code range of element `k`'s sub-block, such that
    /// `y = dd·code - dm`.
    static func subBlockScale(_ type: GGMLType, _ blk: ArraySlice<UInt8>, _ k: Int) -> (Float, Float, Float, Float) {
        let byte = { ElementDecoder.byte(blk, $0) }
        switch type {
        case .q2_K:
            let sc = byte(k / 16)
            return (ElementDecoder.fp16(blk, 80) * Float(sc & 0xF), ElementDecoder.fp16(blk, 82) * Float(sc >> 4), 0, 3)
        case .q3_K:
            let j = k / 16
            let low = j < 8 ? byte(96 + j) & 0xF : byte(96 + j - 8) >> 4
            let sc = Int(low | ((byte(104 + j % 4) >> UInt8(2 * (j / 4))) & 3) << 4) - 32
            return (ElementDecoder.fp16(blk, 108) * Float(sc), 0, -4, 3)
        case .q4_K, .q5_K:
            let j = k / 32
            let s = { byte(4 + $0) }
            let (sc, m): (UInt8, UInt8) = j < 4
                ? (s(j) & 63, s(j + 4) & 63)
                : ((s(j + 4) & 0xF) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4))
            return (ElementDecoder.fp16(blk, 0) * Float(sc), ElementDecoder.fp16(blk, 2) * Float(m), 0, type == .q4_K ? 15 : 31)
        default:
            return (ElementDecoder.fp16(blk, 208) * Float(Int8(bitPattern: byte(192 + k / 16))), 0, -32, 31)
        }
    }

    @Test("an all-zero row round-trips to exact zeros with zero scales", arguments: fixtureTypes)
    func allZero(type: GGMLType) {
        for qw in [nil, [Float](repeating: 1, count: 512)] {
            let (bytes, y) = Self.roundTrip(type, [Float](repeating: 0, count: 512), qw)
            #expect(y.allSatisfy { $0 == 0 }, "\(type.name)")
            // Every block's fp16 scale (and min) field is zero. Q4_0/Q5_0 without importance store
            // -0 (0x8000): `quantize_row_q4_0_ref` computes d = max / -8 with max = +0 (the
            // importance path's make_qx_quants returns +0).
            let scaleOffsets: [Int] = switch type {
            case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
            case .q2_K: [80, 82]
            case .q3_K: [108]
            case .q6_K: [208]
            default: [0]
            }
            let expectedBits: UInt16 = qw == nil && (type == .q4_0 || type == .q5_0) ? 0x8000 : 0
            for b in 0..<(bytes.count / type.bytesPerBlock) {
                for o in scaleOffsets {
                    let at = b * type.bytesPerBlock + o
                    let bits = UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
                    #expect(bits == expectedBits, "\(type.name) block \(b) offset \(o): \(String(bits, radix: 16))")
                }
            }
        }
    }

    /// A constant row is fitted exactly up to the fp16 rounding of the scales: relative 2^-9 while
    /// they are normal fp16 numbers; a small constant (3e-3) makes the K-quants' super-block scale
    /// (≈ value/4096 for Q6_K) subnormal, where fp16 has an absolute precision of 2^-25 per unit
    /// of code (codes times sub-scales reach at most 4096).
    @Test("an all-equal row round-trips within fp16 precision", arguments: fixtureTypes)
    func allEqual(type: GGMLType) {
        for value: Float in [0.37, -1.25, 42, 3e-3] {
            for qw in [nil, [Float](repeating: 2, count: 512)] {
                let (_, y) = Self.roundTrip(type, [Float](repeating: value, count: 512), qw)
                let worst = y.map { abs($0 - value) }.max()!
                #expect(worst <= abs(value) * 0x1p-9 + 4096 * 0x1p-25, "\(type.name) value \(value) qw \(qw != nil): error \(worst)")
            }
        }
    }

    @Test("a single outlier is reconstructed closely and does not leak into other blocks", arguments: fixtureTypes)
    func singleOutlier(type: GGMLType) {
        var rng = SplitMix64(seed: 4)
        var x = RowKind.gaussian.make(1024, &rng)
        let at = 300
        x[at] = 10
        let (_, y) = Self.roundTrip(type, x, nil)
        let tolerance: Float = type.blockSize == 32 ? 0x1p-9 : 0.05
        #expect(abs(y[at] - 10) <= 10 * tolerance, "\(type.name): outlier came back as \(y[at])")
        // Elements outside the outlier's block keep their normal accuracy.
        let block = at / type.blockSize
        var err: Float = 0, norm: Float = 0
        for i in 0..<x.count where i / type.blockSize != block {
            err += (x[i] - y[i]) * (x[i] - y[i])
            norm += x[i] * x[i]
        }
        #expect((err / norm).squareRoot() < 0.4, "\(type.name): relative error elsewhere \((err / norm).squareRoot())")
    }
}
