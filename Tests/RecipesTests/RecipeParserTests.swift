import Testing
import Recipes

@Suite("Recipe language")
struct RecipeParserTests {
    static let sample = """
    # w4-mixed: 4-bit average
    let bits = 4                     # a variable with its default
    let sparsity = 50%

    calibration  stats=calib.safetensors
    prune.obs    sparsity=$sparsity pattern=2:4 targets="*.mlp.*"
    quantize.int bits=$bits granularity=group:128 symmetric=true
                 ignore="*embed*, lm_head.weight"   # continues the step above
    sweep.demo   values=2,3,$bits scale=1e-3 name="a \\"quoted\\" word"
    """

    @Test("steps, options, variables, continuation lines and comments")
    func parsesSample() throws {
        let recipe = try RecipeParser.parse(text: Self.sample, file: "w4.recipe")
        #expect(recipe.steps.map(\.name) == ["calibration", "prune.obs", "quantize.int", "sweep.demo"])
        let prune = recipe.steps[1]
        #expect(prune.option("sparsity")?.value == .percentage(0.5))
        #expect(prune.option("pattern")?.value == .word("2:4"))
        #expect(prune.option("targets")?.value == .string("*.mlp.*"))
        let quantize = recipe.steps[2]
        #expect(quantize.options.map(\.key) == ["bits", "granularity", "symmetric", "ignore"])
        #expect(quantize.option("bits")?.value == .number(4))
        #expect(quantize.option("symmetric")?.value == .bool(true))
        #expect(quantize.option("ignore")?.value == .string("*embed*, lm_head.weight"))
        #expect(quantize.option("ignore")?.location == SourceLocation(file: "w4.recipe", line: 8, column: 14))
        #expect(quantize.location == SourceLocation(file: "w4.recipe", line: 7, column: 1))
        let demo = recipe.steps[3]
        #expect(demo.option("values")?.value == .list([.number(2), .number(3), .number(4)]))
        #expect(demo.option("scale")?.value == .number(0.001))
        #expect(demo.option("name")?.value == .string("a \"quoted\" word"))
        #expect(recipe.variables.map(\.name) == ["bits", "sparsity"])
        #expect(recipe.variables.allSatisfy { $0.used })
    }

    @Test("a variable may stand inside a bare value: group:$g")
    func embeddedVariables() throws {
        let recipe = try RecipeParser.parse(text: "let g = 128\nlet pct = 99.9%\nq.x granularity=group:$g clipping=percentile:$g name=a$g$g", file: "r")
        #expect(recipe.steps[0].option("granularity")?.value == .word("group:128"))
        #expect(recipe.steps[0].option("name")?.value == .word("a128128"))
        do {
            _ = try RecipeParser.parse(text: "let g = 1\nq.x granularity=group:$h", file: "r")
            Issue.record("no error")
        } catch {
            #expect(error.diagnostics.map(\.description) == ["r:2:23: error: undefined variable '$h' (did you mean '$g'?)"])
        }
    }

    @Test("--set overrides a default, in command-line order (last wins)")
    func overrides() throws {
        let recipe = try RecipeParser.parse(text: Self.sample, file: "w4.recipe", overrides: [("bits", "3"), ("bits", "2")])
        #expect(recipe.steps[2].option("bits")?.value == .number(2))
        #expect(recipe.variables[0].overridden && !recipe.variables[1].overridden)
    }

    @Test("every problem is reported at once with its position", arguments: [
        ("quantize.int bits=4 bits=8", ["r:1:21: error: option 'bits' is given twice"]),
        ("quantize.int bits", ["r:1:14: error: expected key=value, found 'bits'"]),
        ("quantize.int bits=", ["r:1:19: error: option 'bits' has no value"]),
        ("quantize.int bits=$bitz\nlet bits = 4", ["r:1:19: error: undefined variable '$bitz'"]),
        ("let bits = 4\nquantize.int bits=$bitz", ["r:2:19: error: undefined variable '$bitz' (did you mean '$bits'?)"]),
        ("let bits = 4\nlet bits = 5", ["r:2:5: error: variable 'bits' is already defined at r:1:5"]),
        ("  bits=4", ["r:1:3: error: indented line continues no step (only step lines can be continued)"]),
        ("quantize.int name=\"abc", ["r:1:19: error: unterminated string"]),
        ("9lives x=1", ["r:1:1: error: expected a step name such as 'quantize.int', found '9lives'"]),
        ("quantize.int 2bits=1", ["r:1:14: error: '2bits' is not a valid option name"]),
        ("quantize.int values=1,,2", ["r:1:23: error: empty item in a list"]),
        ("let = 4", ["r:1:1: error: expected 'let NAME = VALUE'"]),
        ("a.b x=1 y\nc.d z", ["r:1:9: error: expected key=value, found 'y'", "r:2:5: error: expected key=value, found 'z'"]),
    ])
    func diagnostics(text: String, expected: [String]) {
        do {
            _ = try RecipeParser.parse(text: text, file: "r")
            Issue.record("no error for \(text)")
        } catch {
            #expect(error.diagnostics.map(\.description) == expected)
        }
    }

