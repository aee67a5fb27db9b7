import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TensorCore
import CheckpointFormats
import Reports
@testable import ModelPress
import TestSupport

@Suite("Sweeps")
struct SweepTests {
    static let recipe = CompressionPipelineTests.root.appendingPathComponent("Recipes/w4-group128.recipe").path

    static func run(_ dir: String, vary: [String], recipe: String = recipe, keep: Bool = false) throws -> [SweepRunner.PointResult] {
        var runner = SweepRunner(inputPath: CompressionPipelineTests.pico, recipePath: recipe, plan: try SweepPlan(varying: vary), directory: dir)
        runner.keepOutputs = keep
        runner.jobs = 2
        runner.threadCount = 2
        let results = try runner.run()
        try runner.writeSummary(SweepSummary(variables: try SweepPlan(varying: vary).variables.map(\.name), results: results))
        return results
    }

    /// Element names and every `<title>` text of an SVG file, parsed as XML.
    final class SVGReader: NSObject, XMLParserDelegate {
        var elements: [String] = []
        var titles: [String] = []
        private var text: String?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements.append(name)
            if name == "title" { text = "" }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text? += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "title", let t = text { titles.append(t); text = nil }
        }
        static func read(_ path: String) throws -> SVGReader {
            let reader = SVGReader()
            let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: path)))
            parser.delegate = reader
            try #require(parser.parse(), "\(path) is not well-formed XML: \(String(describing: parser.parserError))")
            return reader
        }
    }

    @Test("the cartesian product runs point by point; summary tables and both SVGs hold every point")
    func sweep() throws {
        let dir = try TemporaryDirectory(prefix: "sweep")
        let results = try Self.run(dir.path, vary: ["bits=3,4", "group=64,128"])
        #expect(results.map(\.point.stem) == ["bits=3_group=64", "bits=3_group=128", "bits=4_group=64", "bits=4_group=128"])
        #expect(try SweepPlan(varying: ["sparsity=30%,50%"]).points.map(\.stem) == ["sparsity=30pct", "sparsity=50pct"])
        #expect(results.allSatisfy { !$0.skipped })
        // Each point's report is what compress gives for those values.
        let direct = try CompressionPipeline(inputPath: CompressionPipelineTests.pico, recipePath: Self.recipe,
                                             overrides: [("bits", "3"), ("group", "64")]).compress(outputPath: dir.url("direct.safetensors"))
        #expect(results[0].report.tensors.map(\.relativeError) == direct.tensors.map(\.relativeError))
        #expect(results[0].report.tensors.first { $0.name.hasSuffix("up_proj.weight") }?.encoding == "int3 asym group:64")
        let csv = try String(contentsOfFile: dir.url("summary.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "bits,group,bytes_out,ratio,bits_per_weight,mean_relative_error,max_relative_error,mean_output_error,seconds")
        #expect(csv.count == 5)
        #expect(csv[1].hasPrefix("3,64,\(results[0].report.totals.outputByteCount),"))
        let pareto = try SVGReader.read(dir.url("pareto.svg"))
        #expect(pareto.elements.filter { $0 == "circle" }.count == 4)
        for r in results { #expect(pareto.titles.contains { $0.hasPrefix(r.point.label + ":") }, "\(r.point.label)") }
        let layers = try SVGReader.read(dir.url("layers.svg"))
        #expect(layers.titles.filter { $0.contains("@ bits=4, group=128:") }.count == 16, "one cell per changed tensor")
        // --keep-outputs=false: only reports stay.
        #expect(try dir.entries().filter { $0.hasSuffix(".safetensors") && $0 != "direct.safetensors" }.isEmpty)
        // More bits per weight, less error; 4 bits with groups of 64 is on the front.
        let summary = SweepSummary(variables: ["bits", "group"], results: results)
        #expect(summary.rows[2].meanRelativeError < summary.rows[0].meanRelativeError)
        #expect(summary.paretoFront().contains(2))
    }

    @Test("the Pareto front keeps the points no other point beats on both size and error")
    func paretoFront() throws {
        let dir = try TemporaryDirectory(prefix: "sweep-front")
        let results = try Self.run(dir.path, vary: ["bits=2,3,4,8"])
        let summary = SweepSummary(variables: ["bits"], results: results)
        // Each extra bit costs size and buys accuracy: every point is on the front.
        #expect(summary.paretoFront() == [0, 1, 2, 3])
    }

    @Test("a second run resumes: finished points are skipped, new values are added")
    func resume() throws {
        let dir = try TemporaryDirectory(prefix: "sweep-resume")
        let first = try Self.run(dir.path, vary: ["bits=3,4"])
        let reportDate = try FileManager.default.attributesOfItem(atPath: dir.url("bits=3.report.json"))[.modificationDate] as! Date
        let second = try Self.run(dir.path, vary: ["bits=3,4,8"])
        #expect(second.map(\.skipped) == [true, true, false])
        #expect(second[0].report.tensors.map(\.relativeError) == first[0].report.tensors.map(\.relativeError))
        #expect(try FileManager.default.attributesOfItem(atPath: dir.url("bits=3.report.json"))[.modificationDate] as! Date == reportDate)
    }

    @Test("bad input: unknown or unused variable, empty list, a folder holding another sweep or other files")
    func badInput() throws {
        let dir = try TemporaryDirectory(prefix: "sweep-bad")
        #expect(throws: UsageError("--vary bitz: \(Self.recipe) has no variable 'bitz' (did you mean 'bits'?)")) {
            _ = try Self.run(dir.url("a"), vary: ["bitz=3"])
        }
        let unused = try dir.write(text: "let bits = 4\nlet spare = 1\nquantize.int bits=$bits\n", to: "u.recipe")
        #expect(throws: UsageError("--vary spare: \(unused) defines 'spare' but no step uses it")) {
            _ = try Self.run(dir.url("a"), vary: ["spare=1,2"], recipe: unused)
        }
        #expect(throws: UsageError("--vary bits: empty value in 'bits=3,'")) { _ = try SweepPlan(varying: ["bits=3,"]) }
        #expect(throws: UsageError.self) { _ = try SweepPlan(varying: []) }
        #expect(!FileManager.default.fileExists(atPath: dir.url("a")))
        _ = try Self.run(dir.url("s"), vary: ["bits=3"])
        let manifest = try TemporaryDirectory.read(dir.url("s/sweep.json"))
        let other = try dir.write(text: "let bits = 4\nquantize.int bits=$bits granularity=tensor\n", to: "o.recipe")
        #expect(throws: UsageError("\(dir.url("s")): the folder holds a different sweep (recipe \(Self.recipe)); choose another folder")) {
            _ = try Self.run(dir.url("s"), vary: ["bits=3"], recipe: other)
        }
        #expect(try TemporaryDirectory.read(dir.url("s/sweep.json")) == manifest, "nothing overwritten")
        #expect(throws: UsageError.self) { _ = try Self.run(dir.path, vary: ["bits=3"]) }   // not empty, no manifest
    }

    @Test("diff pairs the points of two sweep folders by their values")
    func diff() throws {
        let dir = try TemporaryDirectory(prefix: "sweep-diff")
        _ = try Self.run(dir.url("a"), vary: ["bits=3,4"])
        let mse = CompressionPipelineTests.root.appendingPathComponent("Recipes/w4-mse-clip.recipe").path
        _ = try Self.run(dir.url("b"), vary: ["bits=4,8"], recipe: mse)
        let diff = try SweepDiff(dir.url("a"), dir.url("b"))
        #expect(diff.pairs.map(\.label) == ["bits=4"])
        #expect(diff.unpaired.count == 2)
        let a = try CompressionReport.read(path: dir.url("a/bits=4.report.json")), b = try CompressionReport.read(path: dir.url("b/bits=4.report.json"))
        #expect(diff.pairs[0].diff.changes.count == ReportDiff(from: a, to: b).changes.count)
    }
}
