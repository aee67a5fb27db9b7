import Testing
import Recipes

@Suite("OptionReader")
struct OptionReaderTests {
    static func step(_ line: String) throws -> RecipeStep {
        try RecipeParser.parse(text: line, file: "r").steps[0]
    }

    @Test("typed getters read values, defaults fill gaps, and lists split")
    func reads() throws {
        var reader = OptionReader(step: try Self.step("quantize.int bits=4 sparsity=50% symmetric=false clipping=mse ignore=\"*embed*, lm_head.weight\""))
        #expect(reader.int("bits", default: 8, in: 2...8, help: "") == 4)
        #expect(reader.fraction("sparsity", default: 0, help: "") == 0.5)
        #expect(reader.bool("symmetric", default: true, help: "") == false)
        #expect(reader.choice("clipping", default: "minmax", from: ["minmax", "mse"], help: "") == "mse")
        #expect(reader.list("ignore", help: "") == ["*embed*", "lm_head.weight"])
        #expect(reader.double("damp", default: 0.01, in: 0...1, help: "") == 0.01)
        #expect(reader.finish().isEmpty)
    }

    @Test("all problems are collected with positions; unknown keys get suggestions")
    func diagnostics() throws {
        var reader = OptionReader(step: try Self.step("quantize.int bitz=4 bits=9 symmetric=yes clipping=msee sparsity=150%"))
        _ = reader.int("bits", default: 8, in: 2...8, help: "")
        _ = reader.bool("symmetric", default: true, help: "")
        _ = reader.choice("clipping", default: "minmax", from: ["minmax", "mse"], help: "")
        _ = reader.fraction("sparsity", default: 0, help: "")
        #expect(reader.finish().map(\.description) == [
            "r:1:26: error: quantize.int bits: 9 is out of range 2...8",
            "r:1:38: error: quantize.int symmetric: expected true or false, found a word 'yes'",
            "r:1:51: error: quantize.int clipping: 'msee' is not one of minmax, mse (did you mean 'mse'?)",
            "r:1:65: error: quantize.int sparsity: 150% is not between 0 and 1 (0% and 100%)",
            "r:1:14: error: unknown option 'bitz' for quantize.int (did you mean 'bits'?)",
        ])
    }

    @Test("describing mode records the option list for help")
    func describes() {
        var reader = OptionReader(describing: "quantize.int")
        #expect(reader.int("bits", default: 8, in: 2...8, help: "bit width") == 8)
        _ = reader.bool("symmetric", default: true, help: "signed grid")
        #expect(reader.specifications == [
            .init(key: "bits", kind: "integer 2...8", defaultValue: "8", help: "bit width"),
            .init(key: "symmetric", kind: "true|false", defaultValue: "true", help: "signed grid"),
        ])
        #expect(reader.finish().isEmpty)
    }
}
