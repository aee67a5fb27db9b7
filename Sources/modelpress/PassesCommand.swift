import ArgumentParser
import ModelPress
import Passes
import CheckpointFormats

struct PassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passes", abstract: "List every pass and its options.")

    @Flag(help: "Print the passes and their options as JSON.")
    var json = false

    func run() throws {
        if json {
            let passes: [JSONValue] = PassRegistry.builtIn.describe().map { pass in
                let options: [JSONValue] = pass.options.map { o in
                    .object([("key", .string(o.key)), ("kind", .string(o.kind)), ("default", o.defaultValue.map { .string($0) } ?? .null),
                             ("help", .string(o.help))])
                }
                return .object([("name", .string(pass.name)), ("summary", .string(pass.summary)), ("options", .array(options))])
            }
            Console.standardOutput(JSONWriter.pretty(.array(passes)) + "\n")
            return
        }
        for pass in PassRegistry.builtIn.describe() {
            Console.standardOutput("\(pass.name)\n  \(pass.summary)\n")
            for option in pass.options {
                let defaultText = option.defaultValue.map { " (default \($0))" } ?? ""
                Console.standardOutput("    \(option.key)=<\(option.kind)>\(defaultText)  \(option.help)\n")
            }
            Console.standardOutput("    targets=<globs or re:regex>  ignore=<globs or re:regex>  optional=<true|false>\n\n")
        }
    }
}
