import Foundation
import Testing
import TensorCore
@testable import Passes

@Suite("NF4Quantizer")
struct NF4QuantizerTests {
    static func gaussian(count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return rng.gaussianFloats(count: count)
    }

    /// ε = ||W − Ŵ||² / ||W||² (algorithms.md §1.5).
    static func epsilon(_ w: [Float], _ r: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for (a, b) in zip(w, r) { num += Double(a - b) * Double(a - b); den += Double(a) * Double(a) }
        return num / den
    }

    @Test("the NF4 table is bitsandbytes' stored table bit for bit")
    func codeTable() {
        // FP32 bit patterns of algorithms.md §1.7's decimals (computed independently with numpy).
        let expected: [UInt32] = [
            0xBF80_0000, 0xBF32_39B1, 0xBF06_6B30, 0xBECA_32A0, 0xBE91_A24D, 0xBE3D_353F, 0xBDBA_7871, 0x0000_0000,
            0x3DA2_FAFF, 0x3E24_CAE3, 0x3E7C_04DD, 0x3EAD_033A, 0x3EE1_A4B8, 0x3F10_07AB, 0x3F39_13B3, 0x3F80_0000,
        ]
        #expect(NF4Quantizer.codeValues.map(\.bitPattern) == expected)
        #expect(NF4Quantizer.codeValues[Int(NF4Quantizer.zeroCode)] == 0)
        #expect(NF4Quantizer.codeThresholds.count == 15)
        // bitsandbytes' dQuantizeNF4 first split: 0.03979014977812767.
        #expect(NF4Quantizer.codeThresholds[7] == Float(0.03979014977812767))
    }

