import TensorCore

/// Quantizes dense float tensors to ggml block types and back, row by row.
///
/// A row is the innermost dimension (numpy's last, GGUF's ne[0]); blocks run along it. Rows are
/// independent, so they are split over `threadCount` workers in fixed contiguous ranges: the output
/// bytes do not depend on the thread count. `importance` (an imatrix entry) holds one weight per
/// input column (`rowLength` values), or `rowLength × n` for a 3-D stack of n matrices, matrix `e`
/// using slice `e`.
public enum GGMLQuantization {
    /// True when `count` importance weights fit a tensor of `shape`: one per column of a row, or one
    /// per column of each matrix of a stacked (rank ≥ 3) tensor, as llama-quantize accepts them.
    public static func importanceFits(_ count: Int, shape: Shape) -> Bool {
        let rowLength = max(shape.dimensions.last ?? 1, 1)
        let rows = shape.elementCount / rowLength
        let matrices = shape.rank >= 3 ? rows / max(shape.dimensions[shape.rank - 2], 1) : 1
        return count == rowLength || count == rowLength * matrices
    }

    /// Quantizes `tensor` (any float dtype) named `name` to `type`.
    /// Throws `GGMLQuantizationError` for non-finite weights, rows that are not whole blocks, or an
    /// importance vector of the wrong length.
    public static func quantize(_ tensor: DenseTensor, name: String, to type: GGMLType,
                                importance: [Float]? = nil, threadCount: Int = 1) throws -> GGMLTensor {
        guard let codec = BlockCodecs.codec(for: type) else { throw GGMLQuantizationError.unsupportedType(tensor: name, type: type.name) }
        let rowLength = tensor.shape.dimensions.last ?? 1
        guard let rowBytes = type.rowByteCount(elements: rowLength), rowLength > 0 else {
            throw GGMLQuantizationError.rowNotWholeBlocks(tensor: name, rowLength: rowLength, type: type.name, blockSize: type.blockSize)
        }
        let rows = tensor.elementCount / rowLength
        let rowsPerMatrix = tensor.shape.rank >= 3 ? tensor.shape.dimensions[tensor.shape.rank - 2] : rows
        if let importance {
            guard importanceFits(importance.count, shape: tensor.shape) else {
                throw GGMLQuantizationError.importanceLength(tensor: name, expected: rowLength, actual: importance.count)
            }
        }
        guard tensor.dtype.isConvertibleFloat else { throw TensorError.notConvertibleToFloat(tensor.dtype) }
        // Each worker decodes its own rows (F32 rows are read straight from the map when aligned),
        // checks them for NaN/Inf and quantizes them: no full-tensor float copy, no serial scan.
        let dtype = tensor.dtype
        let inRowBytes = dtype.byteCount(elementCount: rowLength)!
        var badRows = [UInt8](repeating: 0, count: rows)
        let storage = ByteStorage(count: rows * rowBytes) { out in
            tensor.storage.withUnsafeBytes { source in
                badRows.withUnsafeMutableBufferPointer { bad in
                    ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { range in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: rowLength) { scratch in
                            for r in range {
                                let raw = UnsafeRawBufferPointer(rebasing: source[(r * inRowBytes)..<((r + 1) * inRowBytes)])
                                let row: UnsafeBufferPointer<Float>
                                if dtype == .f32, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                                    row = UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: rowLength)
                                } else {
                                    FloatCodec.decode(raw, as: dtype, into: scratch)
                                    row = UnsafeBufferPointer(scratch)
                                }
                                guard allFinite(row) else { bad[r] = 1; continue }
                                let target = UnsafeMutableRawBufferPointer(rebasing: out[(r * rowBytes)..<((r + 1) * rowBytes)])
                                if let importance {
                                    let slice = importance.count == rowLength ? 0 : (r / rowsPerMatrix) * rowLength
                                    importance.withUnsafeBufferPointer { w in
                                        codec.quantizeRow(row, importance: UnsafeBufferPointer(rebasing: w[slice..<(slice + rowLength)]), into: target)
                                    }
                                } else {
                                    codec.quantizeRow(row, importance: nil, into: target)
                                }
                            }
                        }
                    }
                }
            }
        }
        if let r = badRows.firstIndex(of: 1) {
            let values = try tensor.floats()
            let column = values[(r * rowLength)..<((r + 1) * rowLength)].firstIndex { !$0.isFinite }! - r * rowLength
            throw GGMLQuantizationError.nonFinite(tensor: name, row: r, column: column)
        }
        return GGMLTensor(type: type, shape: tensor.shape, storage: storage)
    }

    /// Dequantizes a ggml tensor to `Float` values (numpy row-major order).
    public static func dequantize(_ tensor: GGMLTensor, name: String, threadCount: Int = 1) throws -> [Float] {
        guard let type = tensor.type, let codec = BlockCodecs.codec(for: type) else {
            throw GGMLQuantizationError.unsupportedType(tensor: name, type: tensor.typeName)
        }
        let rowLength = tensor.shape.dimensions.last ?? 1
        guard rowLength > 0, let rowBytes = type.rowByteCount(elements: rowLength) else {
            throw GGMLQuantizationError.rowNotWholeBlocks(tensor: name, rowLength: rowLength, type: type.name, blockSize: type.blockSize)
        }
        let rows = tensor.shape.elementCount / rowLength
        guard rows * rowBytes == tensor.storage.count else { throw GGMLQuantizationError.unsupportedType(tensor: name, type: type.name) }
        return [Float](unsafeUninitializedCapacity: rows * rowLength) { out, initialized in
            tensor.storage.withUnsafeBytes { source in
                ParallelLoop.forEachRange(count: rows, threadCount: threadCount) { range in
                    for r in range {
                        codec.dequantizeRow(UnsafeRawBufferPointer(rebasing: source[(r * rowBytes)..<((r + 1) * rowBytes)]),
                                            into: UnsafeMutableBufferPointer(rebasing: out[(r * rowLength)..<((r + 1) * rowLength)]))
                    }
                }
            }
            initialized = rows * rowLength
        }
    }
}

