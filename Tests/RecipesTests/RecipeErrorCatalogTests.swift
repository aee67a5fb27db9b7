import Testing
import Recipes

/// Every error the recipe parser can report, each with its exact text and position (the cases
/// not already covered in RecipeParserTests and OptionReaderTests).
@Suite("Recipe error catalog")
struct RecipeErrorCatalogTests {
    struct Case: Sendable, CustomStringConvertible {
        let text: String
        let expected: [String]
        var overrides: [(name: String, text: String)] = []
        var description: String { expected.first ?? text }
    }

    static let cases: [Case] = [
        Case(text: "let 3x = 4\n", expected: ["r:1:5: error: '3x' is not a valid variable name"]),
        Case(text: "let bits =\nquantize.int\n", expected: ["r:1:1: error: expected 'let NAME = VALUE'"]),
        Case(text: "quantize.int =4\n", expected: ["r:1:14: error: expected key=value, found '=4'"]),
        Case(text: "include\n", expected: ["r:1:1: error: expected 'include PATH'"]),
        Case(text: "include a.recipe b.recipe\n", expected: ["r:1:1: error: expected 'include PATH'"]),
        Case(text: "quantize.int name=ab\"c\"\n", expected: ["r:1:19: error: a quote may only enclose a whole value"]),
        Case(text: "quantize.int bits=$\n", expected: ["r:1:19: error: '$' must be followed by a variable name"]),
        Case(text: "quantize.int bits=$9\n", expected: ["r:1:19: error: '$' must be followed by a variable name"]),
        Case(text: "quantize.int bits=4\n", expected: ["--set:1:1: error: 'no way' is not a variable name",
                                                      "--set:1:1: error: the recipe has no variable 'no way'"],
             overrides: [("no way", "1")]),
    ]

    @Test("each error is reported with its message at its position", arguments: cases)
    func reported(_ c: Case) {
        do {
            _ = try RecipeParser.parse(text: c.text, file: "r", overrides: c.overrides)
            Issue.record("no error for \(c.text.debugDescription)")
        } catch {
            #expect(error.diagnostics.map(\.description) == c.expected, "\(c.text.debugDescription)")
        }
    }

    @Test("an unreadable recipe file is reported at its first line")
    func unreadable() {
        #expect(throws: RecipeDiagnostics([RecipeDiagnostic(SourceLocation(file: "/nonexistent/x.recipe", line: 1, column: 1), "cannot read the recipe file")])) {
            _ = try RecipeParser.parse(path: "/nonexistent/x.recipe")
        }
    }

    @Test("option values of the wrong kind are reported at the value")
    func optionKinds() throws {
        let step = try RecipeParser.parse(text: "p.q n=abc f=x b=1 c=\"a,b\" l=1,2 t=1,2 d=2\n", file: "r").steps[0]
        var reader = OptionReader(step: step)
        _ = reader.int("n", default: 1, in: 0...9, help: "")
        _ = reader.fraction("f", default: 0, help: "")
        _ = reader.bool("b", default: true, help: "")
        _ = reader.choice("c", default: "x", from: ["x", "y"], help: "")
        _ = reader.list("l", help: "")
        _ = reader.text("t", help: "")
        _ = reader.double("d", default: 0.5, in: 0...1, help: "")
        #expect(reader.finish().map(\.description) == [
            "r:1:7: error: p.q n: expected an integer, found a word 'abc'",
            "r:1:13: error: p.q f: expected a fraction such as 0.5 or 50%, found a word 'x'",
            "r:1:17: error: p.q b: expected true or false, found a number '1'",
            "r:1:21: error: p.q c: 'a,b' is not one of x, y",
            "r:1:35: error: p.q t: expected one value, found a list",
            "r:1:41: error: p.q d: 2 is out of range 0.0...1.0",
        ])
    }
}
