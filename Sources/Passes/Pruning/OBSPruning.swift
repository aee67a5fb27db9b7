import TensorCore
import CheckpointFormats
import Recipes

/// `prune.obs`: second-order pruning with weight updates (Optimal Brain Surgeon family, algorithms.md
/// §4.3–4.5).
///
/// ```
/// prune.obs sparsity=50%                              # SparseGPT, from <W>.hessian
/// prune.obs pattern=2:4 block=128 damp=0.01
/// prune.obs hessian=fisher fisher_block=50 sparsity=50%   # oBERT, from <W>.grads
/// ```
/// - `hessian=activations` (default): SparseGPT with the layer's input Gram matrix
///   (`<W>.hessian`), see `SparseGPTPruner`; `block=` columns per block (a multiple of M for N:M),
///   `damp=` relative to `mean(diag H)`.
/// - `hessian=fisher`: the Optimal BERT Surgeon with a block-diagonal empirical Fisher from the
///   per-sample gradients `<W>.grads` `[samples, elements]`, see `FisherPruner`; `fisher_block=`
///   weights per Fisher block, `fisher_damp=` the absolute damping λ.
/// The tensor keeps its dtype; pruned weights are exact zeros and the entry is marked sparse.
public struct OBSPruning: PruningPass {
    public static let name = "prune.obs"
    public static let summary = "second-order pruning with updates: SparseGPT (calibration Hessian) or oBERT (Fisher from per-sample gradients), unstructured or N:M"

    public enum Curvature: String, Sendable { case activations, fisher }

    public struct Options: PassOptions {
        public var target: PruningTarget
        public var curvature: Curvature
        public var blockSize: Int
        public var damping: Double
        public var fisherBlockSize: Int
        public var fisherDamping: Double

        public init(reading reader: inout OptionReader) {
            target = PruningTarget(reading: &reader)
            curvature = Curvature(rawValue: reader.choice("hessian", default: "activations", from: ["activations", "fisher"],
                                                          help: "activations: SparseGPT with <W>.hessian; fisher: oBERT with <W>.grads")) ?? .activations
            blockSize = reader.int("block", default: 128, in: 1...65536, help: "activations: columns per block (a multiple of M for N:M)")
            damping = reader.double("damp", default: 0.01, in: 0...1, help: "activations: damping, a fraction of mean(diag H)")
            fisherBlockSize = reader.int("fisher_block", default: 50, in: 1...4096, help: "fisher: consecutive weights per Fisher block")
            fisherDamping = reader.double("fisher_damp", default: 1e-7, in: 1e-12...1, help: "fisher: damping λ added to the Fisher's diagonal")
            if case .nOfM(_, let m) = target.pattern, curvature == .activations, blockSize % m != 0 {
                reader.report("block", "block=\(blockSize) is not a multiple of the group size \(m)")
            }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }
    var target: PruningTarget { options.target }

    public static let usesCalibration = true
    public var requiresCalibration: Bool { true }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? {
        do {
            switch options.curvature {
            case .activations:
                let columns = entry.shape.columnCount
                guard let h = try statistics.hessian(for: entry.name) else {
                    return "\(statistics.path) has no Hessian for it; SparseGPT needs <W>.hessian (hessian=fisher uses <W>.grads)"
                }
                return h.count == columns * columns ? nil : "\(statistics.path) has a Hessian of \(h.count) values for rows of \(columns)"
            case .fisher:
                return try statistics.gradients(for: entry.name, elementCount: entry.shape.elementCount) == nil
                    ? "\(statistics.path) has no per-sample gradients for it; oBERT needs <W>.grads [samples, \(entry.shape.elementCount)]" : nil
            }
        } catch {
            return "\(error)"
        }
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        let values = try Self.finiteValues(of: entry)
        guard let statistics = context.calibration else {
            throw PassError(pass: Self.name, tensor: entry.name, message: "needs calibration statistics")
        }
        var pruned: (values: [Float], mask: [Bool])
        switch options.curvature {
        case .activations:
            let n = entry.shape.columnCount
            guard let hessian = try statistics.hessian(for: entry.name), hessian.count == n * n else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "no usable Hessian in \(statistics.path)")
            }
            do {
                pruned = try SparseGPTPruner(target: options.target, blockSize: options.blockSize, damping: options.damping)
                    .prune(values, shape: entry.shape, hessian: hessian, threadCount: context.threadCount)
            } catch {
                throw PassError(pass: Self.name, tensor: entry.name, message: "SparseGPT: \(error) (even with 10000x the damping)")
            }
        case .fisher:
            guard let grads = try statistics.gradients(for: entry.name, elementCount: values.count) else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "no per-sample gradients in \(statistics.path)")
            }
            pruned = FisherPruner(target: options.target, blockSize: options.fisherBlockSize, damping: options.fisherDamping)
                .prune(values, shape: entry.shape, gradients: grads.values, samples: grads.samples, threadCount: context.threadCount)
        }
        try Self.storePruned(&pruned.values, mask: pruned.mask, in: &entry, pattern: options.target.pattern)
    }
}
