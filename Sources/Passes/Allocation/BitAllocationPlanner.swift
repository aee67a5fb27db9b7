import Foundation
import TensorCore
import CheckpointFormats

/// The work of `allocate.bits.plan`: measures each selected tensor's choices (streaming, one tensor's
/// values at a time; only a cost and a loss per choice are kept), then solves one budget over all of
/// them (see `BitAllocationPass` for the model).
struct BitAllocationPlanner {
    let options: BitAllocationPass.Options
    let format: CheckpointFormat
    let threadCount: Int

    /// One selected tensor: its units' positions in `units` and what each choice index means.
    private struct Planned {
        let name: String
        let rows: Int
        let columns: Int
        let rank: Int
        let symmetric: Bool
        let units: Range<Int>
        let settings: [AllocationPlan.Setting]   // tensor and ggml units: the setting of each choice
    }

    private var tensors: [Planned] = []
    private var units: [[(cost: Double, loss: Double)]] = []
    private var weightCount = 0
    /// Column granularity: the widths a choice index stands for, and the reference losses (for the
    /// closed form's predicted gain).
    private var widths: [Int] { Array(options.minimum...options.maximum) }
    private var referenceLosses: [Double] = []
    private var referenceSizes: [Int] = []

    init(options: BitAllocationPass.Options, format: CheckpointFormat, threadCount: Int) {
        self.options = options
        self.format = format
        self.threadCount = threadCount
    }

    mutating func add(_ entry: TensorEntry, consumer: any CompressionPass, statistics: CalibrationStatistics?) throws {
        let values = try BitAllocationPass.finiteValues(of: entry)
        let shape = entry.shape, rows = shape.rowCount, columns = shape.columnCount
        let integer = consumer as? IntegerQuantization
        var s = try ColumnSensitivity.weights(for: entry.name, columns: columns, statistics: statistics,
                                              gptq: integer?.options.gptq, weightsOnly: options.weightsOnly)
        // Losses relative to the tensor's own output energy (the proxy's tr(W H Wᵀ)), so that tensors
        // whose outputs live on different scales compete on relative output error.
        let squares = ColumnSensitivity.columnSquares(values, columns: columns)
        let energy = zip(squares, s).reduce(0.0) { $0 + $1.0 * $1.1 }
        if energy > 0 { s = s.map { $0 / energy } }
        let first = units.count
        var settings: [AllocationPlan.Setting] = []
        switch (options.target, options.unit) {
        case (.ggml, _):
            guard case .dense(let dense) = entry.payload else { return }
            let importance = try statistics?.activationSquares(for: entry.name)   // as quantize.ggml will use them
            var choices: [(cost: Double, loss: Double)] = []
            for type in options.types where (shape.dimensions.last ?? 1) % type.blockSize == 0 {
                let quantized = try GGMLQuantization.quantize(dense, name: entry.name, to: type, importance: importance, threadCount: threadCount)
                let restored = try GGMLQuantization.dequantize(quantized, name: entry.name, threadCount: threadCount)
                choices.append((Double(quantized.storage.count * 8), ColumnSensitivity.loss(values, restored, weights: s)))
                settings.append(.ggml(type))
            }
            units.append(choices)
        case (.int, .tensor):
            let base = integer!.options.quantizer
            var choices: [(cost: Double, loss: Double)] = []
            for b in options.minimum...options.maximum {
                let quantizer = IntegerQuantizer(bits: b, symmetric: base.symmetric, granularity: base.granularity, clipping: base.clipping)
                let q = quantizer.quantize(values, shape: shape, threadCount: threadCount)
                let cost = TensorEntry(name: entry.name, payload: .quantized(q)).byteCount(in: format) * 8
                choices.append((Double(cost), ColumnSensitivity.loss(values, q.dequantized(), weights: s)))
                settings.append(.bits(b))
            }
            units.append(choices)
        case (.int, .column):
            let base = integer!.options.quantizer
            let reference = referenceWidth
            let quantizer = IntegerQuantizer(bits: reference, symmetric: base.symmetric, granularity: .channel, clipping: base.clipping)
            let losses = ColumnSensitivity.columnLosses(values, quantizer.quantize(values, shape: shape, threadCount: threadCount).dequantized(), weights: s)
            for j in 0..<columns {
                units.append(widths.map { b in
                    (Double(rows * b), b == 0 ? squares[j] * s[j] : losses[j] * pow(2, -options.theta * Double(b - reference)))
                })
            }
            referenceLosses += losses
            referenceSizes += [Int](repeating: rows, count: columns)
        }
        tensors.append(Planned(name: entry.name, rows: rows, columns: columns, rank: shape.rank,
                               symmetric: integer?.options.quantizer.symmetric ?? true, units: first..<units.count, settings: settings))
        weightCount += shape.elementCount
    }