    @Test("--set of an unknown variable is an error with a suggestion")
    func unknownOverride() {
        do {
            _ = try RecipeParser.parse(text: "let bits = 4\nq.x b=$bits", file: "r", overrides: [("bit", "3")])
            Issue.record("no error")
        } catch {
            #expect(error.diagnostics.map(\.description) == ["--set:1:1: error: the recipe has no variable 'bit' (did you mean 'bits'?)"])
        }
    }

    @Test("include splices another file, relative to the includer; cycles and missing files are errors")
    func includes() throws {
        let files: [String: String] = [
            "dir/main.recipe": "let bits = 4\ninclude parts/q.recipe\noutput format=gguf",
            "dir/parts/q.recipe": "quantize.int bits=$bits",
            "dir/loop.recipe": "include loop.recipe",
            "dir/bad.recipe": "include missing.recipe\nquantize.int bitz",
        ]
        let loader: RecipeParser.FileLoader = { files[$0] }
        let recipe = try RecipeParser.parse(path: "dir/main.recipe", loader: loader)
        #expect(recipe.steps.map(\.name) == ["quantize.int", "output"])
        #expect(recipe.steps[0].location == SourceLocation(file: "dir/parts/q.recipe", line: 1, column: 1))
        #expect(recipe.steps[0].option("bits")?.value == .number(4))
        do {
            _ = try RecipeParser.parse(path: "dir/loop.recipe", loader: loader)
            Issue.record("no error for a cycle")
        } catch {
            #expect(error.diagnostics.map(\.description) == ["dir/loop.recipe:1:9: error: include cycle: dir/loop.recipe -> dir/loop.recipe"])
        }
        do {
            _ = try RecipeParser.parse(path: "dir/bad.recipe", loader: loader)
            Issue.record("no error for a missing include")
        } catch {
            #expect(error.diagnostics.map(\.description) == [
                "dir/bad.recipe:1:9: error: cannot read included recipe 'dir/missing.recipe'",
                "dir/bad.recipe:2:14: error: expected key=value, found 'bitz'",
            ])
        }
    }

    /// A fuzzing finding: `include sub/../self.recipe` reads the same file under a longer path each
    /// time, which the cycle check (by path) never sees; the parser recursed until the stack overflowed.
    @Test("an include cycle through ever longer paths stops 16 files deep")
    func includeThroughGrowingPaths() throws {
        let loader: RecipeParser.FileLoader = { $0.hasSuffix("self.recipe") ? "include sub/../self.recipe" : nil }
        do {
            _ = try RecipeParser.parse(path: "self.recipe", loader: loader)
            Issue.record("no error for an unbounded include")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics.first?.description.hasSuffix(":1:9: error: includes nested more than 16 files deep (an include cycle through different paths?)") == true)
            #expect(error.diagnostics.first?.location.file == String(repeating: "sub/../", count: 15) + "self.recipe")
        }
    }

    @Test("scalar spellings")
    func scalars() {
        #expect(RecipeValue(scalar: "12") == .number(12))
        #expect(RecipeValue(scalar: "-0.5") == .number(-0.5))
        #expect(RecipeValue(scalar: "99.9%") == .percentage(0.999))
        #expect(RecipeValue(scalar: "true") == .bool(true))
        #expect(RecipeValue(scalar: "1e") == .word("1e"))
        #expect(RecipeValue(scalar: "group:128") == .word("group:128"))
        #expect(RecipeValue(scalar: "inf") == .word("inf"))
        #expect(RecipeValue(scalar: "1e999") == .word("1e999"))
    }

    @Test("edit-distance suggestions")
    func suggestions() {
        #expect(closestMatch(to: "bitz", in: ["bits", "granularity", "symmetric"]) == "bits")
        #expect(closestMatch(to: "quantize.itn", in: ["quantize.int", "quantize.nf4", "prune.obs"]) == "quantize.int")
        #expect(closestMatch(to: "zzzzzz", in: ["bits"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
    }
}
