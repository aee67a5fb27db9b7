import Foundation
import TensorCore
import CheckpointFormats
import Recipes

/// `allocate.bits`: Hessian-proxy bit allocation (BAQ, algorithms.md §3.1). It rewrites nothing: it
/// plans, for the tensors it selects, the setting that a later `quantize.int bits=auto` (or, with
/// `target=ggml`, `quantize.ggml type=auto`) applies, so that the selected tensors' real storage
/// (codes, scales, zero points, width tables, as the output writer stores them) is at most
/// `average` bits per weight, and as close to it as the units allow.
///
/// ```
/// allocate.bits average=3 min=2 max=8            # per input column (BAQ)
/// quantize.int  bits=auto granularity=channel
/// ```
/// Loss proxy: `L = Σ_j s_j Σ_r ΔW_rj²` with `s_j` from `ColumnSensitivity` (`H_jj`, or GPTQ's
/// `1/U_jj²` when the consumer is `method=gptq` with a full Hessian; 1 with `proxy=weights`), divided
/// by the tensor's own `Σ_j s_j Σ_r W_rj²` (a relative output error, comparable across tensors whose
/// outputs differ in scale) and summed over every selected tensor: one budget, one water level.
/// - `granularity=column` (default, BAQ): each column's loss at the reference width `R̄ = round(average)`
///   is measured by round to nearest, and modelled as `L_j(R) = L_j(R̄)·2^(−θ(R − R̄))` (θ = 1.95). The
///   closed form `R_j = R̄ + log2(L_j/G)/θ` equalises the columns' losses; the integer widths in
///   `min...max` are its discrete counterpart (`BitAllocation.choose`: equal loss per bit at the
///   margin), with the per-tensor scale overhead of every width present counted and re-balanced.
/// - `granularity=tensor`: one width per tensor; each width's storage and loss are measured.
/// - `target=ggml`: one ggml type per tensor among `types` (default Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
///   Q8_0), each measured with the consumer's quantizer (imatrix-weighted when statistics exist).
public struct BitAllocationPass: CompressionPass {
    public static let name = "allocate.bits"
    public static let summary = "Hessian-proxy bit allocation (BAQ): per-column or per-tensor widths, or ggml types, for an average bits-per-weight budget in real storage"
    public static let ggmlTypes: [GGMLType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_0]

    public enum Target: String, Sendable { case int, ggml }
    public enum Unit: String, Sendable { case column, tensor }

    public struct Options: PassOptions {
        public var average: Double
        public var minimum: Int
        public var maximum: Int
        public var unit: Unit
        public var target: Target
        public var types: [GGMLType]
        public var weightsOnly: Bool
        public var theta: Double

        public init(reading reader: inout OptionReader) {
            average = reader.double("average", default: 4, in: 0.5...16, help: "bits per weight over the selected tensors, counting scales and zero points")
            minimum = reader.int("min", default: 2, in: 0...8, help: "target=int: smallest width (0 lets a column be dropped; tensor granularity needs 2 or more)")
            maximum = reader.int("max", default: 8, in: 1...8, help: "target=int: largest width")
            unit = Unit(rawValue: reader.choice("granularity", default: "column", from: ["column", "tensor"], help: "target=int: one width per input column (BAQ) or per tensor")) ?? .column
            target = Target(rawValue: reader.choice("target", default: "int", from: ["int", "ggml"], help: "int: widths for quantize.int bits=auto; ggml: types for quantize.ggml type=auto")) ?? .int
            let names = reader.list("types", help: "target=ggml: the candidate types (default Q2_K,Q3_K,Q4_K,Q5_K,Q6_K,Q8_0)")
            weightsOnly = reader.choice("proxy", default: "hessian", from: ["hessian", "weights"], help: "hessian: calibration statistics; weights: plain squared error, no statistics") == "weights"
            theta = reader.double("theta", default: 1.95, in: 0.5...4, help: "column loss model L(R) ∝ 2^(−θR)")
            types = BitAllocationPass.ggmlTypes
            if !names.isEmpty {
                var parsed: [GGMLType] = []
                for name in names {
                    if let type = GGMLType(name: name), GGMLQuantizationPass.types.contains(type) { parsed.append(type) } else {
                        reader.report("types", "'\(name)' is not one of \(GGMLQuantizationPass.types.map(\.name).joined(separator: ", "))")
                    }
                }
                if !parsed.isEmpty { types = parsed }
            }
            if minimum > maximum { reader.report("min", "min=\(minimum) is above max=\(maximum)") }
            if target == .int && unit == .tensor && minimum < 2 { reader.report("min", "granularity=tensor needs min=2 or more (quantize.int widths are 2...8)") }
            if target == .ggml && unit == .column { reader.report("granularity", "target=ggml picks one type per tensor (leave granularity out or say tensor)") }
            if target == .ggml { unit = .tensor }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static let usesCalibration = true
    public static var rewritesTensors: Bool { false }
    public var requiresCalibration: Bool { !options.weightsOnly }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        if options.target == .ggml {
            let rowLength = entry.shape.dimensions.last ?? 1
            let fitting = options.types.filter { rowLength % $0.blockSize == 0 }
            if fitting.isEmpty { return "row length \(rowLength) is not a multiple of any candidate type's block size" }
        }
        return nil
    }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? {
        guard !options.weightsOnly else { return nil }
        let columns = entry.shape.columnCount
        do {
            if let h = try statistics.hessian(for: entry.name), h.count != columns * columns {
                return "\(statistics.path) has a Hessian of \(h.count) values for rows of \(columns)"
            }
            guard let d = try statistics.activationSquares(for: entry.name) else {
                return "\(statistics.path) has no statistics for it (add proxy=weights to allocate without)"
            }
            return d.count == columns ? nil : "\(statistics.path) has \(d.count) statistics for rows of \(columns)"
        } catch {
            return "\(error)"
        }
    }

    public func consumerProblem(_ consumer: any CompressionPass) -> String? {
        switch options.target {
        case .int:
            guard let int = consumer as? IntegerQuantization else { return "target=int plans widths for quantize.int bits=auto, not \(type(of: consumer).name)" }
            if options.unit == .column && int.options.quantizer.granularity != .channel {
                return "granularity=column needs quantize.int granularity=channel (one scale per row and width), not \(int.options.quantizer.granularity)"
            }
            return nil
        case .ggml:
            return consumer is GGMLQuantizationPass ? nil : "target=ggml plans types for quantize.ggml type=auto, not \(type(of: consumer).name)"
        }
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {}

    public func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws {
        var planner = BitAllocationPlanner(options: options, format: context.outputFormat, threadCount: context.threadCount)
        for i in selected {
            let entry = checkpoint.entries[i]
            guard let consumer = consumers[i] else { continue }
            try planner.add(entry, consumer: consumer, statistics: context.calibration)
        }
        let result = try planner.solve()
        for (name, setting) in result.settings { context.plan.set(setting, for: name) }
        let location = context.location.map { " (\($0))" } ?? ""
        context.note?("\(Self.name)\(location): \(result.summary)")
    }
}
