import ArgumentParser
import ModelPress
import CheckpointFormats

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

    @Flag(help: "Print the steps and the tensors each selects as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            var pipeline = CompressionPipeline(inputPath: input, recipePath: recipe, overrides: try parseOverrides(overrides))
            pipeline.calibrationPath = calibration
            pipeline.warning = { Console.standardError("warning: \(Console.printable($0))\n") }
            let steps = try pipeline.check()
            if json {
                let items: [JSONValue] = steps.map { step in
                    .object([("step", .string(step.step)), ("location", .string(step.location.description)),
                             ("tensors", .array(step.tensors.map { .string($0) }))])
                }
                Console.standardOutput(JSONWriter.pretty(.object([("ok", .bool(true)), ("steps", .array(items))])) + "\n")
                return
            }
            for step in steps {
                Console.standardOutput("\(step.location): \(step.step) selects \(step.tensors.count) tensor(s)\n")
                for name in step.tensors { Console.standardOutput("  \(name)\n") }
            }
            Console.standardOutput("recipe OK\n")
        }
    }
}
