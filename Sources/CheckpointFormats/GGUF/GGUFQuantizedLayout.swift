import TensorCore

/// How format-neutral quantized tensors (`QuantizedTensor`: integer, FP8 and codebook schemes) are
/// stored in GGUF: as plain GGUF tensors that gguf-py reads as numpy arrays, plus typed metadata.
///
/// A quantized tensor `<name>` of numpy shape `[d0, …, dk]` is viewed as `rows = d0` rows of
/// `columns = d1·…·dk` values (a 1-D tensor or a scalar is one row). Shapes below are in numpy order;
/// GGUF stores them reversed (ne[0] innermost), as for every other tensor. In place of the quantized
/// tensor the file holds, in this order:
/// - `<name>` I8: the unsigned codes (read them with `.view(np.uint8)`), packed along the last
///   dimension, `k = 4` codes per byte for bits ≤ 2, `2` for 3–4 bits, `1` for 5–8 bits (FP8 codes are
///   the raw E4M3/E5M2 bytes). Code `i` of a line sits in byte `i / k` at bit `(8/k)·(i % k)`, least
///   significant first; shape `[d0, …, ⌈dk / k⌉]` (`[1]` for a scalar).
/// - `<name>.scale` F16 (integer schemes whose scales are all exact FP16 values) or F32: one scale per
///   group in (row, group) order, shape `[rows, groups per row]` for channel and group:N granularity
///   of a tensor of rank ≥ 2, else `[count]`. Group `g` of element (row r, column c): 0 for `tensor`,
///   `r` for `channel`, `r·⌈columns/N⌉ + c/N` for `group:N`.
/// - `<name>.zero_point` I8, I16 or I32 (the narrowest holding every value), shaped like the scales:
///   asymmetric integer schemes only. Symmetric integer schemes use `2^(bits−1)`; FP8 and codebooks 0.
/// - `<name>.codebook` F32 `[values]`: codebook schemes only (NF4: the 16 NF4 values).
/// - Integer tensors with a width per column replace these parts with their own (see
///   `GGUFQuantizedLayout+MixedWidth.swift`), marked by the `format` key.
/// - Double-quantized scales (NF4 with QLoRA's double quantization) replace `.scale` with
///   `<name>.scale_codes` I8 (unsigned, shaped like the scales), `<name>.scale_scales` F32
///   `[⌈groups / block⌉]` and `<name>.scale_map` F32 `[256]`:
///   `scale[g] = scale_map[scale_codes[g]] · scale_scales[g / block] + offset` in FP32.
///
/// Values: `scale·(code − zero_point)` (integer), `scale·codebook[code]`, `scale·fp8(code)`.
///
/// Metadata, per quantized tensor, under `modelpress.quantization.<name>.`: `scheme` (string `int`,
/// `fp8_e4m3`, `fp8_e5m2` or `codebook`, spelled as in the safetensors record), `bits` (uint32),
/// `symmetric` (bool), `granularity` (string `tensor`, `channel` or `group:N`), `shape` (int64 array,
/// numpy order: the logical shape, since packing changes the stored one), for double-quantized
/// scales `nested_block_size` (uint32) and `nested_offset` (float32), and for per-column widths
/// `format` (string `mixed-column-quantized`).
///
/// Why typed keys, one per field, rather than one JSON string as in safetensors (whose metadata can
/// only hold strings): gguf-py gives each as a Python value (`reader.fields[key].contents()`), the C
/// API reads them with `gguf_get_val_*` without a JSON parser, `gguf-dump` lists them readably, and the
/// FP32 offset is stored exactly rather than as decimal text.
///
/// The reader decides which parts to expect from the metadata alone, so a real tensor that happens
/// to be named like an unused part is left alone; the writer refuses a part name that is already a
/// tensor name, or longer than GGUF's 63 bytes.
public enum GGUFQuantizedLayout {
    public static let keyPrefix = "modelpress.quantization."

    /// The stored parts besides the codes (which keep the tensor's name), as name suffixes.
    public enum Part: String, Sendable, CaseIterable {
        case scale, zeroPoint = "zero_point", codebook, scaleCodes = "scale_codes", scaleScales = "scale_scales", scaleMap = "scale_map"
        case columnBits = "column_bits"
    }

    /// The metadata fields of one quantized tensor.
    public enum Field: String, Sendable, CaseIterable {
        case scheme, bits, symmetric, granularity, shape, nestedBlockSize = "nested_block_size", nestedOffset = "nested_offset"
        case format
    }

    public static func partName(_ name: String, _ part: Part) -> String { name + "." + part.rawValue }
    public static func key(_ name: String, _ field: Field) -> String { keyPrefix + name + "." + field.rawValue }

    /// Codes per stored byte for `bits`-bit codes: 4 for 1–2 bits, 2 for 3–4, 1 for 5–8.
    public static func codesPerByte(bits: Int) -> Int { bits <= 2 ? 4 : bits <= 4 ? 2 : 1 }

