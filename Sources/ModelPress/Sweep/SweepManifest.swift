import Foundation
import TensorCore
import CheckpointFormats

/// `DIR/sweep.json`: what a sweep folder holds. JSON `{tool, input, recipe, recipe_text,
/// calibration, variables, points: [{values: {name: value}, output, report, seconds}]}`.
struct SweepManifest {
    struct Identity: Equatable {
        let input: String
        let recipe: String
        let recipeText: String
        let calibration: String?
        let variables: [String]
    }

    struct Entry {
        let values: [(name: String, value: String)]
        let output: String?
        let report: String
        let seconds: Double
    }

    let path: String
    let identity: Identity
    private(set) var entries: [Entry]

    /// Opens the manifest of `directory` (creating the folder when missing). Throws when the folder
    /// holds another sweep, or files but no manifest.
    static func open(directory: String, identity: Identity) throws -> SweepManifest {
        let path = directory + "/" + SweepRunner.manifestName
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw UsageError("\(directory): exists and is not a folder") }
        } else {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard contents.isEmpty else { throw UsageError("\(directory): the folder is not empty and holds no sweep (\(SweepRunner.manifestName)); choose an empty or new folder") }
            return SweepManifest(path: path, identity: identity, entries: [])
        }
        let stored = try read(path: path)
        guard stored.identity == identity else {
            let what = stored.identity.input != identity.input ? "input \(stored.identity.input)"
                : stored.identity.recipeText != identity.recipeText || stored.identity.recipe != identity.recipe ? "recipe \(stored.identity.recipe)"
                : stored.identity.calibration != identity.calibration ? "calibration \(stored.identity.calibration ?? "none")"
                : "variables \(stored.identity.variables.joined(separator: ", "))"
            throw UsageError("\(directory): the folder holds a different sweep (\(what)); choose another folder")
        }
        return SweepManifest(path: path, identity: identity, entries: stored.entries)
    }

    static func read(path: String) throws -> SweepManifest {
        func fail(_ why: String) -> SweepError { SweepError(file: path, message: why) }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) } catch { throw fail("not JSON: \(error)") }
        guard let input = json["input"]?.stringValue, let recipe = json["recipe"]?.stringValue, let text = json["recipe_text"]?.stringValue,
              let variables = json["variables"]?.arrayElements?.compactMap(\.stringValue), let points = json["points"]?.arrayElements else {
            throw fail("missing input, recipe, recipe_text, variables or points")
        }
        let calibration = json["calibration"]?.stringValue
        var entries: [Entry] = []
        for p in points {
            guard let values = p["values"]?.objectMembers, let report = p["report"]?.stringValue,
                  case .number(let secondsText)? = p["seconds"], let seconds = Double(secondsText) else { throw fail("malformed point") }
            let pairs = try values.map { member -> (name: String, value: String) in
                guard let v = member.value.stringValue else { throw fail("malformed point value") }
                return (member.key, v)
            }
            entries.append(Entry(values: pairs, output: p["output"]?.stringValue, report: report, seconds: seconds))
        }
        return SweepManifest(path: path, identity: Identity(input: input, recipe: recipe, recipeText: text, calibration: calibration, variables: variables),
                             entries: entries)
    }

    func entry(for point: SweepPlan.Point) -> Entry? {
        entries.first { e in e.values.map(\.name) == point.values.map(\.name) && e.values.map(\.value) == point.values.map(\.value) }
    }

    mutating func record(_ point: SweepPlan.Point, output: String?, report: String, seconds: Double) {
        entries.removeAll { e in e.values.map(\.value) == point.values.map(\.value) && e.values.map(\.name) == point.values.map(\.name) }
        entries.append(Entry(values: point.values, output: output, report: report, seconds: seconds))
    }

    /// Writes the manifest atomically.
    func save() throws {
        let value: JSONValue = .object([
            ("tool", .string("modelpress")), ("input", .string(identity.input)), ("recipe", .string(identity.recipe)),
            ("recipe_text", .string(identity.recipeText)), ("calibration", identity.calibration.map { .string($0) } ?? .null),
            ("variables", .array(identity.variables.map { .string($0) })),
            ("points", .array(entries.map { e in
                .object([("values", .object(e.values.map { ($0.name, .string($0.value)) })), ("output", e.output.map { .string($0) } ?? .null),
                         ("report", .string(e.report)), ("seconds", .double(e.seconds))])
            })),
        ])
        let writer = try AtomicFileWriter(destination: path)
        try writer.write(Array(JSONWriter.pretty(value).utf8))
        try writer.commit()
    }
}

/// A sweep folder whose manifest cannot be read (exit 65).
public struct SweepError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}
