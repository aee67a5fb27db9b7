import ArgumentParser
import ModelPress
import Reports

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two reports tensor by tensor, largest regression first (or two sweep folders, point by point).",
        discussion: "With --fail-above X, exits 2 when any tensor's relative error grew by more than X (an absolute increase)."
    )

    @Argument(help: "The baseline report (JSON from compress --report or report), or a sweep folder.")
    var reportA: String

    @Argument(help: "The report to compare with it.")
    var reportB: String

    @Option(help: "Exit 2 when a tensor's relative error grew by more than this.")
    var failAbove: Double?

    @Option(help: "table, json, csv or md.")
    var format: String = "table"

    @Flag(help: "The same as --format json.")
    var json = false

    func run() throws {
        try reportingErrors {
            guard let style = ReportDiff.Format(rawValue: json ? "json" : format) else { throw UsageError("--format must be table, json, csv or md (got \(format))") }
            if SweepDiff.isSweep(reportA) || SweepDiff.isSweep(reportB) {
                guard SweepDiff.isSweep(reportA) && SweepDiff.isSweep(reportB) else { throw UsageError("diff compares two reports or two sweep folders") }
                let diff = try SweepDiff(reportA, reportB)
                Console.standardOutput(style == .json ? diff.renderJSON() + "\n" : diff.renderTable())
                if let failAbove {
                    let regressions = diff.regressions(above: failAbove)
                    if !regressions.isEmpty {
                        Console.standardError("modelpress: \(regressions.count) tensor(s) regressed by more than \(failAbove): \(regressions.prefix(5).map { "\($0.tensor) at \($0.point)" }.joined(separator: ", "))\n")
                        throw ExitCode(ExitStatus.regression)
                    }
                }
                return
            }
            let diff = ReportDiff(from: try CompressionReport.read(path: reportA), to: try CompressionReport.read(path: reportB))
            Console.standardOutput(diff.render(style))
            if let failAbove {
                let regressions = diff.regressions(above: failAbove)
                if !regressions.isEmpty {
                    Console.standardError("modelpress: \(regressions.count) tensor(s) regressed by more than \(failAbove): \(regressions.prefix(5).map(\.name).joined(separator: ", "))\n")
                    throw ExitCode(ExitStatus.regression)
                }
            }
        }
    }
}
