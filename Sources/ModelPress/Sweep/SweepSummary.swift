import Foundation
import CheckpointFormats
import Reports

/// One row per sweep point, for `summary.csv`, `summary.md`, the plots and `--json`.
///
/// `mean_relative_error` / `max_relative_error` are over the tensors the recipe changed (encoding
/// differs from the input dtype; all tensors when none changed); `mean_output_error` is the mean
/// `output_relative_error` over the tensors that have one (calibration given), else empty.
public struct SweepSummary: Sendable {
    public struct Row: Sendable {
        public let point: SweepPlan.Point
        public let bytesOut: Int
        public let ratio: Double
        public let bitsPerWeight: Double
        public let meanRelativeError: Double
        public let maxRelativeError: Double
        public let meanOutputError: Double?
        public let seconds: Double
        public let report: CompressionReport
    }

    public let variables: [String]
    public let rows: [Row]

    public init(variables: [String], results: [SweepRunner.PointResult]) {
        self.variables = variables
        rows = results.map { r in
            let changed = r.report.tensors.filter { $0.encoding != $0.inputDType }
            let measured = changed.isEmpty ? r.report.tensors : changed
            let errors = measured.map(\.relativeError)
            let outputs = r.report.tensors.compactMap(\.outputRelativeError)
            let totals = r.report.totals
            return Row(point: r.point, bytesOut: totals.outputByteCount, ratio: totals.ratio, bitsPerWeight: totals.bitsPerWeight,
                       meanRelativeError: errors.isEmpty ? 0 : errors.reduce(0, +) / Double(errors.count),
                       maxRelativeError: errors.max() ?? 0,
                       meanOutputError: outputs.isEmpty ? nil : outputs.reduce(0, +) / Double(outputs.count),
                       seconds: r.seconds, report: r.report)
        }
    }

    static let columns = ["bytes_out", "ratio", "bits_per_weight", "mean_relative_error", "max_relative_error", "mean_output_error", "seconds"]

    private func cells(_ row: Row) -> [String] {
        row.point.values.map(\.value) + [String(row.bytesOut), String(format: "%.4f", row.ratio), String(format: "%.4f", row.bitsPerWeight),
            String(format: "%.6e", row.meanRelativeError), String(format: "%.6e", row.maxRelativeError),
            row.meanOutputError.map { String(format: "%.6e", $0) } ?? "", String(format: "%.3f", row.seconds)]
    }

    /// `summary.csv`: a header line, then one line per point.
    public func csv() -> String {
        ([variables + Self.columns] + rows.map(cells)).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// `summary.md`: a Markdown table.
    public func markdown() -> String {
        let header = variables + Self.columns
        var out = "| " + header.joined(separator: " | ") + " |\n"
        out += "|" + header.map { _ in "---:" }.joined(separator: "|") + "|\n"
        for row in rows { out += "| " + cells(row).map { $0.isEmpty ? "-" : $0 }.joined(separator: " | ") + " |\n" }
        return out
    }

    /// The rows as JSON (for `--json`).
    public func json() -> JSONValue {
        .array(rows.map(Self.json))
    }

    private static func json(_ row: Row) -> JSONValue {
        let values: JSONValue = .object(row.point.values.map { ($0.name, JSONValue.string($0.value)) })
        let output: JSONValue = row.meanOutputError.map { JSONValue.double($0) } ?? .null
        let members: [(key: String, value: JSONValue)] = [
            ("values", values), ("bytes_out", .integer(row.bytesOut)), ("ratio", .double(row.ratio)),
            ("bits_per_weight", .double(row.bitsPerWeight)), ("mean_relative_error", .double(row.meanRelativeError)),
            ("max_relative_error", .double(row.maxRelativeError)), ("mean_output_error", output), ("seconds", .double(row.seconds)),
        ]
        return .object(members)
    }

    /// Indices of the Pareto-optimal rows: no other row has both fewer (or equal) bits per weight and
    /// a lower (or equal) mean error, with one strictly better. Sorted by bits per weight.
    public func paretoFront() -> [Int] {
        let indices = rows.indices.filter { i in
            !rows.indices.contains { j in
                j != i && rows[j].bitsPerWeight <= rows[i].bitsPerWeight && rows[j].meanRelativeError <= rows[i].meanRelativeError
                    && (rows[j].bitsPerWeight < rows[i].bitsPerWeight || rows[j].meanRelativeError < rows[i].meanRelativeError)
            }
        }
        return indices.sorted { rows[$0].bitsPerWeight < rows[$1].bitsPerWeight }
    }
}
