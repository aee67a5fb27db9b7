import Foundation
import TensorCore
import CheckpointFormats
import Recipes

/// `share.rps`: randomized parameter sharing applied to a trained checkpoint (algorithms.md §5):
/// all selected tensors become views into one shared array of `m = ⌈n/R⌉` slots (`n` their
/// weights), read through `RandomFoldMap` (`rps-randomfold-splitmix64-v1`) with a sign hash and a
/// per-tensor scale: `ŵ_i = λ_t · g_i · z[h(i)]`.
///
/// ```
/// share.rps ratio=2 seed=0 targets="model.embed_tokens.weight"
/// share.rps ratio=4 force=true weighting=hessian
/// ```
/// - The slots are the least-squares optimum for the trained weights (`d_i` = 1, or with
///   `weighting=hessian` the Hessian diagonal `act_sq_j` of element `(r, j)` divided by its tensor's
///   output energy `Σ_j act_sq_j‖W_:j‖²`, which minimizes the sum of the tensors' relative output
///   errors in the diagonal proxy):
///   `z_k = Σ_{i→k} d_i λ_i g_i w_i / Σ_{i→k} d_i λ_i²` (0 for an empty slot), computed in float64 by
///   two scatter-adds; the error left is `Σ_k (Σ d w² − (Σ d λ g w)²/Σ d λ²)`.
/// - `λ_t` is the power of two nearest the tensor's RMS (STABLE-RPS's per-module scale, rounded so
///   that multiplying by it is exact): at `ratio=1` the map is a permutation and every weight comes
///   back bit for bit.
/// - `chunk=C`: runs of `C` consecutive weights map to consecutive slots (default: `m`, RANDOMFOLD,
///   which is exact at ratio 1 and spreads the load evenly).
/// - A fixed random map cannot know which weights matter: about `1 − 1/R` of the weight energy is
///   lost without retraining (50% at 2x). Ratios above 2 need `force=true`; the step notes the
///   energy lost.
public struct RPSSharing: CompressionPass {
    public static let name = "share.rps"
    public static let summary = "randomized parameter sharing (STABLE-RPS, RANDOMFOLD map): one shared slot array for the selected tensors, least-squares slots"

    public struct Options: PassOptions {
        public var ratio: Double
        public var seed: UInt64
        public var chunk: Int?
        public var weighted: Bool

        public init(reading reader: inout OptionReader) {
            ratio = reader.double("ratio", default: 2, in: 1...1_000_000, help: "weights per shared slot, n/m (1 reproduces the weights exactly)")
            let seedValue = reader.int("seed", default: 0, in: 0...Int.max, help: "seed of the hash map")
            seed = UInt64(seedValue)
            let chunkValue = reader.int("chunk", default: 0, in: 0...Int.max, help: "consecutive weights mapped to consecutive slots (0: the slot count, RANDOMFOLD)")
            chunk = chunkValue == 0 ? nil : chunkValue
            weighted = reader.choice("weighting", default: "none", from: ["none", "hessian"], help: "hessian: weight the projection by act_sq (the Hessian diagonal) from the calibration statistics") == "hessian"
            let force = reader.bool("force", default: false, help: "allow ratio > 2 (about 1 − 1/ratio of the weight energy is lost without retraining)")
            if ratio > 2 && !force {
                reader.report("ratio", "ratio=\(ratio) loses about \(Int((100 * (1 - 1 / ratio)).rounded()))% of the weights' energy without retraining; add force=true to do it anyway")
            }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static let usesCalibration = true
    public var requiresCalibration: Bool { options.weighted }
    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return nil
    }

    /// The importance of each input column of `entry` (`act_sq_j`), divided by the tensor's output
    /// energy `Σ_j act_sq_j Σ_r W_rj²` so that every tensor's relative output error counts the same
    /// (without it, tensors with small inputs, such as `down_proj`, would give way to the others in
    /// every shared slot); nil for `d = 1`.
    private func importance(of entry: TensorEntry, values w: [Float], context: PassContext) throws -> [Double]? {
        guard options.weighted, let statistics = context.calibration, let d = try statistics.activationSquares(for: entry.name),
              d.count == entry.shape.columnCount, !d.isEmpty else { return nil }
        var energy = 0.0
        for (i, x) in w.enumerated() { energy += Double(d[i % d.count]) * Double(x) * Double(x) }
        guard energy > 0 else { return nil }
        return d.map { Double($0) / energy }
    }

