import Foundation
import Testing
import CheckpointFormats
import Reports

@Suite("Report decoding: malformed reports name the file and the field")
struct ReportDecodingTests {
    /// Decodes the golden report after replacing `target` (which must occur) with `replacement`.
    static func decodeEdited(_ target: String, _ replacement: String) throws -> CompressionReport {
        let golden = ReportFixtures.twoTensorsJSON
        #expect(golden.contains(target), "fixture does not contain \(target)")
        return try CompressionReport(decoding: golden.replacingOccurrences(of: target, with: replacement), file: "old/run.json")
    }

    static func error(_ body: () throws -> CompressionReport) -> ReportError? {
        do { _ = try body(); return nil } catch let e as ReportError { return e } catch { return nil }
    }

    @Test("the golden text decodes to the fixture")
    func goldenDecodes() throws {
        #expect(try Self.decodeEdited("\"tool\"", "\"tool\"") == ReportFixtures.twoTensors)
    }

    @Test("not JSON, not an object, not from modelpress")
    func schema() {
        let notJSON = Self.error { try CompressionReport(decoding: "{\"tool\": ", file: "a.json") }
        guard case .malformedJSON = notJSON?.kind else { Issue.record("got \(String(describing: notJSON))"); return }
        #expect(notJSON?.description.hasPrefix("a.json: not valid JSON: ") == true)

        let array = Self.error { try CompressionReport(decoding: "[1, 2]", file: "a.json") }
        #expect(array?.kind == .unknownSchema("the document is an array, not an object"))

        let noTool = Self.error { try Self.decodeEdited("\"tool\": \"modelpress\",", "") }
        #expect(noTool?.kind == .unknownSchema("it has no 'tool' member"))
        let otherTool = Self.error { try Self.decodeEdited("\"tool\": \"modelpress\"", "\"tool\": \"llm-compressor\"") }
        #expect(otherTool?.kind == .unknownSchema("'tool' is \"llm-compressor\", expected \"modelpress\""))
        #expect(otherTool?.description == "old/run.json: not a ModelPress report: 'tool' is \"llm-compressor\", expected \"modelpress\"")
    }

    @Test("a missing field is named with its path and tensor")
    func missingField() {
        let e = Self.error { try Self.decodeEdited("\"sqnr_db\": null,\n", "") }
        #expect(e?.kind == .missingField("tensors[1].sqnr_db"))
        #expect(e?.field == "tensors[1].sqnr_db" && e?.tensor == "lm_head.weight")
        #expect(e?.description == "old/run.json: missing field 'tensors[1].sqnr_db' (tensor 'lm_head.weight')")

        let totals = Self.error { try Self.decodeEdited("\"bits_per_weight\": 7.2\n", "\"bits\": 7.2\n") }
        #expect(totals?.kind == .missingField("totals.bits_per_weight") && totals?.tensor == nil)
        let version = Self.error { try Self.decodeEdited("\"version\": \"0.3.0\",", "") }
        #expect(version?.kind == .missingField("version"))
        let name = Self.error { try Self.decodeEdited("\"name\": \"lm_head.weight\",", "") }
        #expect(name?.kind == .missingField("tensors[1].name") && name?.tensor == nil)
    }

    @Test("a field of the wrong kind says what was expected and what was found")
    func wrongType() {
        let bytes = Self.error { try Self.decodeEdited("\"bytes_out\": 20,", "\"bytes_out\": \"20\",") }
        #expect(bytes?.kind == .wrongType(field: "tensors[0].bytes_out", expected: "a non-negative integer", found: "a string"))
        #expect(bytes?.tensor == "model.layers.0.mlp.down_proj.weight")
        let negative = Self.error { try Self.decodeEdited("\"bytes_in\": 64,", "\"bytes_in\": -64,") }
        #expect(negative?.kind == .wrongType(field: "tensors[0].bytes_in", expected: "a non-negative integer", found: "the number -64"))
        let fraction = Self.error { try Self.decodeEdited("\"shape\": [4, 8]", "\"shape\": [4, 8.5]") }
        #expect(fraction?.kind == .wrongType(field: "tensors[0].shape[1]", expected: "a non-negative integer", found: "the number 8.5"))
        let number = Self.error { try Self.decodeEdited("\"cosine\": 0.998,", "\"cosine\": true,") }
        #expect(number?.kind == .wrongType(field: "tensors[0].cosine", expected: "a number or null", found: "a boolean"))
        let recipe = Self.error { try Self.decodeEdited("\"recipe\": \"Recipes/w4.recipe\"", "\"recipe\": 4") }
        #expect(recipe?.kind == .wrongType(field: "recipe", expected: "a string or null", found: "the number 4"))
        let tensorsObject = Self.error {
            try CompressionReport(decoding: "{\"tool\": \"modelpress\", \"version\": \"1\", \"input\": \"a\", \"output\": \"b\", "
                + "\"recipe\": null, \"totals\": {\"parameters\": 0, \"bytes_in\": 0, \"bytes_out\": 0, \"ratio\": 1.0, "
                + "\"bits_per_weight\": 0.0}, \"tensors\": {}}", file: "t.json")
        }
        #expect(tensorsObject?.kind == .wrongType(field: "tensors", expected: "an array", found: "an object"))
    }

    @Test("bad values: totals that contradict the tensors, duplicates, huge numbers")
    func invalidValues() {
        let totals = Self.error { try Self.decodeEdited("\"bytes_out\": 36,", "\"bytes_out\": 35,") }
        #expect(totals?.kind == .invalidValue(field: "totals.bytes_out", reason: "is 35 but the tensors add up to 36"))
        let duplicate = Self.error { try Self.decodeEdited("\"name\": \"lm_head.weight\"", "\"name\": \"model.layers.0.mlp.down_proj.weight\"") }
        #expect(duplicate?.kind == .duplicateTensor("model.layers.0.mlp.down_proj.weight"))
        let key = Self.error { try Self.decodeEdited("\"cosine\": 1.0\n", "\"cosine\": 1.0, \"cosine\": 0.5\n") }
        #expect(key?.kind == .duplicateKey("tensors[1].cosine"))
        let huge = Self.error { try Self.decodeEdited("\"cosine\": 0.998,", "\"cosine\": 1e999,") }
        #expect(huge?.kind == .invalidValue(field: "tensors[0].cosine", reason: "the number 1e999 is out of range"))
        let overflow = Self.error { try Self.decodeEdited("\"shape\": [8]", "\"shape\": [4294967296, 4294967296]") }
        #expect(overflow?.kind == .invalidValue(field: "tensors[1].shape", reason: "the element count overflows"))
    }

    @Test("unknown members are ignored and an absent output_relative_error means none")
    func tolerated() throws {
        let extra = try Self.decodeEdited("\"tool\": \"modelpress\",", "\"tool\": \"modelpress\", \"host\": \"ci-7\",")
        #expect(extra == ReportFixtures.twoTensors)
        let noOutput = try Self.decodeEdited(",\n      \"output_relative_error\": 0.00390625", "")
        #expect(noOutput.tensors[0].outputRelativeError == nil)
        let nullOutput = try Self.decodeEdited("\"output_relative_error\": 0.00390625", "\"output_relative_error\": null")
        #expect(nullOutput.tensors[0].outputRelativeError == .infinity)
    }
}
