import ArgumentParser
import ModelPress
import CheckpointFormats

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Per-layer error report of a compressed checkpoint against its original."
    )

    @Argument(help: "The original checkpoint.")
    var original: String

    @Argument(help: "The compressed checkpoint.")
    var compressed: String

    @Option(name: .shortAndLong, help: "Write the report here (.json, .csv or .md by extension).")
    var output: String

    @Option(help: "Calibration statistics (safetensors act_sq/hessian or a llama.cpp imatrix): adds output_relative_error.")
    var calibration: String?

    @Flag(help: "Print the report as JSON instead of the summary.")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            let statistics = try calibration.map { try CalibrationStatistics.load(path: $0) }
            let report = try ReportBuilder.report(originalPath: original, compressedPath: compressed, calibration: statistics)
            try writeText(report.rendered(forPath: output), to: output)
            if json { Console.standardOutput(report.renderJSON()) } else if !quiet { Console.standardOutput(report.renderSummary()) }
        }
    }
}
