import Foundation
import Testing
import CheckpointFormats
import Reports

@Suite("Report diff")
struct ReportDiffTests {
    typealias F = ReportFixtures

    /// Relative errors are powers of two (and sums of them), so every change below is exact.
    static let a = F.report([
        F.record("p", relativeError: 0.125), F.record("q", relativeError: 0.25), F.record("r", relativeError: 0.5),
        F.record("gone", relativeError: 0.1), F.record("s", relativeError: 0.0625), F.record("t", relativeError: 0.5),
        F.record("u", relativeError: 0.5),
    ], output: "a.gguf")
    static let b = F.report([
        F.record("new", relativeError: 0.2), F.record("u", relativeError: .infinity), F.record("t", relativeError: 0.625),
        F.record("s", relativeError: 0.5625, bytesOut: 6, encoding: "Q3_K"), F.record("r", relativeError: 0.375),
        F.record("q", relativeError: 0.25), F.record("p", relativeError: 0.25),
    ], output: "b.gguf")

    @Test("matches by name, sorts by the largest relative-error increase, ties by name")
    func ordering() {
        let diff = ReportDiff(from: Self.a, to: Self.b)
        #expect(diff.changes.map(\.name) == ["u", "s", "p", "t", "q", "r"])
        #expect(diff.changes.map(\.relativeErrorChange) == [.infinity, 0.5, 0.125, 0.125, 0, -0.125])
        #expect(diff.onlyInA.map(\.name) == ["gone"])
        #expect(diff.onlyInB.map(\.name) == ["new"])
        let s = diff.changes[1]
        #expect(s.change(.outputByteCount) == -2)
        // SQNR = −20·log10(relative error), so it fell by 20·log10(0.5625 / 0.0625) = 20·log10(9) dB.
        #expect(abs(s.change(.sqnrDecibels)! + 20 * log10(9.0)) < 1e-9)
        #expect(s.change(.outputRelativeError) == nil)
    }

    @Test("regressions(above:) is a strict, absolute increase of relative_error")
    func regressions() {
        let diff = ReportDiff(from: Self.a, to: Self.b)
        #expect(diff.regressions(above: 0.125).map(\.name) == ["u", "s"])
        #expect(diff.regressions(above: 0.1).map(\.name) == ["u", "s", "p", "t"])
        #expect(diff.regressions(above: 0).map(\.name) == ["u", "s", "p", "t"])
        #expect(diff.regressions(above: 1).map(\.name) == ["u"])
        #expect(ReportDiff(from: Self.a, to: Self.a).regressions(above: 0).isEmpty)
    }

    @Test("changes: equal infinities are no change; a NaN error sorts first and is a regression")
    func specialChanges() {
        #expect(ReportDiff.change(from: .infinity, to: .infinity) == 0)
        #expect(ReportDiff.change(from: 1, to: 0.25) == -0.75)
        #expect(ReportDiff.change(from: .nan, to: .nan) == 0)
        let a = F.report([F.record("x", relativeError: 0.1), F.record("y", relativeError: 0.1)], output: "a")
        let b = F.report([F.record("x", relativeError: 0.9), F.record("y", relativeError: .nan)], output: "b")
        let diff = ReportDiff(from: a, to: b)
        #expect(diff.changes.map(\.name) == ["y", "x"])
        #expect(diff.regressions(above: 100).map(\.name) == ["y"])
    }

    @Test("JSON: sides, totals and per-tensor {a, b, change}, unmatched names")
    func json() throws {
        let value = ReportDiff(from: Self.a, to: Self.b).jsonValue
        #expect(value["a"]?["output"] == .string("a.gguf") && value["b"]?["recipe"] == .null)
        #expect(value["totals"]?["bytes_out"] == .object([("a", .number("56")), ("b", .number("54")), ("change", .number("-2"))]))
        let tensors = try #require(value["tensors"]?.arrayElements)
        #expect(tensors.map { $0["name"]?.stringValue } == ["u", "s", "p", "t", "q", "r"])
        #expect(tensors[0]["relative_error"] == .object([("a", .number("0.5")), ("b", .null), ("change", .null)]))
        #expect(tensors[1]["relative_error"] == .object([("a", .number("0.0625")), ("b", .number("0.5625")), ("change", .number("0.5"))]))
        #expect(tensors[1]["encoding"] == .object([("a", .string("Q4_K")), ("b", .string("Q3_K"))]))
        #expect(tensors[1].objectMembers?.map(\.key) == ["name", "encoding", "bits_per_weight", "sparsity", "bytes_in",
                                                       "bytes_out", "relative_error", "sqnr_db", "max_abs_error", "cosine"])
        #expect(value["only_in_a"] == .array([.string("gone")]) && value["only_in_b"] == .array([.string("new")]))
        // The rendered text is that value, and it parses.
        let text = ReportDiff(from: Self.a, to: Self.b).render(.json)
        #expect(try JSONParser.parse(Array(text.utf8)) == value)
    }

    @Test("CSV: a/b/change columns per metric, status column, unmatched rows last")
    func csv() {
        let csv = ReportDiff(from: Self.a, to: Self.b).render(.csv)
        let records = CompressionReportTests.parseCSV(csv)
        #expect(records.count == 1 + 6 + 2)
        #expect(records[0].count == 4 + 3 * ReportDiff.Metric.allCases.count)
        #expect(records.allSatisfy { $0.count == records[0].count })
        #expect(records[0].prefix(7) == ["name", "status", "encoding_a", "encoding_b", "bits_per_weight_a", "bits_per_weight_b", "bits_per_weight_change"])
        #expect(records.map { $0[0] + ":" + $0[1] }.suffix(8) == ["u:both", "s:both", "p:both", "t:both", "q:both", "r:both", "gone:only_a", "new:only_b"])
        let column = records[0].firstIndex(of: "relative_error_change")!
        #expect(records[1][column] == "inf" && records[2][column] == "0.5")
        #expect(records[7][records[0].firstIndex(of: "relative_error_b")!] == "")
    }

    @Test("table and Markdown list the tensors in order and the unmatched ones apart")
    func textForms() {
        let diff = ReportDiff(from: Self.a, to: Self.b)
        let table = diff.render(.table)
        #expect(table.hasPrefix("A: a.gguf\nB: b.gguf\n\n"))
        #expect(table.hasSuffix("\nonly in A (1):\n  gone\n\nonly in B (1):\n  new\n"))
        let tensorLines = table.split(separator: "\n").filter { $0.hasPrefix("u ") || $0.hasPrefix("s ") || $0.hasPrefix("r ") }
        #expect(tensorLines.map { String($0.prefix(1)) } == ["u", "s", "r"])
        #expect(tensorLines[1].contains("Q4_K -> Q3_K") && tensorLines[1].contains("+5.000e-01"))
        #expect(tensorLines[2].contains("-1.250e-01"))
        #expect(table.contains("bytes_out") && table.contains("-2"))

        let md = diff.render(.md)
        #expect(md.hasPrefix("# ModelPress report diff\n\n- A: `a.gguf`\n- B: `b.gguf`\n"))
        #expect(md.contains("| `s` | Q4_K -> Q3_K | 6.250e-02 | 5.625e-01 | +5.000e-01 |"))
        #expect(md.hasSuffix("## Only in A\n\n- `gone`\n\n## Only in B\n\n- `new`\n"))
    }
}