    /// The width the column losses are measured at: the average, rounded, within `min...max`.
    private var referenceWidth: Int { min(max(Int(options.average.rounded()), max(options.minimum, 1)), options.maximum) }

    struct Result {
        let settings: [(String, AllocationPlan.Setting)]
        let summary: String
    }

    func solve() throws -> Result {
        let budget = options.average * Double(weightCount)
        guard !tensors.isEmpty else { return Result(settings: [], summary: "no tensor to allocate") }
        if options.unit == .column && options.target == .int { return try solveColumns(budget: budget) }
        guard let chosen = BitAllocation.choose(units, budget: budget) else {
            let cheapest = units.reduce(0.0) { $0 + ($1.map(\.cost).min() ?? 0) } / Double(weightCount)
            throw AllocationError.budgetTooSmall(average: options.average, cheapest: cheapest)
        }
        var settings: [(String, AllocationPlan.Setting)] = []
        var used = 0.0
        var counts: [String: Int] = [:]
        for t in tensors {
            let u = t.units.lowerBound
            settings.append((t.name, t.settings[chosen[u]]))
            used += units[u][chosen[u]].cost
            counts[t.settings[chosen[u]].description, default: 0] += 1
        }
        let mix = counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        return Result(settings: settings, summary: "\(tensors.count) tensors: \(String(format: "%.3f", used / Double(weightCount))) bits per weight (budget \(options.average)): \(mix)")
    }

    /// Column widths: the codes' budget is what the tensors' overhead leaves (one scale, and zero
    /// point, per row and width present; the width table; the shape; row padding), re-solved until
    /// the widths present stop changing; the best allocation within the budget is kept.
    private func solveColumns(budget: Double) throws -> Result {
        let widths = self.widths
        var present = tensors.map { _ in widths.filter { $0 > 0 }.count }
        var best: (chosen: [Int], used: Double)?
        for _ in 0..<12 {
            let overhead = zip(tensors, present).reduce(0.0) { $0 + overheadBits($1.0, widthCount: $1.1) + Double($1.0.rows * 7) }
            guard let chosen = BitAllocation.choose(units, budget: budget - overhead) else { break }
            let used = storageBits(chosen)
            if used <= budget && used > (best?.used ?? -1) { best = (chosen, used) }
            let next = tensors.map { t in Set(t.units.map { widths[chosen[$0]] }.filter { $0 > 0 }).count }
            if next == present { break }
            present = next
        }
        guard var (chosen, used) = best else {
            let cheapest = tensors.reduce(0.0) { $0 + overheadBits($1, widthCount: 1) + Double($1.rows * $1.columns * widths[0]) } / Double(weightCount)
            throw AllocationError.budgetTooSmall(average: options.average, cheapest: cheapest)
        }
        used = topUp(&chosen, used: used, budget: budget)
        var settings: [(String, AllocationPlan.Setting)] = []
        for t in tensors { settings.append((t.name, .columnBits(t.units.map { UInt8(widths[chosen[$0]]) }))) }
        let allWidths = chosen.map { widths[$0] }
        let modelGain = closedFormGain()
        let summary = "\(tensors.count) tensors, \(units.count) columns: \(String(format: "%.3f", used / Double(weightCount))) bits per weight (budget \(options.average)), widths \(allWidths.min()!)-\(allWidths.max()!); closed form: loss \(String(format: "%.3f", modelGain))x uniform's"
        return Result(settings: settings, summary: summary)
    }

