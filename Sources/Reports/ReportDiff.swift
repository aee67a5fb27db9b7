/// The comparison of report A (before) with report B (after), for `modelpress diff A B`.
///
/// Tensors are matched by name. For a matched tensor and each `Metric`, the change is
///
///     change = value_B − value_A      (0 when the two are equal, including ∞ and ∞; NaN when exactly
///                                      one side is NaN, 0 when both are)
///
/// so a positive change of `relative_error` is a regression. `changes` is sorted by the change of
/// `relative_error`, largest first (NaN first of all, since a NaN error needs attention), ties by
/// name. Tensors found in only one report are listed apart, in their report's order; in-memory
/// reports with repeated names are matched occurrence by occurrence (decoded reports never repeat one).
public struct ReportDiff: Sendable {
    /// One tensor present in both reports.
    public struct TensorChange: Sendable, Equatable {
        /// The record in report A.
        public let a: TensorRecord
        /// The record in report B (same name).
        public let b: TensorRecord

        /// The tensor name (the same in A and B).
        public var name: String { a.name }

        /// `metric(B) − metric(A)` (see `ReportDiff.change(from:to:)`); nil when either record lacks
        /// the metric (only `output_relative_error` can be absent).
        public func change(_ metric: Metric) -> Double? {
            guard let va = metric.value(of: a), let vb = metric.value(of: b) else { return nil }
            return ReportDiff.change(from: va, to: vb)
        }

        /// `relative_error(B) − relative_error(A)`: the absolute increase; positive is worse.
        public var relativeErrorChange: Double { ReportDiff.change(from: a.relativeError, to: b.relativeError) }
    }

    /// The report compared from.
    public let a: CompressionReport
    /// The report compared to.
    public let b: CompressionReport
    /// Matched tensors, largest `relative_error` regression first, ties by name.
    public let changes: [TensorChange]
    /// Tensors of A with no namesake in B, in A's order.
    public let onlyInA: [TensorRecord]
    /// Tensors of B with no namesake in A, in B's order.
    public let onlyInB: [TensorRecord]

    /// Matches the tensors of `a` and `b` by name and sorts the changes.
    public init(from a: CompressionReport, to b: CompressionReport) {
        self.a = a
        self.b = b
        var positionsInB: [String: [Int]] = [:]
        for (i, t) in b.tensors.enumerated() { positionsInB[t.name, default: []].append(i) }
        var matchedInB = [Bool](repeating: false, count: b.tensors.count)
        var matched: [TensorChange] = []
        var onlyA: [TensorRecord] = []
        for t in a.tensors {
            if var queue = positionsInB[t.name], !queue.isEmpty {
                let j = queue.removeFirst()
                positionsInB[t.name] = queue
                matchedInB[j] = true
                matched.append(TensorChange(a: t, b: b.tensors[j]))
            } else {
                onlyA.append(t)
            }
        }
        changes = matched.sorted(by: ReportDiff.regressesMore)
        onlyInA = onlyA
        onlyInB = b.tensors.indices.filter { !matchedInB[$0] }.map { b.tensors[$0] }
    }

    /// The matched tensors whose `relative_error` grew by more than `threshold`, an *absolute*
    /// increase (`relative_error(B) − relative_error(A) > threshold`; 0.01 means one percentage point
    /// of ||ΔW||/||W||, not a 1% relative growth), in `changes` order. A NaN change counts as a
    /// regression. Tensors present in only one report are never regressions. `modelpress diff
    /// --fail-above X` exits 2 when this is not empty.
    public func regressions(above threshold: Double) -> [TensorChange] {
        changes.filter { $0.relativeErrorChange.isNaN || $0.relativeErrorChange > threshold }
    }

    /// `b − a`, except 0 when `a == b` (so `∞ → ∞` is no change) or both are NaN.
    public static func change(from a: Double, to b: Double) -> Double {
        if a == b || (a.isNaN && b.isNaN) { return 0 }
        return b - a
    }

    /// The sort order of `changes`: larger relative-error change first, NaN before everything, then name.
    static func regressesMore(_ x: TensorChange, _ y: TensorChange) -> Bool {
        let cx = x.relativeErrorChange, cy = y.relativeErrorChange
        if cx.isNaN != cy.isNaN { return cx.isNaN }
        if !cx.isNaN && cx != cy { return cx > cy }
        return x.name < y.name
    }
}

extension ReportDiff {
    /// A per-tensor quantity compared by `diff`, named as in the report JSON.
    public enum Metric: String, CaseIterable, Sendable {
        case bitsPerWeight = "bits_per_weight"
        case sparsity
        case inputByteCount = "bytes_in"
        case outputByteCount = "bytes_out"
        case relativeError = "relative_error"
        case sqnrDecibels = "sqnr_db"
        case maxAbsoluteError = "max_abs_error"
        case cosine
        case outputRelativeError = "output_relative_error"

        /// The metric's value in `record`; nil only for an absent `output_relative_error`.
        public func value(of record: TensorRecord) -> Double? {
            switch self {
            case .bitsPerWeight: record.bitsPerWeight
            case .sparsity: record.sparsity
            case .inputByteCount: Double(record.inputByteCount)
            case .outputByteCount: Double(record.outputByteCount)
            case .relativeError: record.relativeError
            case .sqnrDecibels: record.sqnrDecibels
            case .maxAbsoluteError: record.maxAbsoluteError
            case .cosine: record.cosine
            case .outputRelativeError: record.outputRelativeError
            }
        }

        /// True for byte counts, written as integers.
        var isCount: Bool { self == .inputByteCount || self == .outputByteCount }

        /// The value as people read it (`2.470e-02`, `32.15`, `50.00%`).
        func human(_ x: Double) -> String {
            switch self {
            case .bitsPerWeight: NumberText.bits(x)
            case .sparsity: NumberText.percent(x)
            case .inputByteCount, .outputByteCount: NumberText.integer(x)
            case .relativeError, .maxAbsoluteError, .outputRelativeError: NumberText.error(x)
            case .sqnrDecibels: NumberText.decibels(x)
            case .cosine: NumberText.cosine(x)
            }
        }

        /// A change as people read it, with an explicit sign (`+1.250e-03`, `-3.01`).
        func humanChange(_ x: Double) -> String {
            switch self {
            case .sparsity: NumberText.signed(x) { $0.isFinite ? NumberText.fixed(100 * $0, decimals: 2) + "%" : NumberText.machine($0) }
            case .sqnrDecibels: NumberText.signed(x) { NumberText.fixed($0, decimals: 2) }
            default: NumberText.signed(x, human)
            }
        }
    }
}
