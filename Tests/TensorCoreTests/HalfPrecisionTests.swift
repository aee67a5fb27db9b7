import Testing
import TensorCore

@Suite("HalfPrecision")
struct HalfPrecisionTests {
    @Test("f16 known answers, ties to even")
    func halfKnownAnswers() {
        #expect(HalfPrecision.halfBits(1.0) == 0x3C00)
        #expect(HalfPrecision.halfBits(-2.0) == 0xC000)
        #expect(HalfPrecision.halfBits(65504) == 0x7BFF)
        #expect(HalfPrecision.halfBits(65520) == 0x7C00)          // halfway to the next binade: rounds to Inf
        #expect(HalfPrecision.halfBits(0x1p-24) == 0x0001)        // smallest subnormal
        #expect(HalfPrecision.halfBits(0x1p-25) == 0x0000)        // tie between 0 and 2^-24: even (0)
        #expect(HalfPrecision.halfBits(0x1.8p-24) == 0x0002)      // tie between 1 and 2: even (2)
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.
        #expect(HalfPrecision.halfBits(1 + 0x1p-11) == 0x3C00)
        // 1 + 3·2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: even mantissa is 2.
        #expect(HalfPrecision.halfBits(1 + 3 * 0x1p-11) == 0x3C02)
        #expect(HalfPrecision.halfBits(.nan) == 0x7E00)
        #expect(HalfPrecision.halfBits(-.nan) == 0xFE00)
        #expect(HalfPrecision.halfBits(-0.0) == 0x8000)
    }

    @Test("bf16 known answers, ties to even")
    func bfloat16KnownAnswers() {
        #expect(HalfPrecision.bfloat16Bits(1.0) == 0x3F80)
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)   // tie, even stays
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)   // tie, odd rounds up
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)   // above the tie
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)   // max float rounds to Inf
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)   // signalling NaN made quiet
        #expect(HalfPrecision.bfloat16Bits(.infinity) == 0x7F80)
        #expect(HalfPrecision.bfloat16Bits(-0.0) == 0x8000)
    }

    @Test("widening is exact and narrowing round-trips every half and bf16 value")
    func exhaustiveRoundTrip() {
        for bits in UInt16.min...UInt16.max {
            let h = HalfPrecision.float(halfBits: bits)
            if h.isNaN { continue }
            #expect(HalfPrecision.halfBits(h) == bits)
            let b = HalfPrecision.float(bfloat16Bits: bits)
            if b.isNaN { continue }
            #expect(HalfPrecision.bfloat16Bits(b) == bits)
        }
    }

    @Test("bulk bf16 encoder (SIMD) equals the scalar rule on seeded values")
    func bulkEqualsScalar() throws {
        var rng = SeededGenerator(seed: 7)
        var values = (0..<1000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        values += [.nan, .infinity, -.infinity, 0, -0.0, Float(bitPattern: 0x3F80_8000)]
        let tensor = try DenseTensor(floats: values, shape: Shape([values.count]), dtype: .bf16)
        let bytes = tensor.storage.array
        for (i, v) in values.enumerated() {
            let stored = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
            #expect(stored == HalfPrecision.bfloat16Bits(v), "element \(i)")
        }
    }
}