    /// The scheme as the `scheme` key spells it.
    static func schemeName(_ scheme: QuantizedTensor.Scheme) -> String {
        switch scheme {
        case .integer: "int"
        case .float8(let kind): "fp8_" + kind.rawValue
        case .codebook: "codebook"
        }
    }

    /// The stored parts of one quantized tensor, in the order they are written (codes first).
    public static func encode(name: String, _ q: QuantizedTensor) throws -> [(name: String, tensor: DenseTensor)] {
        func refuse(_ reason: String) -> GGUFQuantizedLayoutError { .unstorable(tensor: name, reason: reason) }
        if let columnBits = q.columnBits { return try encodeMixedWidths(name: name, q, columnBits: columnBits) }
        switch q.scheme {
        case .integer:
            guard (2...8).contains(q.bits) else { throw refuse("\(q.bits)-bit integer codes (GGUF layout holds 2–8)") }
            if q.symmetric, let z = q.zeroPoints.first(where: { $0 != Int32(1 << (q.bits - 1)) }) {
                throw refuse("symmetric scheme with zero point \(z) (must be \(1 << (q.bits - 1)))")
            }
        case .float8:
            guard q.bits == 8 else { throw refuse("FP8 codes with bits = \(q.bits)") }
            guard q.zeroPoints.allSatisfy({ $0 == 0 }) else { throw refuse("FP8 scheme with nonzero zero points") }
        case .codebook(let values):
            guard (1...8).contains(q.bits), values.count <= 256 else { throw refuse("\(values.count) codebook values at \(q.bits) bits") }
            guard q.zeroPoints.allSatisfy({ $0 == 0 }) else { throw refuse("codebook scheme with nonzero zero points") }
        }
        if q.bits < 8, let code = q.codes.first(where: { Int($0) >> q.bits != 0 }) {
            throw refuse("code \(code) does not fit in \(q.bits) bits")
        }
        let scaleShape = scaleShape(count: q.scales.count, shape: q.shape, granularity: q.granularity)
        var parts: [(name: String, tensor: DenseTensor)] = [
            (name, try DenseTensor(dtype: .i8, shape: packedShape(q.shape, bits: q.bits), storage: ByteStorage(pack(q.codes, shape: q.shape, bits: q.bits)))),
        ]
        if let nested = q.nestedScales {
            guard nested.scales().map(\.bitPattern) == q.scales.map(\.bitPattern) else {
                throw refuse("its nested scales do not give back its scales bit for bit")
            }
            parts.append((partName(name, .scaleCodes), try DenseTensor(dtype: .i8, shape: scaleShape, storage: ByteStorage(nested.codes))))
            parts.append((partName(name, .scaleScales), try DenseTensor(floats: nested.secondLevelScales, shape: Shape([nested.secondLevelScales.count]))))
            parts.append((partName(name, .scaleMap), try DenseTensor(floats: nested.map, shape: Shape([nested.map.count]))))
        } else {
            let dtype: DType = q.scheme == .integer && fitsHalf(q.scales) ? .f16 : .f32
            parts.append((partName(name, .scale), try DenseTensor(floats: q.scales, shape: scaleShape, dtype: dtype)))
        }
        if q.scheme == .integer && !q.symmetric {
            parts.append((partName(name, .zeroPoint), try integerTensor(q.zeroPoints, shape: scaleShape)))
        }
        if case .codebook(let values) = q.scheme {
            parts.append((partName(name, .codebook), try DenseTensor(floats: values, shape: Shape([values.count]))))
        }
        return parts
    }

    /// The metadata keys describing one quantized tensor, in the order they are written.
    public static func metadata(name: String, _ q: QuantizedTensor) -> [(key: String, value: GGUFValue)] {
        var out: [(key: String, value: GGUFValue)] = [
            (key(name, .scheme), .string(schemeName(q.scheme))),
            (key(name, .bits), .uint32(UInt32(clamping: q.bits))),
            (key(name, .symmetric), .bool(q.symmetric)),
            (key(name, .granularity), .string(q.granularity.description)),
            (key(name, .shape), .array(elementType: .int64, values: q.shape.dimensions.map { .int64(Int64($0)) })),
        ]
        if q.columnBits != nil { out.append((key(name, .format), .string(MixedWidthParts.formatName))) }
        if let nested = q.nestedScales {
            out.append((key(name, .nestedBlockSize), .uint32(UInt32(clamping: nested.blockSize))))
            out.append((key(name, .nestedOffset), .float32(nested.offset)))
        }
        return out
    }

    /// Bytes the stored parts of `q` take (what `encode` writes, without GGUF's alignment padding),
    /// computed without packing anything.
    public static func storedByteCount(_ q: QuantizedTensor) -> Int {
        if let columnBits = q.columnBits { return mixedWidthsStoredByteCount(q, columnBits: columnBits) }
        var bytes = packedShape(q.shape, bits: q.bits).elementCount
        if let nested = q.nestedScales {
            bytes += nested.codes.count + 4 * nested.secondLevelScales.count + 4 * nested.map.count
        } else {
            bytes += q.scales.count * (q.scheme == .integer && fitsHalf(q.scales) ? 2 : 4)
        }
        if q.scheme == .integer && !q.symmetric { bytes += q.zeroPoints.count * integerDType(q.zeroPoints).bitsPerElement / 8 }
        if case .codebook(let values) = q.scheme { bytes += 4 * values.count }
        return bytes
    }

