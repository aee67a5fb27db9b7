import TensorCore

/// How quantized tensors are stored in safetensors, named like compressed-tensors.
///
/// For a quantized weight `<module>.weight` viewed as `[rows, columns]` (rows = outermost dimension):
/// - integer schemes (`pack-quantized`): `<module>.weight_packed` I32 `[rows, ⌈columns / (32/bits)⌉]`,
///   where value `i` of each int32 occupies bits `bits·i ..< bits·(i+1)` and holds the unsigned code
///   (compressed-tensors' signed value + 2^(bits−1)); `<module>.weight_scale` F16 (or F32 when a scale is
///   not a normal FP16 number) `[rows, groups]` (`[1]` per tensor); for asymmetric schemes
///   `<module>.weight_zero_point` I32 packed the same way along the rows, `[⌈rows / (32/bits)⌉, groups]`;
///   `<module>.weight_shape` I64 `[rank]`.
/// - NF4 codebook tensors: bitsandbytes' own serialization (see `BitsAndBytesLayout`).
/// - integer tensors with a width per column (`mixed-column-quantized`): see
///   `CompressedTensorsLayout+MixedWidth.swift`.
/// - FP8 (`float-quantized`): `<module>.weight` F8_E4M3 / F8_E5M2 with the codes and
///   `<module>.weight_scale` F32 `[rows, 1]` (`[1]` per tensor).
/// The scheme of every quantized tensor is recorded in `__metadata__` under `modelpress.quantization`
/// (JSON: tensor name to `{scheme, bits, symmetric, granularity}`), which is what the reader uses to
/// put the tensors back together.
public enum CompressedTensorsLayout {
    public static let metadataKey = "modelpress.quantization"

    /// The module name of a weight: `a.b.weight` gives `a.b`; other names are kept whole.
    public static func module(of name: String) -> String {
        name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
    }

    /// The stored tensors of one quantized weight, in the order they are written.
    public static func encode(name: String, _ q: QuantizedTensor) throws -> [(name: String, tensor: DenseTensor)] {
        let module = module(of: name)
        let rows = max(q.rowCount, 1), columns = q.columnCount
        let groups = q.scales.count / (q.granularity == .tensor ? 1 : rows)
        let scaleShape = q.granularity == .tensor ? Shape([1]) : Shape([rows, groups])
        switch q.scheme {
        case .float8(let kind):
            let scaleShape = q.granularity == .tensor ? Shape([1]) : Shape([rows, 1])
            return [(name, try DenseTensor(dtype: kind.dtype, shape: q.shape, storage: ByteStorage(q.codes))),
                    (module + ".weight_scale", try DenseTensor(floats: q.scales, shape: scaleShape, dtype: .f32))]
        case .codebook:
            return try BitsAndBytesLayout.encode(name: name, q)
        case .integer:
            if let columnBits = q.columnBits { return try encodeMixedWidths(module: module, q, columnBits: columnBits) }
            let halfExact = scalesFitHalf(q.scales)
            var out: [(name: String, tensor: DenseTensor)] = [
                (module + ".weight_packed", try pack(q.codes, rows: rows, columns: columns, bits: q.bits)),
                (module + ".weight_scale", try DenseTensor(floats: q.scales, shape: scaleShape, dtype: halfExact ? .f16 : .f32)),
            ]
            if !q.symmetric {
                // Zero points [rows, groups] packed along the rows (transpose, pack, transpose back).
                let z = q.zeroPoints.map { UInt32($0) }
                let zeroRows = q.granularity == .tensor ? 1 : rows
                let transposed = (0..<groups).flatMap { g in (0..<zeroRows).map { z[$0 * groups + g] } }
                let packedT = packWords(transposed, rows: groups, columns: zeroRows, bits: q.bits)
                let packedRows = packedT.count / max(groups, 1)
                let packed = (0..<packedRows).flatMap { r in (0..<groups).map { packedT[$0 * packedRows + r] } }
                out.append((module + ".weight_zero_point", try int32Tensor(packed, shape: Shape([packedRows, groups]))))
            }
            out.append((module + ".weight_shape", try shapeTensor(q.shape)))
            return out
        }
    }

    /// True when every scale is stored exactly as a normal FP16 number (then scales are written as F16).
    static func scalesFitHalf(_ scales: [Float]) -> Bool {
        scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 && $0.isNormal && $0 < 65504 }
    }

    /// Bytes the stored parts of `q` take (what `encode` writes), computed without packing anything.
    public static func storedByteCount(_ q: QuantizedTensor) -> Int {
        switch q.scheme {
        case .float8: return q.codes.count + 4 * q.scales.count
        case .codebook: return BitsAndBytesLayout.storedByteCount(q)
        case .integer:
            if let columnBits = q.columnBits { return mixedWidthsStoredByteCount(q, columnBits: columnBits) }
            let rows = max(q.rowCount, 1), perWord = 32 / q.bits
            var bytes = rows * ((q.columnCount + perWord - 1) / perWord) * 4
            bytes += q.scales.count * (scalesFitHalf(q.scales) ? 2 : 4)
            if !q.symmetric {
                let zeroRows = q.granularity == .tensor ? 1 : rows
                bytes += (zeroRows + perWord - 1) / perWord * (q.scales.count / zeroRows) * 4
            }
            return bytes + 8 * q.shape.rank
        }
    }

    /// `<module>.weight_shape`: the logical shape as I64 `[rank]`.
    static func shapeTensor(_ shape: Shape) throws -> DenseTensor {
        let dims = shape.dimensions.map { Int64($0) }
        return try DenseTensor(dtype: .i64, shape: Shape([dims.count]), storage: ByteStorage(dims.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) }))
    }

    /// The logical shape stored in a `weight_shape` part; `fail` makes the error for a bad one.
    static func storedShape(_ t: DenseTensor, fail: (String) -> CompressedTensorsError) throws(CompressedTensorsError) -> Shape {
        guard t.dtype == .i64 else { throw fail("weight_shape must be I64") }
        let dims = t.storage.withUnsafeBytes { raw in (0..<t.elementCount).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) } }
        do { return try Shape(validating: dims) } catch { throw fail("bad weight_shape \(dims)") }
    }

    static func int32Tensor(_ words: [UInt32], shape: Shape) throws -> DenseTensor {
        try DenseTensor(dtype: .i32, shape: shape, storage: ByteStorage(words.flatMap { w in withUnsafeBytes(of: w.littleEndian, Array.init) }))
    }
}

/// A quantized tensor that cannot be stored, or stored components that do not fit together (exit 65).
public enum CompressedTensorsError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case unsupported(tensor: String, what: String)
    case malformed(tensor: String, reason: String)

    public var description: String {
        switch self {
        case .unsupported(let t, let w): "tensor '\(t)': writing \(w) to safetensors is not yet supported"
        case .malformed(let t, let r): "quantized tensor '\(t)': \(r)"
        }
    }
}
