import Foundation
import Testing
@testable import CheckpointFormats

/// Randomised fast-vs-reference comparison on rows stitched together from every `RowKind` at
/// random scales. A few rows by default; set `GGML_CODECS_FUZZ_ROWS` for a long run, e.g.
/// `GGML_CODECS_FUZZ_ROWS=20000 swift test -c release -Xswiftc -enable-testing --filter Fuzz`.
@Suite("Fuzz: fast paths equal the scalar reference ports")
struct FuzzTests {
    static let rows = ProcessInfo.processInfo.environment["GGML_CODECS_FUZZ_ROWS"].flatMap(Int.init) ?? 6

    @Test("random mixed rows", arguments: DifferentialTests.codecs)
    func fuzz(type: GGMLType) throws {
        let codec = try #require(BlockCodecs.codec(for: type) as? any ReferenceQuantizing.Type)
        var rng = SplitMix64(seed: 0xF022 &+ UInt64(type.rawValue))
        let kinds = RowKind.allCases
        var failures = 0
        for row in 0..<Self.rows {
            let n = 256 * (1 + rng.int(4))
            var x = [Float](repeating: 0, count: n)
            for start in stride(from: 0, to: n, by: 32) {
                let piece = kinds[rng.int(kinds.count)].make(32, &rng)
                let scale = rng.int(4) == 0 ? Float(pow(10.0, Double(rng.int(60) - 40))) : 1
                for j in 0..<32 { x[start + j] = piece[j] * scale }
            }
            let qw = rng.int(3) == 0 ? nil : makeImportance(n, rng.int(3), &rng)
            let differential = DifferentialTests()
            let fast = differential.quantize(codec, x, qw, reference: false)
            let slow = differential.quantize(codec, x, qw, reference: true)
            if fast != slow {
                failures += 1
                if failures <= 3, let report = firstMismatch(expected: slow, actual: fast, type: type, columns: n) {
                    Issue.record("\(type.name) row \(row)\(qw == nil ? "" : " +imatrix"): \(report)")
                }
            }
        }
        #expect(failures == 0, "\(failures) of \(Self.rows) rows differ")
    }
}