    /// Computes the slots from all selected tensors (two passes, one tensor in memory at a time) and
    /// leaves each tensor's view in the plan.
    public func plan(_ checkpoint: Checkpoint, selected: [Int], consumers: [Int: any CompressionPass], context: inout PassContext) throws {
        let entries = selected.map { checkpoint.entries[$0] }
        let n = entries.reduce(0) { $0 + $1.elementCount }
        guard n > 0 else { return }
        let m = max(1, min(n, Int((Double(n) / options.ratio).rounded(.up))))
        let map = RandomFoldMap(seed: options.seed, slotCount: m, chunk: options.chunk)
        var numerator = [Double](repeating: 0, count: m), denominator = [Double](repeating: 0, count: m)
        // Unweighted sums too: a slot whose members all have zero importance takes their plain mean.
        var plainNumerator = [Double](repeating: 0, count: options.weighted ? m : 0), plainDenominator = plainNumerator
        var scales: [Float] = [], offsets: [Int] = []
        var offset = 0
        for entry in entries {
            let w = try Self.finiteValues(of: entry)
            let scale = Self.powerOfTwoScale(w)
            let d = try importance(of: entry, values: w, context: context)
            let columns = max(entry.shape.columnCount, 1)
            let lambda = Double(scale)
            for j in 0..<w.count {
                let i = offset + j, k = map.slot(i)
                let weight = d.map { $0[j % columns] } ?? 1
                let signed = lambda * Double(map.sign(i)) * Double(w[j])
                numerator[k] += weight * signed
                denominator[k] += weight * lambda * lambda
                if options.weighted { plainNumerator[k] += signed; plainDenominator[k] += lambda * lambda }
            }
            scales.append(scale)
            offsets.append(offset)
            offset += w.count
        }
        let slots: [Float] = (0..<m).map { k in
            if denominator[k] > 0 { return Float(numerator[k] / denominator[k]) }
            return options.weighted && plainDenominator[k] > 0 ? Float(plainNumerator[k] / plainDenominator[k]) : 0
        }
        let arrayName = "rps." + (context.location.map { "\($0.line)" } ?? "0")
        var lost = 0.0, energy = 0.0
        for (t, entry) in entries.enumerated() {
            let view = SharedTensor(shape: entry.shape, arrayName: arrayName, map: map, offset: offsets[t], scale: scales[t], slots: slots, sharedElementCount: n)
            let w = try Self.finiteValues(of: entry), r = view.expanded(threadCount: context.threadCount)
            for j in w.indices { let e = Double(w[j]) - Double(r[j]); lost += e * e; energy += Double(w[j]) * Double(w[j]) }
            context.plan.set(.shared(view), for: entry.name)
        }
        let location = context.location.map { " (\($0))" } ?? ""
        context.note?("\(Self.name)\(location): \(n) weights in \(m) shared slots (\(String(format: "%.2f", Double(n) / Double(m)))x); \(String(format: "%.1f", energy > 0 ? 100 * lost / energy : 0))% of their energy is lost (about 1 − 1/ratio without retraining)")
    }

    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .shared(let view)? = context.plan[entry.name] else {
            throw PassError(pass: Self.name, tensor: entry.name, message: "no shared view was planned for it")
        }
        entry.payload = .shared(view)
    }

    /// The power of two nearest the RMS of `w` (1 for an all-zero tensor), so that `w/λ` and `λ·z`
    /// are exact in floating point.
    static func powerOfTwoScale(_ w: [Float]) -> Float {
        let rms = (w.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(w.count, 1))).squareRoot()
        guard rms > 0, rms.isFinite else { return 1 }
        let exponent = max(-100, min(100, Int(log2(rms).rounded())))
        return Float(sign: .plus, exponent: exponent, significand: 1)
    }
}