extension TensorEntry {
    /// The tensor's values as `Float` whatever its payload (dequantizing ggml and quantized tensors),
    /// or nil for a dense tensor whose dtype has no float conversion.
    public func floatValues(threadCount: Int = 1) throws -> [Float]? {
        switch payload {
        case .dense(let t): t.dtype.isConvertibleFloat ? try t.floats() : nil
        case .ggml(let t): try GGMLQuantization.dequantize(t, name: name, threadCount: threadCount)
        case .quantized(let q): q.dequantized()
        case .shared(let t): t.expanded(threadCount: threadCount)
        }
    }
}

/// True when no value is NaN or ±Inf (exponent bits all ones), checked 16 lanes at a time.
@inline(__always)
func allFinite(_ row: UnsafeBufferPointer<Float>) -> Bool {
    guard let base = row.baseAddress else { return true }
    let raw = UnsafeRawPointer(base)
    let mask = SIMD16<UInt32>(repeating: 0x7F80_0000)
    var any = SIMD16<UInt32>(repeating: 0)
    var i = 0
    while i + 16 <= row.count {
        let bits = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self) & mask
        any |= SIMD16<UInt32>(repeating: 0).replacing(with: 1, where: bits .== mask)
        i += 16
    }
    if any != SIMD16<UInt32>(repeating: 0) { return false }
    while i < row.count {
        if !row[i].isFinite { return false }
        i += 1
    }
    return true
}

/// Why a tensor cannot be quantized to a ggml type (exit 65, naming the tensor).
public enum GGMLQuantizationError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case unsupportedType(tensor: String, type: String)
    case rowNotWholeBlocks(tensor: String, rowLength: Int, type: String, blockSize: Int)
    case importanceLength(tensor: String, expected: Int, actual: Int)
    case nonFinite(tensor: String, row: Int, column: Int)

    public var description: String {
        switch self {
        case .unsupportedType(let t, let ty): "tensor '\(t)': ggml type \(ty) cannot be encoded or decoded here"
        case .rowNotWholeBlocks(let t, let n, let ty, let b): "tensor '\(t)': row length \(n) is not a multiple of the \(ty) block size \(b)"
        case .importanceLength(let t, let e, let a): "tensor '\(t)': importance matrix has \(a) values, expected \(e) per matrix"
        case .nonFinite(let t, let r, let c): "tensor '\(t)' holds NaN or Inf (row \(r), column \(c))"
        }
    }
}
