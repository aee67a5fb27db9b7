import Testing
@testable import Reports

@Suite("Number text (deterministic, no libm)")
struct NumberTextTests {
    @Test("machine text is the shortest round-trip decimal, with inf/-inf/nan")
    func machine() {
        #expect(NumberText.machine(0.8) == "0.8")
        #expect(NumberText.machine(5) == "5.0")
        #expect(NumberText.machine(2.5e-5) == "2.5e-05")
        #expect(NumberText.machine(.infinity) == "inf" && NumberText.machine(-.infinity) == "-inf")
        #expect(NumberText.machine(.nan) == "nan")
        for x in [0.1 / 3, 1e-300, 123456.789, -7.25e12] { #expect(Double(NumberText.machine(x)) == x) }
    }

    @Test("scientific: %.3e style, rounding half away from zero on the decimal digits, with carry")
    func scientific() {
        #expect(NumberText.scientific(0.0247) == "2.470e-02")
        #expect(NumberText.scientific(12345.678) == "1.235e+04")
        #expect(NumberText.scientific(9.9996) == "1.000e+01")
        #expect(NumberText.scientific(-0.000123456) == "-1.235e-04")
        #expect(NumberText.scientific(3.90625e-3) == "3.906e-03")
        #expect(NumberText.scientific(1e-120) == "1.000e-120")
        #expect(NumberText.scientific(0) == "0")
        #expect(NumberText.scientific(0.5, significantDigits: 1) == "5e-01")
    }

    @Test("fixed: %.Nf style, including carries into a new digit and tiny values")
    func fixed() {
        #expect(NumberText.fixed(4.5, decimals: 2) == "4.50")
        #expect(NumberText.fixed(0.005, decimals: 2) == "0.01")
        #expect(NumberText.fixed(0.004, decimals: 2) == "0.00")
        #expect(NumberText.fixed(-0.004, decimals: 2) == "0.00")
        #expect(NumberText.fixed(999.996, decimals: 2) == "1000.00")
        #expect(NumberText.fixed(-2.675, decimals: 1) == "-2.7")
        #expect(NumberText.fixed(123, decimals: 0) == "123")
        #expect(NumberText.fixed(0.6, decimals: 0) == "1")
        #expect(NumberText.fixed(1e-9, decimals: 3) == "0.000")
        #expect(NumberText.fixed(2e15, decimals: 2) == "2.000e+15")
    }

    @Test("signed changes, byte counts and counts")
    func helpers() {
        #expect(NumberText.signed(0.125) { NumberText.fixed($0, decimals: 3) } == "+0.125")
        #expect(NumberText.signed(-0.125) { NumberText.fixed($0, decimals: 3) } == "-0.125")
        #expect(NumberText.signed(0) { NumberText.fixed($0, decimals: 1) } == "0.0")
        #expect(NumberText.bytes(512) == "512 B" && NumberText.bytes(1536) == "1.50 KiB")
        #expect(NumberText.bytes(5 * 1024 * 1024 + 1024 * 1024 / 4) == "5.25 MiB")
        #expect(NumberText.integer(-2) == "-2" && NumberText.integer(9.3e18) == "9.300e+18")
        #expect(NumberText.decibels(.infinity) == "lossless" && NumberText.decibels(-.infinity) == "-inf")
    }
}
