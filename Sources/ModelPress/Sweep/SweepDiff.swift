import Foundation
import CheckpointFormats
import Reports

/// `modelpress diff SWEEP_A SWEEP_B`: pairs the points of two sweep folders by their values and
/// compares each pair's reports (`ReportDiff`): the change of the mean relative error over the
/// tensors both changed, and the tensor whose relative error grew the most.
public struct SweepDiff: Sendable {
    public struct Pair: Sendable {
        public let label: String
        public let diff: ReportDiff
        public var meanChange: Double {
            let changes = diff.changes.map(\.relativeErrorChange).filter(\.isFinite)
            return changes.isEmpty ? 0 : changes.reduce(0, +) / Double(changes.count)
        }
        public var worst: ReportDiff.TensorChange? { diff.changes.max { $0.relativeErrorChange < $1.relativeErrorChange } }
    }

    public let pairs: [Pair]
    /// Points found in only one of the folders.
    public let unpaired: [String]

    /// True when `path` is a sweep folder (holds `sweep.json`).
    public static func isSweep(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + SweepRunner.manifestName)
    }

    public init(_ a: String, _ b: String) throws {
        let ma = try SweepManifest.read(path: a + "/" + SweepRunner.manifestName)
        let mb = try SweepManifest.read(path: b + "/" + SweepRunner.manifestName)
        func key(_ e: SweepManifest.Entry) -> String { e.values.sorted { $0.name < $1.name }.map { "\($0.name)=\($0.value)" }.joined(separator: ", ") }
        var pairs: [Pair] = []
        var unpaired: [String] = []
        for ea in ma.entries {
            guard let eb = mb.entries.first(where: { key($0) == key(ea) }) else { unpaired.append(key(ea) + " (only in \(a))"); continue }
            let diff = ReportDiff(from: try CompressionReport.read(path: a + "/" + ea.report), to: try CompressionReport.read(path: b + "/" + eb.report))
            pairs.append(Pair(label: key(ea), diff: diff))
        }
        for eb in mb.entries where !ma.entries.contains(where: { key($0) == key(eb) }) { unpaired.append(key(eb) + " (only in \(b))") }
        self.pairs = pairs
        self.unpaired = unpaired
    }

    /// Tensors whose relative error grew by more than `threshold`, per point.
    public func regressions(above threshold: Double) -> [(point: String, tensor: String)] {
        pairs.flatMap { pair in pair.diff.regressions(above: threshold).map { (pair.label, $0.name) } }
    }

    public func renderTable() -> String {
        var out = "point | mean relative error change | largest increase (tensor)\n"
        for p in pairs {
            let worst = p.worst.map { String(format: "%+.4e (%@)", $0.relativeErrorChange, $0.name) } ?? "-"
            out += "\(p.label) | \(String(format: "%+.4e", p.meanChange)) | \(worst)\n"
        }
        for u in unpaired { out += "\(u): not paired\n" }
        return out
    }

    public func renderJSON() -> String {
        let items: [JSONValue] = pairs.map { p in
            let worst: JSONValue = p.worst.map { .object([("tensor", .string($0.name)), ("change", .double($0.relativeErrorChange))]) } ?? .null
            return .object([("point", .string(p.label)), ("mean_relative_error_change", .double(p.meanChange)), ("largest_increase", worst)])
        }
        return JSONWriter.pretty(.object([("points", .array(items)), ("unpaired", .array(unpaired.map { .string($0) }))]))
    }
}
