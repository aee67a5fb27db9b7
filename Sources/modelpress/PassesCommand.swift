import ArgumentParser
import ModelPress
import Passes

struct PassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passes", abstract: "List every pass and its options.")

    func run() throws {
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
