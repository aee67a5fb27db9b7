import Foundation
import TensorCore
import CheckpointFormats
import Recipes

/// `prune.wanda`: pruning by weights and activations (Sun et al. 2023; algorithms.md §4.2). No
/// weight update.
///
/// Score `S_rj = |W_rj| · ‖X_j‖₂` with `‖X_j‖₂² = act_sq_j`, the mean squared input of column `j`
/// (the calibration file's `<W>.act_sq`, the diagonal of `<W>.hessian`, or an imatrix entry). Each
/// output row is its own comparison group: every row of `c` weights loses exactly `round(p·c)` of its
/// lowest scores (ties to the earlier column); with `pattern=N:M`, every group of `M` columns of a
/// row loses its `M − N` lowest. It is OBD with a diagonal Hessian: `S²` is OBD's saliency `H_jj w²`
/// up to the factor ½.
public struct WandaPruning: PruningPass {
    public static let name = "prune.wanda"
    public static let summary = "Wanda: prune the lowest |w|·‖x‖ of every row (or N:M), from act_sq calibration statistics"

    public struct Options: PassOptions {
        public var target: PruningTarget
        public init(reading reader: inout OptionReader) { target = PruningTarget(reading: &reader) }
    }

    public let options: Options
    public init(options: Options) { self.options = options }
    var target: PruningTarget { options.target }

    public static let usesCalibration = true
    public var requiresCalibration: Bool { true }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? {
        do {
            guard let d = try statistics.activationSquares(for: entry.name) else { return "\(statistics.path) has no statistics for it; Wanda needs act_sq" }
            return d.count == entry.shape.columnCount ? nil : "\(statistics.path) has \(d.count) statistics for rows of \(entry.shape.columnCount)"
        } catch {
            return "\(error)"
        }
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        var values = try Self.finiteValues(of: entry)
        let columns = entry.shape.columnCount
        guard let statistics = context.calibration, let squares = try statistics.activationSquares(for: entry.name), squares.count == columns else {
            throw PassError(pass: Self.name, tensor: entry.name, message: "needs \(columns) act_sq statistics from the calibration file")
        }
        let norms = squares.map { $0.squareRoot() }
        var mask = [Bool](repeating: false, count: values.count)
        let perRow = options.target.prunedCount(of: columns)
        values.withUnsafeBufferPointer { w in
            mask.withUnsafeMutableBufferPointer { mask in
                ParallelLoop.forEachRange(count: w.count / max(columns, 1), threadCount: context.threadCount) { rows in
                    var scores = [Float](repeating: 0, count: columns)
                    for r in rows {
                        for j in 0..<columns { scores[j] = abs(w[r * columns + j]) * norms[j] }
                        let rowMask = UnsafeMutableBufferPointer(rebasing: mask[(r * columns)..<((r + 1) * columns)])
                        scores.withUnsafeBufferPointer { s in
                            if case .nOfM(let n, let m) = options.target.pattern {
                                PruningTarget.markGroups(s, kept: n, group: m, into: rowMask)
                            } else {
                                SmallestScores.mark(s, count: perRow, into: rowMask)
                            }
                        }
                    }
                }
            }
        }
        try Self.storePruned(&values, mask: mask, in: &entry, pattern: options.target.pattern)
    }
}
