/// Deterministic text for the numbers in reports, identical on every platform (no libm, no locale).
///
/// Three forms:
/// - `machine(x)`: the shortest decimal that reads back as exactly `x` (Swift's `Double.description`,
///   e.g. `0.8`, `2.5e-05`, `5.0`), used in JSON and CSV. Non-finite values are `inf`, `-inf`, `nan`
///   (CSV only; JSON writes `null`, see `CompressionReport`).
/// - `scientific(x, significantDigits: 4)`: `2.470e-02`, as C's `%.3e` prints it.
/// - `fixed(x, decimals: 2)`: `4.50`, as C's `%.2f` prints it.
///
/// The human forms round the shortest decimal of `x` half away from zero on its decimal digits, so
/// they never depend on binary rounding of an intermediate product.
enum NumberText {
    /// Shortest round-trip text, or `inf` / `-inf` / `nan`.
    static func machine(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return x.description
    }

    /// `d.ddd` + `e` + sign + at least two exponent digits; `0` for zero, `inf`/`-inf`/`nan` otherwise.
    static func scientific(_ x: Double, significantDigits: Int = 4) -> String {
        guard x.isFinite else { return machine(x) }
        guard var decimal = DecimalDigits(x) else { return "0" }
        decimal.round(toSignificant: max(1, significantDigits))
        var out = decimal.negative ? "-" : ""
        out += String(decimal.digits[0])
        if decimal.digits.count > 1 { out += "." + decimal.digits.dropFirst().map(String.init).joined() }
        let e = decimal.exponent
        let magnitude = String(abs(e))
        out += "e" + (e < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
        return out
    }

    /// `x` with exactly `decimals` digits after the point (none and no point when `decimals` is 0).
    /// Values of 1e15 and above switch to `scientific`.
    static func fixed(_ x: Double, decimals: Int) -> String {
        guard x.isFinite else { return machine(x) }
        guard x.magnitude < 1e15 else { return scientific(x) }
        let decimals = max(0, decimals)
        guard let decimal = DecimalDigits(x) else { return decimals == 0 ? "0" : "0." + String(repeating: "0", count: decimals) }
        // Integer digits of |x| * 10^decimals: the leading digit sits at power `exponent + decimals`.
        let top = decimal.exponent + decimals
        var units: [UInt8] = []
        var roundUp = false
        if top >= 0 {
            for i in 0...top { units.append(i < decimal.digits.count ? decimal.digits[i] : 0) }
            roundUp = top + 1 < decimal.digits.count && decimal.digits[top + 1] >= 5
        } else if top == -1 {
            roundUp = decimal.digits[0] >= 5
        }
        if roundUp { DecimalDigits.increment(&units) }
        if units.isEmpty { units = [0] }
        if units.count <= decimals { units = [UInt8](repeating: 0, count: decimals + 1 - units.count) + units }
        let text = units.map(String.init).joined()
        let split = text.index(text.endIndex, offsetBy: -decimals)
        let body = decimals == 0 ? text : text[..<split] + "." + text[split...]
        let isZero = units.allSatisfy { $0 == 0 }
        return (decimal.negative && !isZero ? "-" : "") + body
    }

    /// `fixed` or `scientific` with an explicit `+` on positive values (for changes in a diff).
    static func signed(_ x: Double, _ format: (Double) -> String) -> String {
        let text = format(x)
        return x > 0 && !text.hasPrefix("+") ? "+" + text : text
    }

    /// An integral count held in a `Double`, without a fraction: `1024` (scientific beyond ±2⁶², where
    /// a conversion to `Int` could trap).
    static func integer(_ x: Double) -> String {
        x.isFinite && x.magnitude < 0x1p62 ? String(Int(x.rounded())) : scientific(x)
    }

    /// An error or magnitude for people: `2.470e-02`, `0` when exact.
    static func error(_ x: Double) -> String { scientific(x, significantDigits: 4) }
    /// Decibels for people: `32.15`, `lossless` for `+∞`.
    static func decibels(_ x: Double) -> String { x == .infinity ? "lossless" : fixed(x, decimals: 2) }
    /// A cosine similarity for people: `0.999876`.
    static func cosine(_ x: Double) -> String { fixed(x, decimals: 6) }
    /// Bits per weight for people: `4.500`.
    static func bits(_ x: Double) -> String { fixed(x, decimals: 3) }
    /// A fraction as a percentage: `50.00%`.
    static func percent(_ x: Double) -> String { x.isFinite ? fixed(100 * x, decimals: 2) + "%" : machine(x) }
    /// A compression ratio: `3.56x`.
    static func ratio(_ x: Double) -> String { x.isFinite ? fixed(x, decimals: 2) + "x" : machine(x) }

    /// Binary-unit byte count: `512 B`, `1.50 KiB`, `4.71 MiB`.
    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : fixed(value, decimals: 2) + " " + units[unit]
    }
}

/// The decimal digits of a finite non-zero double: value = ±d0.d1d2… × 10^exponent, no leading or
/// trailing zero digits, taken from the shortest round-trip text.
struct DecimalDigits {
    var negative: Bool
    var digits: [UInt8]
    var exponent: Int

    /// Nil for zero (either sign) and for non-finite values.
    init?(_ x: Double) {
        guard x.isFinite, x != 0 else { return nil }
        let text = x.magnitude.description
        var mantissa = Substring(text)
        var power = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            power = Int(text[text.index(after: e)...]) ?? 0
        }
        var all: [UInt8] = []
        var integerDigits = 0
        var seenPoint = false
        for c in mantissa.utf8 {
            if c == UInt8(ascii: ".") { seenPoint = true; continue }
            all.append(c &- 0x30)
            if !seenPoint { integerDigits += 1 }
        }
        guard let first = all.firstIndex(where: { $0 != 0 }) else { return nil }
        let last = all.lastIndex(where: { $0 != 0 })!
        negative = x < 0
        digits = Array(all[first...last])
        exponent = integerDigits - first - 1 + power
    }

    /// Rounds to `count` significant digits (half away from zero), padding with zeros.
    mutating func round(toSignificant count: Int) {
        if digits.count > count {
            let up = digits[count] >= 5
            digits.removeLast(digits.count - count)
            if up {
                let before = digits.count
                DecimalDigits.increment(&digits)
                if digits.count > before { digits.removeLast(); exponent += 1 }
            }
        }
        if digits.count < count { digits += [UInt8](repeating: 0, count: count - digits.count) }
    }

    /// Adds one unit in the last place of a big-endian digit array, growing it on carry out.
    static func increment(_ digits: inout [UInt8]) {
        var i = digits.count - 1
        while i >= 0 {
            if digits[i] < 9 { digits[i] += 1; return }
            digits[i] = 0
            i -= 1
        }
        digits.insert(1, at: 0)
    }
}