    /// Spends what the solve left (its reserve for row padding and width overhead): columns move up
    /// one width, best loss decrease per code bit first, when the real storage stays within the
    /// budget and the tensor already has the new width (no new scales). Returns the storage used.
    private func topUp(_ chosen: inout [Int], used: Double, budget: Double) -> Double {
        let widths = self.widths
        var used = used
        var rowBits = tensors.map { t in t.units.reduce(0) { $0 + widths[chosen[$1]] } }
        for _ in 0..<(widths.count) {
            var candidates: [(gain: Double, unit: Int, tensor: Int)] = []
            for (t, tensor) in tensors.enumerated() {
                let present = Set(tensor.units.map { widths[chosen[$0]] })
                for u in tensor.units where chosen[u] + 1 < widths.count && present.contains(widths[chosen[u] + 1]) {
                    let gain = (units[u][chosen[u]].loss - units[u][chosen[u] + 1].loss) / Double(tensor.rows * (widths[chosen[u] + 1] - widths[chosen[u]]))
                    if gain > 0 { candidates.append((gain, u, t)) }
                }
            }
            candidates.sort { $0.gain > $1.gain || ($0.gain == $1.gain && $0.unit < $1.unit) }
            var moved = false
            for c in candidates {
                let t = tensors[c.tensor], step = widths[chosen[c.unit] + 1] - widths[chosen[c.unit]]
                let extra = Double(t.rows * 8 * ((rowBits[c.tensor] + step + 7) / 8 - (rowBits[c.tensor] + 7) / 8))
                guard used + extra <= budget else { continue }
                used += extra
                rowBits[c.tensor] += step
                chosen[c.unit] += 1
                moved = true
            }
            if !moved { break }
        }
        return used
    }

    /// Bits of everything but the codes for a column-mixed tensor with `widthCount` widths present:
    /// per row and width a 16-bit scale (and an 8-bit zero point when asymmetric), an 8-bit width per
    /// column, and safetensors' 64-bit shape entries (GGUF stores no shape part: its files come out
    /// 16 bytes per tensor under the budget, and the plan is the same for both outputs).
    private func overheadBits(_ t: Planned, widthCount: Int) -> Double {
        Double(t.rows * widthCount * (t.symmetric ? 16 : 24) + t.columns * 8 + t.rank * 64)
    }

    /// Real storage of a column allocation: byte-padded rows of codes plus each tensor's overhead.
    private func storageBits(_ chosen: [Int]) -> Double {
        let widths = self.widths
        return tensors.reduce(0.0) { total, t in
            let rowBits = t.units.reduce(0) { $0 + widths[chosen[$1]] }
            let present = Set(t.units.map { widths[chosen[$0]] }.filter { $0 > 0 }).count
            return total + Double(t.rows * ((rowBits + 7) / 8) * 8) + overheadBits(t, widthCount: present)
        }
    }

    /// `G/A` of the reference column losses: the closed form's optimal loss relative to the uniform
    /// allocation's (algorithms.md §3.1), before clamping to `min...max`.
    private func closedFormGain() -> Double {
        var logSum = 0.0, sum = 0.0, size = 0.0
        for (l, n) in zip(referenceLosses, referenceSizes) {
            logSum += Double(n) * log(l + 1e-30)
            sum += Double(n) * l
            size += Double(n)
        }
        guard sum > 0 else { return 1 }
        return exp(logSum / size) / (sum / size)
    }
}

/// A budget that cannot be met (exit 65: the recipe asks for the impossible).
public enum AllocationError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case budgetTooSmall(average: Double, cheapest: Double)

    public var description: String {
        switch self {
        case .budgetTooSmall(let average, let cheapest):
            "allocate.bits: average=\(average) is below the smallest storage the choices allow (\(String(format: "%.3f", cheapest)) bits per weight)"
        }
    }
}