    // MARK: Shapes and packing

    /// The stored shape of the codes: the last dimension packed `codesPerByte` to a byte.
    static func packedShape(_ shape: Shape, bits: Int) -> Shape {
        guard let last = shape.dimensions.last else { return Shape([1]) }
        let k = codesPerByte(bits: bits)
        return Shape(shape.dimensions.dropLast() + [last / k + (last % k == 0 ? 0 : 1)])
    }

    /// Scales per tensor: 1 (`tensor`), rows (`channel`), rows · ⌈columns / N⌉ (`group:N`).
    static func expectedScaleCount(shape: Shape, granularity: QuantizedTensor.Granularity) -> Int {
        switch granularity {
        case .tensor: 1
        case .channel: shape.rowCount
        case .group(let n): shape.rowCount * (shape.columnCount / n + (shape.columnCount % n == 0 ? 0 : 1))
        }
    }

    /// The stored shape of `count` scales (and of zero points and nested scale codes).
    static func scaleShape(count: Int, shape: Shape, granularity: QuantizedTensor.Granularity) -> Shape {
        let rows = shape.rowCount
        if granularity != .tensor, shape.rank >= 2, rows > 0, count % rows == 0 { return Shape([rows, count / rows]) }
        return Shape([count])
    }

    static func pack(_ codes: [UInt8], shape: Shape, bits: Int) -> [UInt8] {
        let k = codesPerByte(bits: bits)
        guard k > 1 else { return codes }
        let width = 8 / k, last = shape.dimensions.last ?? 1
        let perLine = last / k + (last % k == 0 ? 0 : 1)
        let lines = last == 0 ? 0 : codes.count / last
        var out = [UInt8](repeating: 0, count: lines * perLine)
        for line in 0..<lines {
            for i in 0..<last { out[line * perLine + i / k] |= codes[line * last + i] << UInt8(width * (i % k)) }
        }
        return out
    }

    /// The codes of `shape` from packed bytes (`packedShape(shape).elementCount` of them), or nil when
    /// a code is not below 2^bits.
    static func unpack(_ bytes: UnsafeRawBufferPointer, shape: Shape, bits: Int) -> [UInt8]? {
        let k = codesPerByte(bits: bits), width = 8 / k, last = shape.dimensions.last ?? 1
        let perLine = last / k + (last % k == 0 ? 0 : 1)
        let slotMask = UInt8(truncatingIfNeeded: (1 << width) - 1), limit = 1 << bits
        var codes = [UInt8](repeating: 0, count: shape.elementCount)
        var valid = true
        for line in 0..<(last == 0 ? 0 : codes.count / last) {
            for i in 0..<last {
                let code = bytes[line * perLine + i / k] >> UInt8(width * (i % k)) & slotMask
                valid = valid && Int(code) < limit
                codes[line * last + i] = code
            }
        }
        return valid ? codes : nil
    }

    /// True when every scale survives FP16 bit for bit (then they are stored as F16).
    static func fitsHalf(_ scales: [Float]) -> Bool {
        scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)).bitPattern == $0.bitPattern }
    }

    /// The narrowest of I8, I16 and I32 that holds every value.
    static func integerDType(_ values: [Int32]) -> DType {
        let lo = values.min() ?? 0, hi = values.max() ?? 0
        if lo >= -128 && hi <= 127 { return .i8 }
        if lo >= -32768 && hi <= 32767 { return .i16 }
        return .i32
    }

    static func integerTensor(_ values: [Int32], shape: Shape) throws -> DenseTensor {
        let bytes: [UInt8] = switch integerDType(values) {
        case .i8: values.map { UInt8(bitPattern: Int8($0)) }
        case .i16: values.flatMap { v in withUnsafeBytes(of: Int16(v).littleEndian, Array.init) }
        default: values.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) }
        }
        return try DenseTensor(dtype: integerDType(values), shape: shape, storage: ByteStorage(bytes))
    }

    /// The values of an I8, I16 or I32 tensor, or nil for another dtype.
    static func integers(_ t: DenseTensor) -> [Int32]? {
        t.storage.withUnsafeBytes { raw in
            switch t.dtype {
            case .i8: (0..<t.elementCount).map { Int32(Int8(bitPattern: raw[$0])) }
            case .i16: (0..<t.elementCount).map { Int32(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .i32: (0..<t.elementCount).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            default: nil
            }
        }
    }
}

/// A quantized tensor that cannot be stored in GGUF, or stored parts that do not fit together (exit 65).
public enum GGUFQuantizedLayoutError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    case unstorable(tensor: String, reason: String)
    case malformed(file: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case .unstorable(let t, let r): "tensor '\(t)' cannot be written to GGUF: \(r)"
        case .malformed(let f, let t, let r): "\(f): quantized tensor '\(t)': \(r)"
        }
    }
}
