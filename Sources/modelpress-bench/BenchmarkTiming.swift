import Foundation

/// Runs `body` `repetitions` times and returns the median wall time in seconds.
func medianSeconds(repetitions: Int, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<repetitions {
        let start = ContinuousClock.now
        try body()
        let d = ContinuousClock.now - start
        times.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
    }
    times.sort()
    return times[times.count / 2]
}

/// `12.34` with two decimals.
func fixed(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

/// Prevents the optimizer from discarding a computed value.
@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }
