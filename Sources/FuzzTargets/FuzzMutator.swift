import TensorCore

/// Seeded structure-blind mutations of seed inputs, for fuzzing without libFuzzer (the in-process
/// driver of `modelpress-fuzz mutate` and the short fuzz of `make test` on toolchains without it).
///
/// Each mutant applies 1–4 of: flip a bit, set a byte to an interesting value, overwrite 2/4/8 bytes
/// with an interesting little-endian integer (0, ±1, powers of two near the type limits, the input
/// size), delete, duplicate or insert a range, truncate, replace a run of ASCII digits with an
/// interesting decimal, or splice in part of another seed. Invariant: the same seed, seeds list and
/// call order give the same mutants on every machine (`SeededGenerator`), and a mutant is at most
/// `maximumLength` bytes.
public struct FuzzMutator {
    public var maximumLength: Int
    private var generator: SeededGenerator

    public init(seed: UInt64, maximumLength: Int = 1 << 16) {
        generator = SeededGenerator(seed: seed)
        self.maximumLength = maximumLength
    }

    static let interestingIntegers: [UInt64] = [
        0, 1, 2, 7, 8, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096, 65535, 65536,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62, UInt64(Int64.max), UInt64.max, UInt64.max - 1,
    ]
    static let interestingDecimals = ["0", "1", "-1", "2", "63", "64", "65", "4294967295", "4294967296", "9223372036854775807",
                                      "9223372036854775808", "18446744073709551616", "1e308", "1000000", "100000000", "0.5"]

    private mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(generator.next() % UInt64(n)) }

    /// A mutant of `input`; `others` are other seeds to splice from.
    public mutating func mutate(_ input: [UInt8], others: [[UInt8]] = []) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) { step(&bytes, others: others) }
        if bytes.count > maximumLength { bytes.removeLast(bytes.count - maximumLength) }
        return bytes
    }

    private mutating func step(_ bytes: inout [UInt8], others: [[UInt8]]) {
        let kind = below(10)
        if bytes.isEmpty && kind != 5 && kind != 8 { bytes.append(UInt8(truncatingIfNeeded: generator.next())); return }
        switch kind {
        case 0: bytes[below(bytes.count)] ^= 1 << UInt8(below(8))
        case 1: bytes[below(bytes.count)] = [0, 1, 0x7F, 0x80, 0xFF, UInt8(truncatingIfNeeded: generator.next())][below(6)]
        case 2, 3:
            var value = [UInt64(bytes.count), UInt64(bytes.count) &- 8, generator.next() % 300][below(3)]
            if below(2) == 0 { value = Self.interestingIntegers[below(Self.interestingIntegers.count)] }
            let width = [2, 4, 8][below(3)]
            let at = below(bytes.count)
            for k in 0..<width where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        case 4:
            let at = below(bytes.count)
            bytes.removeSubrange(at..<min(bytes.count, at + 1 + below(16)))
        case 5:
            let at = below(bytes.count + 1)
            bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: generator.next()) }, at: at)
        case 6:
            let from = below(bytes.count), length = 1 + below(min(64, bytes.count - from))
            bytes.insert(contentsOf: bytes[from..<(from + length)], at: below(bytes.count + 1))
        case 7: bytes.removeLast(below(bytes.count))
        case 8:
            guard let other = others.isEmpty ? nil : others[below(others.count)], !other.isEmpty else { return }
            let from = below(other.count), length = 1 + below(other.count - from)
            let at = below(bytes.count + 1)
            bytes.replaceSubrange(at..<min(bytes.count, at + length), with: other[from..<(from + length)])
        default: replaceDigits(&bytes)
        }
    }

    /// Replaces a run of ASCII digits (a JSON number, a recipe value) with an interesting decimal.
    private mutating func replaceDigits(_ bytes: inout [UInt8]) {
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        let start = below(bytes.count)
        guard let first = bytes[start...].firstIndex(where: isDigit) ?? bytes[..<start].firstIndex(where: isDigit) else { return }
        let end = bytes[first...].firstIndex(where: { !isDigit($0) }) ?? bytes.count
        bytes.replaceSubrange(first..<end, with: Array(Self.interestingDecimals[below(Self.interestingDecimals.count)].utf8))
    }
}
