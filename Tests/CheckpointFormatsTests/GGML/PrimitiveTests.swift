import Testing
@testable import CheckpointFormats

@Suite("Numeric primitives")
struct PrimitiveTests {
    /// `Float16(x)` with the reference's NaN rule: the oracle for `fp16Bits`.
    static func oracle(_ x: Float) -> UInt16 {
        x.isNaN ? 0x7E00 | (UInt16(truncatingIfNeeded: x.bitPattern >> 16) & 0x8000) : Float16(x).bitPattern
    }

    @Test("fp32→fp16 equals Float16 at every rounding boundary")
    func fp16Boundaries() {
        var mismatches: [UInt32] = []
        for h in UInt16.min...UInt16.max {
            let value = Float(Float16(bitPattern: h))
            guard value.isFinite else { continue }
            let next = Float(Float16(bitPattern: h &+ 1))
            let mid = value + (next - value) / 2  // exact: fp16 values have 11 significant bits
            for base in [value, mid] where base.isFinite {
                for delta: Int32 in -2...2 {
                    let bits = UInt32(bitPattern: Int32(bitPattern: base.bitPattern) &+ delta)
                    let x = Float(bitPattern: bits)
                    if fp16Bits(x) != Self.oracle(x) { mismatches.append(bits) }
                }
            }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(5).map { String($0, radix: 16) })")
    }

    @Test("fp32→fp16 equals Float16 on a stride through all bit patterns, specials and NaN payloads")
    func fp16Sample() {
        var bits: UInt32 = 0x1234
        var bad = 0
        for _ in 0..<600_000 {
            let x = Float(bitPattern: bits)
            if fp16Bits(x) != Self.oracle(x) { bad += 1 }
            bits &+= 7_159  // odd stride: visits every exponent, sign and many mantissas
        }
        for x: Float in [0, -0, .infinity, -.infinity, .nan, -.nan, 65504, 65519.996, 65520, -65520, 1e-8, -6e-8,
                         .leastNonzeroMagnitude, .greatestFiniteMagnitude, Float(bitPattern: 0x7FA0_0001)] {
            if fp16Bits(x) != Self.oracle(x) { bad += 1 }
        }
        #expect(bad == 0)
    }

    @Test("nearest_int rounds half to even and reproduces the reference's out-of-range bits")
    func nearestIntMatchesReference() {
        #expect(nearestInt(2.5) == 2)
        #expect(nearestInt(3.5) == 4)
        #expect(nearestInt(-2.5) == -2)
        #expect(nearestInt(-0.5) == 0)
        #expect(nearestInt(4_194_303) == 4_194_303)
        for v: Float in [-7.49, -7.5, -7.51, 0.49999997, 1e-30, 31.5, 32.5] {
            #expect(nearestInt(v) == Int(v.rounded(.toNearestOrEven)))
        }
        // Out of range the reference returns the low mantissa bits of f + 1.5·2^23.
        #expect(nearestInt(.infinity) == -0x40_0000)
        #expect(nearestInt(.nan) == 0)
    }

    @Test("lane rounding equals scalar nearest_int with clamping, including out-of-range values")
    func laneRounding() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<2_000 {
            var v = SIMD8<Float>()
            for k in 0..<8 {
                switch rng.int(4) {
                case 0: v[k] = rng.uniform(-40, 40)
                case 1: v[k] = Float(rng.int(80) - 40) / 2  // exact halves
                case 2: v[k] = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
                default: v[k] = [Float.infinity, -.infinity, .nan, 1e30, -1e30, 5e6][rng.int(6)]
                }
            }
            let r = v.roundedClamped(-32, 31)
            for k in 0..<8 {
                #expect(r[k] == Float(Swift.max(-32, Swift.min(31, nearestInt(v[k])))), "\(v[k])")
            }
        }
    }
}
