import Testing
import TensorCore

@Suite("FP8Format")
struct FP8FormatTests {
    @Test("E4M3 decode table: limits, NaN, subnormals")
    func e4m3Decode() {
        let f = FP8Format.e4m3
        #expect(f.decode(0x7E) == 448)
        #expect(f.decode(0xFE) == -448)
        #expect(f.decode(0x7F).isNaN && f.decode(0xFF).isNaN)
        #expect(f.decode(0x01) == 0x1p-9)
        #expect(f.decode(0x08) == 0x1p-6)
        #expect(f.decode(0x38) == 1)
        #expect(f.maxFinite == 448)
        #expect((0..<256).filter { f.decode(UInt8($0)).isNaN }.count == 2)
        #expect((0..<256).allSatisfy { !f.decode(UInt8($0)).isInfinite })
    }

    @Test("E5M2 decode table: limits, Inf, NaN")
    func e5m2Decode() {
        let f = FP8Format.e5m2
        #expect(f.decode(0x7B) == 57344)
        #expect(f.decode(0x7C) == .infinity)
        #expect(f.decode(0xFC) == -.infinity)
        #expect([0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF].allSatisfy { f.decode(UInt8($0)).isNaN })
        #expect(f.decode(0x01) == 0x1p-16)
        #expect(f.decode(0x3C) == 1)
    }

    @Test("encode(decode(c)) == c for every finite code", arguments: [FP8Format.e4m3, FP8Format.e5m2])
    func roundTrip(format: FP8Format) {
        for code in 0..<256 {
            let v = format.decode(UInt8(code))
            if v.isNaN { continue }
            #expect(format.encode(v) == UInt8(code), "code \(code)")
        }
    }

    @Test("saturation and rounding rules of algorithms.md §1.8")
    func saturationAndRounding() {
        let e4 = FP8Format.e4m3, e5 = FP8Format.e5m2
        #expect(e4.encode(464) == 0x7E)          // would round to 480, which does not exist: saturate
        #expect(e4.encode(1e6) == 0x7E)
        #expect(e4.encode(-.infinity) == 0xFE)
        #expect(e4.encode(.nan) == 0x7F)
        #expect(e5.encode(61440) == 0x7B)        // halfway to the next binade: saturates instead of Inf
        #expect(e5.encode(.infinity) == 0x7C)
        #expect(e4.encode(1.0625) == 0x38)       // tie between 1 and 1.125: even mantissa (1)
        #expect(e4.encode(1.1875) == 0x3A)       // tie between 1.125 and 1.25: even mantissa (1.25)
        #expect(e4.encode(0x1p-10) == 0x00)      // half the smallest subnormal: ties to even (0)
        #expect(e4.encode(0x1.8p-9) == 0x02)     // 1.5 subnormal steps: ties to even (2)
        #expect(e4.encode(-0.0) == 0x80)
    }

    @Test("encode picks the nearest code (brute force over a sweep)", arguments: [FP8Format.e4m3, FP8Format.e5m2])
    func nearest(format: FP8Format) {
        let finite = (0..<128).map { format.decode(UInt8($0)) }.filter { $0.isFinite }
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<5000 {
            let x = Float(rng.nextUnitDouble()) * format.maxFinite
            let code = format.encode(x)
            let chosen = format.decode(code)
            let best = finite.map { abs($0 - x) }.min()!
            #expect(abs(chosen - x) == best, "x = \(x)")
        }
    }
}
