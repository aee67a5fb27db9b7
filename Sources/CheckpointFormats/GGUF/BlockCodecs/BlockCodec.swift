/// A block quantizer/dequantizer for one ggml type, byte-for-byte compatible with llama.cpp's
/// `ggml_quantize_chunk` (x86-64 build) and `dequantize_row_*`.
///
/// Rows are independent, so callers may quantize different rows on different threads. The
/// functions allocate nothing on the heap.
public protocol BlockCodec: Sendable {
    /// The ggml type this codec reads and writes.
    static var type: GGMLType { get }

    /// Quantizes one row. `row.count` is a multiple of the block size; `importance` (if given) has
    /// the same count (the per-column imatrix weights for this row's columns). Writes exactly
    /// `rowByteCount` bytes.
    static func quantizeRow(
        _ row: UnsafeBufferPointer<Float>,
        importance: UnsafeBufferPointer<Float>?,
        into out: UnsafeMutableRawBufferPointer
    )

    /// Dequantizes one row, exactly as llama.cpp's `dequantize_row_*` does.
    static func dequantizeRow(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>)
}

extension BlockCodec {
    /// Checks the buffer sizes shared by every codec (programmer errors, not data errors).
    @inline(__always)
    static func checkQuantizeArguments(
        _ row: UnsafeBufferPointer<Float>,
        _ importance: UnsafeBufferPointer<Float>?,
        _ out: UnsafeMutableRawBufferPointer
    ) -> Int {
        let bs = type.blockSize
        precondition(row.count % bs == 0, "\(type.name): row length \(row.count) is not a multiple of \(bs)")
        precondition(importance == nil || importance!.count == row.count, "importance length mismatch")
        let blocks = row.count / bs
        precondition(out.count >= blocks * type.bytesPerBlock, "\(type.name): output buffer too small")
        return blocks
    }

    @inline(__always)
    static func checkDequantizeArguments(_ data: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) -> Int {
        let bs = type.blockSize
        precondition(out.count % bs == 0, "\(type.name): row length \(out.count) is not a multiple of \(bs)")
        let blocks = out.count / bs
        precondition(data.count >= blocks * type.bytesPerBlock, "\(type.name): input buffer too small")
        return blocks
    }
}

/// The table of implemented block codecs, keyed by ggml type.
public enum BlockCodecs {
    /// Every implemented codec.
    public static let all: [any BlockCodec.Type] = [
        Q8_0.self, Q4_0.self, Q4_1.self, Q5_0.self, Q5_1.self,
        Q2_K.self, Q3_K.self, Q4_K.self, Q5_K.self, Q6_K.self,
    ]

    /// The codec for `type`, or `nil` when that type is not implemented.
    public static func codec(for type: GGMLType) -> (any BlockCodec.Type)? {
        switch type {
        case .q8_0: Q8_0.self
        case .q4_0: Q4_0.self
        case .q4_1: Q4_1.self
        case .q5_0: Q5_0.self
        case .q5_1: Q5_1.self
        case .q2_K: Q2_K.self
        case .q3_K: Q3_K.self
        case .q4_K: Q4_K.self
        case .q5_K: Q5_K.self
        case .q6_K: Q6_K.self
        default: nil
        }
    }
}

/// Codecs whose fast quantizer is cross-checked against a scalar, statement-by-statement port of
/// the reference C code (kept for tests and as documentation of the algorithm).
protocol ReferenceQuantizing: BlockCodec {
    static func quantizeRowReference(
        _ row: UnsafeBufferPointer<Float>,
        importance: UnsafeBufferPointer<Float>?,
        into out: UnsafeMutableRawBufferPointer
    )
}

extension Q8_0: ReferenceQuantizing {}
extension Q4_0: ReferenceQuantizing {}
extension Q4_1: ReferenceQuantizing {}
extension Q5_0: ReferenceQuantizing {}
extension Q5_1: ReferenceQuantizing {}
extension Q2_K: ReferenceQuantizing {}
extension Q3_K: ReferenceQuantizing {}
extension Q4_K: ReferenceQuantizing {}
extension Q5_K: ReferenceQuantizing {}
extension Q6_K: ReferenceQuantizing {}
