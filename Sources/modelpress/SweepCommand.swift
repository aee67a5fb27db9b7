import ArgumentParser
import Foundation
import ModelPress
import CheckpointFormats

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Compress once per combination of recipe variables; write a summary table and SVG plots.",
        discussion: """
        Each point writes DIR/<name>.<ext> and DIR/<name>.report.json (name from its values, e.g. bits=4_group=128). \
        DIR/sweep.json records finished points, so running the same command again resumes an interrupted sweep. \
        At the end: DIR/summary.csv, DIR/summary.md, DIR/pareto.svg (bits per weight against error, Pareto front) \
        and DIR/layers.svg (relative error per tensor and point).
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Option(help: "The recipe file; the varied names must be its `let` variables.")
    var recipe: String

    @Option(help: "A variable and its values: --vary bits=2,3,4,8 (repeatable; the cartesian product is swept).")
    var vary: [String] = []

    @Option(help: "The sweep folder (created; an existing one must hold the same sweep).")
    var out: String

    @Option(help: "Points compressed at the same time (default 1).")
    var jobs: Int = 1

    @Option(help: "Calibration statistics (adds the mean output error to the summary).")
    var calibration: String?

    @Option(help: "Keep each point's compressed file (true) or only its report (false).")
    var keepOutputs: Bool = true

    @Option(help: "Worker threads in all (default: all cores), shared by the jobs.")
    var threads: Int?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        try reportingErrors {
            guard jobs >= 1 else { throw UsageError("--jobs must be at least 1") }
            let plan = try SweepPlan(varying: vary)
            var runner = SweepRunner(inputPath: input, recipePath: recipe, plan: plan, directory: out)
            runner.jobs = jobs
            runner.threadCount = try threadCount(threads)
            runner.calibrationPath = calibration
            runner.keepOutputs = keepOutputs
            if !quiet { runner.progress = { Console.standardError(Console.printable($0) + "\n") } }
            let results = try runner.run()
            let summary = SweepSummary(variables: plan.variables.map(\.name), results: results)
            try runner.writeSummary(summary)
            if json { Console.standardOutput(JSONWriter.pretty(summary.json()) + "\n") } else if !quiet {
                Console.standardOutput(summary.markdown())
                Console.standardOutput("wrote \(out)/summary.csv, summary.md, pareto.svg, layers.svg\n")
            }
        }
    }
}