    @Test("the dynamic map matches the published bitsandbytes create_dynamic_map(signed=True) table")
    func dynamicMap() {
        let map = NF4Quantizer.dynamicMap
        #expect(map.count == 256)
        #expect(zip(map, map.dropFirst()).allSatisfy { $0 < $1 })
        let spots: [(Int, UInt32)] = [(0, 0xBF7E_3333), (18, 0xBF3D_6666), (20, 0xBF36_3334), (64, 0xBDC9_EB85),
                                      (126, 0xB513_A3B7), (127, 0), (128, 0x3513_A3B7), (190, 0x3DC9_EB85),
                                      (254, 0x3F7E_3333), (255, 0x3F80_0000)]
        for (i, bits) in spots { #expect(map[i].bitPattern == bits, "index \(i)") }
        // FNV-1a (64-bit, one step per 32-bit pattern) of the published 256-value table.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in map { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
        #expect(h == 0x690C_A6AD_558A_2475)
    }

    @Test("known answers: extremes, zero, midpoints (ties go down) and nibble order")
    func knownAnswers() {
        let a: Float = 2  // a power of two: x·(1/a) is exact
        var block = [Float](repeating: 0, count: 64)
        var expected = [UInt8](repeating: 7, count: 64)
        block[0] = a; expected[0] = 15
        block[1] = 0; expected[1] = 7
        block[2] = -a; expected[2] = 0
        for (k, m) in NF4Quantizer.codeThresholds.enumerated() {
            block[3 + 2 * k] = m * a; expected[3 + 2 * k] = UInt8(k)
            block[4 + 2 * k] = m.nextUp * a; expected[4 + 2 * k] = UInt8(k + 1)
        }
        let q = NF4Quantizer().quantize(block, shape: Shape([64]))
        #expect((0..<64).map { q.code(at: $0) } == expected)
        #expect(q.packedCodes[0] == 0xF7)  // element 0 (15) high, element 1 (7) low
        #expect(q.packedCodes[1] == 0x00)  // element 2 (0) high, element 3 (tie at m_0 → 0) low
        #expect(q.packedCodes[2] == 0x11)
        #expect(q.scales == .plain([2]))
        let r = q.dequantized()
        #expect(r[0] == 2 && r[1] == 0 && r[2] == -2)
        for i in 0..<64 { #expect(r[i] == NF4Quantizer.codeValues[Int(expected[i])] * a) }
    }

    @Test("zeros stay exactly zero, with and without double quantization", arguments: [false, true])
    func zerosStayZero(doubleQuantization: Bool) {
        var w = Self.gaussian(count: 64 * 300, seed: 3)
        for i in stride(from: 0, to: w.count, by: 3) { w[i] = 0 }
        for i in 128..<192 { w[i] = 0 }  // an all-zero block
        let q = NF4Quantizer(doubleQuantization: doubleQuantization).quantize(w, shape: Shape([150, 128]))
        let r = q.dequantized()
        for i in w.indices where w[i] == 0 { #expect(r[i] == 0 && q.code(at: i) == 7) }
    }

    @Test("|x − x̂| ≤ absmax · (larger half-gap around the chosen code) without double quantization")
    func errorBound() {
        let w = Self.gaussian(count: 64 * 512, seed: 11).map { $0 * 0.05 }
        let q = NF4Quantizer().quantize(w, shape: Shape([256, 128]))
        let r = q.dequantized()
        let c = NF4Quantizer.codeValues
        let absmax = q.absmax()
        var worst: Float = 0
        for i in w.indices {
            let k = Int(q.code(at: i))
            let below = k > 0 ? c[k] - c[k - 1] : 0
            let above = k < 15 ? c[k + 1] - c[k] : 0
            let a = absmax[i / 64]
            let bound = a * max(below, above) / 2 * (1 + 1e-5) + a * 2e-7
            #expect(abs(w[i] - r[i]) <= bound)
            worst = max(worst, abs(w[i] - r[i]) / a)
        }
        #expect(worst > 0.1)  // the bound is reached in practice (largest half-gap ≈ 0.152)
    }

    @Test("ε on N(0,1) with 64-blocks matches the 8.46e−3 anchor; double quantization costs < 2%")
    func epsilonAnchor() {
        let w = Self.gaussian(count: 512 * 1024, seed: 7)
        let shape = Shape([512, 1024])
        let plain = NF4Quantizer().quantize(w, shape: shape)
        let dq = NF4Quantizer(doubleQuantization: true).quantize(w, shape: shape)
        let e = Self.epsilon(w, plain.dequantized())
        let eDQ = Self.epsilon(w, dq.dequantized())
        #expect(abs(e - 8.46e-3) / 8.46e-3 < 0.05, "ε = \(e)")
        #expect(abs(eDQ - e) / e < 0.02, "ε = \(e), with DQ \(eDQ)")
        // Same NF4 codes either way: only the scales differ.
        #expect(plain.packedCodes == dq.packedCodes)

        // The reconstructed absmax: |a − â| ≤ absmax2 · (half the largest dynamic-map gap) + rounding.
        guard case .plain(let exact) = plain.scales,
              case .doubleQuantized(_, let second, let offset, let block2) = dq.scales else {
            Issue.record("unexpected scale storage"); return
        }
        let map = NF4Quantizer.dynamicMap
        let maxGap = zip(map, map.dropFirst()).map { $1 - $0 }.max()!
        let rebuilt = dq.absmax()
        var worstRelative: Float = 0
        for b in exact.indices {
            let bound = second[b / block2] * maxGap / 2 * (1 + 1e-5) + abs(offset) * 2e-7 + exact[b] * 2e-7
            #expect(abs(exact[b] - rebuilt[b]) <= bound)
            worstRelative = max(worstRelative, abs(exact[b] - rebuilt[b]) / exact[b])
        }
        #expect(worstRelative < 1e-2, "worst relative absmax error \(worstRelative)")  // ≈ 6.9e−3 at seed 7
        #expect(second.count == (exact.count + 255) / 256)
    }

    @Test("bits per weight: 4.5 without, ≈ 4.127 with double quantization")
    func bitsPerWeight() {
        let n = 64 * 256 * 4
        let w = Self.gaussian(count: n, seed: 5)
        let plain = NF4Quantizer().quantize(w, shape: Shape([256, 256]))
        let dq = NF4Quantizer(doubleQuantization: true).quantize(w, shape: Shape([256, 256]))
        #expect(plain.bitsPerWeight == 4.5)
        #expect(dq.bitsPerWeight == 4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / Double(n))
        #expect(abs(dq.bitsPerWeight - 4.127) < 1e-3)
        #expect(plain.packedCodes.count == n / 2)
    }

    @Test("check(shape:) rejects element counts that are not a multiple of the block size")
    func check() {
        #expect(NF4Quantizer().check(shape: Shape([3, 64])) == nil)
        #expect(NF4Quantizer().check(shape: Shape([10, 10])) != nil)
        #expect(NF4Quantizer(blockSize: 32).check(shape: Shape([2, 48])) == nil)
    }
}
