import TensorCore
import CheckpointFormats
import Recipes

/// `quantize.int`: uniform integer post-training quantization of weight matrices (see
/// `IntegerQuantizer` for the formulas).
///
/// ```
/// quantize.int bits=4 granularity=group:128 symmetric=true clipping=mse ignore="lm_head.weight"
/// ```
/// Options: `bits` 2–8; `granularity` tensor | channel | group:N (N divides every selected row);
/// `symmetric`; `clipping` minmax | mse | percentile:P. Already-zero weights stay exactly zero.
///
/// `method=gptq` compensates each column's rounding error on the columns not yet quantized, using
/// each weight's input Hessian from the calibration statistics (see `GPTQQuantizer`; `block=`,
/// `damp=`, `act_order=`). It needs a full Hessian (`<weight>.hessian`) unless `hessian=diagonal`
/// allows the diagonal (`act_sq` or an imatrix), and uses min/max grids (`clipping` must stay minmax).
/// A pruned tensor (an earlier `prune.*` step) keeps its zeros exactly: round to nearest maps 0 to
/// the grid's zero, and GPTQ quantizes the pruned weights to 0 and compensates the difference.
/// `bits=auto` takes each tensor's width from an earlier `allocate.bits` step: one width per tensor,
/// or one per input column (`granularity=channel` only; each row then has one scale, and zero point,
/// per width present, see `QuantizedTensor.columnBits`).
/// Memory: the codes (one byte per weight); F16/BF16 inputs also take one float copy of the tensor.
public struct IntegerQuantization: CompressionPass {
    public static let name = "quantize.int"
    public static let summary = "integer PTQ (2-8 bits), symmetric or asymmetric, per tensor/channel/group, minmax/mse/percentile clipping"

    public struct Options: PassOptions {
        public var quantizer: IntegerQuantizer
        /// Set for `method=gptq`.
        public var gptq: GPTQQuantizer?
        /// `hessian=diagonal`: GPTQ may use the diagonal when the statistics have no full Hessian.
        public var allowsDiagonal = false
        /// `bits=auto`: the width comes from an `allocate.bits` plan.
        public var planned = false

        public init(reading reader: inout OptionReader) {
            let chosen = reader.intOrAuto("bits", default: 8, in: 2...8, help: "bit width of the codes, or auto (from an allocate.bits step)")
            planned = chosen == nil
            let bits = chosen ?? 8
            let symmetric = reader.bool("symmetric", default: true, help: "signed grid around 0 (else an integer zero point)")
            let granularity = IntegerQuantization.granularity(reader.text("granularity", help: "tensor | channel | group:N (default channel)"), reader: &reader)
            let clipping = IntegerQuantization.clipping(reader.text("clipping", help: "minmax | mse | percentile:P (default minmax)"), reader: &reader)
            quantizer = IntegerQuantizer(bits: bits, symmetric: symmetric, granularity: granularity, clipping: clipping)
            let method = reader.choice("method", default: "rtn", from: ["rtn", "gptq"], help: "rtn: round to nearest; gptq: error compensation with the calibration Hessian")
            let block = reader.int("block", default: 128, in: 1...65536, help: "gptq: columns per lazy-update block")
            let damp = reader.double("damp", default: 0.01, in: 0...1, help: "gptq: damping, a fraction of mean(diag H)")
            let actOrder = reader.bool("act_order", default: false, help: "gptq: quantize columns by decreasing H_jj")
            let hessian = reader.choice("hessian", default: "full", from: ["full", "diagonal"], help: "gptq: diagonal allows act_sq/imatrix statistics")
            if method == "gptq" {
                if clipping != .minMax { reader.report("clipping", "method=gptq uses min/max grids; remove clipping=") }
                gptq = GPTQQuantizer(bits: bits, symmetric: symmetric, granularity: granularity, blockSize: block, damping: damp, actOrder: actOrder)
                allowsDiagonal = hessian == "diagonal"
            }
        }
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public static func selectsByDefault(name: String, rank: Int) -> Bool { isWeightMatrix(name: name, rank: rank) }

    public var requiresCalibration: Bool { options.gptq != nil }
    public var takesPlannedSetting: Bool { options.planned }

    public func calibrationProblem(with entry: CheckpointManifest.Entry, statistics: CalibrationStatistics) -> String? {
        guard options.gptq != nil else { return nil }
        let columns = entry.shape.columnCount
        do {
            if let h = try statistics.hessian(for: entry.name) {
                return h.count == columns * columns ? nil : "\(statistics.path) has a Hessian of \(h.count) values for rows of \(columns)"
            }
            guard let d = try statistics.activationSquares(for: entry.name) else {
                return "\(statistics.path) has no statistics for it; GPTQ needs its input Hessian"
            }
            guard options.allowsDiagonal else {
                return "\(statistics.path) has only the diagonal of its Hessian (act_sq or imatrix); GPTQ needs the full one (add hessian=diagonal to use the diagonal)"
            }
            return d.count == columns ? nil : "\(statistics.path) has \(d.count) statistics for rows of \(columns)"
        } catch {
            return "\(error)"
        }
    }

