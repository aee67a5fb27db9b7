import ArgumentParser
import ModelPress

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a recipe against a checkpoint (names, shapes, options) without computing anything."
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Option(help: "The recipe file.")
    var recipe: String

    @Option(name: .customLong("set"), help: "Override a recipe variable: --set bits=3 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Calibration statistics to check against the recipe (replaces its calibration step).")
    var calibration: String?

    func run() throws {
        try reportingErrors {
            var pipeline = CompressionPipeline(inputPath: input, recipePath: recipe, overrides: try parseOverrides(overrides))
            pipeline.calibrationPath = calibration
            pipeline.warning = { Console.standardError("warning: \(Console.printable($0))\n") }
            let steps = try pipeline.check()
            for step in steps {
                Console.standardOutput("\(step.location): \(step.step) selects \(step.tensors.count) tensor(s)\n")
                for name in step.tensors { Console.standardOutput("  \(name)\n") }
            }
            Console.standardOutput("recipe OK\n")
        }
    }
}