    public func problem(with entry: CheckpointManifest.Entry) -> String? {
        guard let dtype = entry.dtype, dtype.isConvertibleFloat else { return "expects a dense float tensor, found \(entry.encoding)" }
        return options.quantizer.check(shape: entry.shape)
    }

    /// F32 tensors are quantized straight from their bytes (the memory map); other float dtypes are
    /// decoded to Float first. The scan for NaN/Inf is part of the quantizer's range pass.
    public func apply(to entry: inout TensorEntry, context: PassContext) throws {
        guard case .dense(let tensor) = entry.payload, tensor.dtype.isConvertibleFloat else {
            _ = try Self.finiteValues(of: entry)   // throws "expects a dense float tensor"
            return
        }
        guard options.planned else { return try apply(to: &entry, tensor: tensor, quantizer: options.quantizer, gptq: options.gptq, columnBits: nil, context: context) }
        let base = options.quantizer
        switch context.plan[entry.name] {
        case .bits(let b):
            let quantizer = IntegerQuantizer(bits: b, symmetric: base.symmetric, granularity: base.granularity, clipping: base.clipping)
            let gptq = options.gptq.map { GPTQQuantizer(bits: b, symmetric: base.symmetric, granularity: base.granularity, blockSize: $0.blockSize, damping: $0.damping, actOrder: $0.actOrder) }
            try apply(to: &entry, tensor: tensor, quantizer: quantizer, gptq: gptq, columnBits: nil, context: context)
        case .columnBits(let widths):
            try apply(to: &entry, tensor: tensor, quantizer: base, gptq: options.gptq, columnBits: widths, context: context)
        case .ggml, .pruneBelow, .permutedRows, .shared, nil:
            throw PassError(pass: Self.name, tensor: entry.name, message: "bits=auto, but no allocate.bits step planned a width for it")
        }
    }

    private func apply(to entry: inout TensorEntry, tensor: DenseTensor, quantizer: IntegerQuantizer, gptq: GPTQQuantizer?,
                       columnBits: [UInt8]?, context: PassContext) throws {
        if let columnBits {
            guard columnBits.count == entry.shape.columnCount else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "the plan has \(columnBits.count) column widths for \(entry.shape.columnCount) columns")
            }
        }
        if let gptq {
            let values = try Self.finiteValues(of: entry)
            guard let statistics = context.calibration else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "method=gptq needs calibration statistics")
            }
            let n = entry.shape.columnCount
            var hessian = try statistics.hessian(for: entry.name)
            if hessian == nil, options.allowsDiagonal, let d = try statistics.activationSquares(for: entry.name) {
                var h = [Float](repeating: 0, count: n * n)
                for j in 0..<min(n, d.count) { h[j * n + j] = d[j] }
                hessian = h
            }
            guard let hessian, hessian.count == n * n else {
                throw PassError(pass: Self.name, tensor: entry.name, message: "no usable Hessian in \(statistics.path)")
            }
            do {
                let zeros = entry.sparsity == nil ? nil : values.map { $0 == 0 }   // pruned weights stay 0
                entry.payload = .quantized(try gptq.quantize(values, shape: entry.shape, hessian: hessian, columnBits: columnBits,
                                                             keepingZeros: zeros, threadCount: context.threadCount))
            } catch {
                throw PassError(pass: Self.name, tensor: entry.name, message: "GPTQ: \(error) (even with 10000x the damping)")
            }
            return
        }
        let shape = entry.shape, threads = context.threadCount
        if let columnBits {
            entry.payload = .quantized(quantizer.quantize(try Self.finiteValues(of: entry), shape: shape, columnBits: columnBits, threadCount: threads))
            return
        }
        let quantized = tensor.dtype == .f32
            ? tensor.storage.withUnsafeBytes { quantizer.quantize(float32: $0, shape: shape, threadCount: threads) }
            : try tensor.floats().withUnsafeBytes { quantizer.quantize(float32: $0, shape: shape, threadCount: threads) }
        guard let quantized else {
            _ = try Self.finiteValues(of: entry)   // throws, naming the first NaN or Inf
            preconditionFailure("quantize.int: a non-finite value was reported but not found")
        }
        entry.payload = .quantized(quantized)
    }

    static func granularity(_ text: String?, reader: inout OptionReader) -> QuantizedTensor.Granularity {
        guard let text else { return .channel }
        guard let granularity = QuantizedTensor.Granularity(text) else {
            reader.report("granularity", "'\(text)' is not tensor, channel or group:N")
            return .channel
        }
        return granularity
    }

    static func clipping(_ text: String?, reader: inout OptionReader) -> IntegerQuantizer.Clipping {
        guard let text else { return .minMax }
        switch text {
        case "minmax": return .minMax
        case "mse": return .defaultMSE
        default:
            if text.hasPrefix("percentile:"), let p = Double(text.dropFirst(11)), p > 50, p <= 100 { return .percentile(p) }
            reader.report("clipping", "'\(text)' is not minmax, mse or percentile:P (50 < P ≤ 100)")
            return .minMax
        }
    }
}
