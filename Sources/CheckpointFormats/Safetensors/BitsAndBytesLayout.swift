import TensorCore

/// How NF4 (codebook) tensors are stored in safetensors: the serialization bitsandbytes'
/// `Linear4bit` uses through transformers, so a bitsandbytes loader reads our files and we read theirs.
///
/// For a quantized weight `<name>` of `n` values in blocks of `B`:
/// - `<name>`: U8 `[n/2, 1]`, two 4-bit codes per byte, element `2k` in the high nibble;
/// - `<name>.absmax`: F32 `[n/B]` block scales, or with double quantization U8 `[n/B]` codes of the
///   nested map, plus `<name>.nested_absmax` F32 `[⌈(n/B)/256⌉]` and `<name>.nested_quant_map` F32 `[256]`;
/// - `<name>.quant_map`: F32 `[16]`, the code values (`x̂ = quant_map[q] · absmax`);
/// - `<name>.quant_state.bitsandbytes__nf4`: U8 bytes of a JSON object with `quant_type` ("nf4"),
///   `blocksize`, `dtype`, `shape` and, with double quantization, `nested_blocksize`, `nested_dtype`
///   and `nested_offset` (`absmax_b = nested_quant_map[c_b] · nested_absmax[b / 256] + offset`).
/// Blocks run over the flattened tensor; they are row groups here because every row length is a
/// multiple of `B` (checked on read).
public enum BitsAndBytesLayout {
    static let stateSuffix = ".quant_state.bitsandbytes__nf4"

    /// The stored tensors of one NF4 weight, in bitsandbytes' order.
    public static func encode(name: String, _ q: QuantizedTensor) throws -> [(name: String, tensor: DenseTensor)] {
        guard case .codebook(let values) = q.scheme, q.bits == 4, values.count == 16, case .group(let block) = q.granularity,
              q.shape.elementCount % 2 == 0 else {
            throw CompressedTensorsError.unsupported(tensor: name, what: "codebook tensors other than 4-bit block-wise NF4")
        }
        let n = q.codes.count
        var packed = [UInt8](repeating: 0, count: n / 2)
        for k in packed.indices { packed[k] = q.codes[2 * k] << 4 | q.codes[2 * k + 1] & 0x0F }
        var parts: [(name: String, tensor: DenseTensor)] = [
            (name, try DenseTensor(dtype: .u8, shape: Shape([n / 2, 1]), storage: ByteStorage(packed))),
        ]
        if let nested = q.nestedScales {
            parts.append((name + ".absmax", try DenseTensor(dtype: .u8, shape: Shape([nested.codes.count]), storage: ByteStorage(nested.codes))))
            parts.append((name + ".quant_map", try DenseTensor(floats: values, shape: Shape([16]))))
            parts.append((name + ".nested_absmax", try DenseTensor(floats: nested.secondLevelScales, shape: Shape([nested.secondLevelScales.count]))))
            parts.append((name + ".nested_quant_map", try DenseTensor(floats: nested.map, shape: Shape([256]))))
        } else {
            parts.append((name + ".absmax", try DenseTensor(floats: q.scales, shape: Shape([q.scales.count]))))
            parts.append((name + ".quant_map", try DenseTensor(floats: values, shape: Shape([16]))))
        }
        let json = stateJSON(q, blockSize: block)
        parts.append((name + stateSuffix, try DenseTensor(dtype: .u8, shape: Shape([json.count]), storage: ByteStorage(json))))
        return parts
    }

    /// The bytes of the `quant_state` JSON object.
    static func stateJSON(_ q: QuantizedTensor, blockSize: Int) -> [UInt8] {
        var state: [(key: String, value: JSONValue)] = [
            ("quant_type", .string("nf4")), ("blocksize", .integer(blockSize)), ("dtype", .string("float32")),
            ("shape", .array(q.shape.dimensions.map { JSONValue.integer($0) })),
        ]
        if let nested = q.nestedScales {
            state += [("nested_blocksize", .integer(nested.blockSize)), ("nested_dtype", .string("float32")),
                      ("nested_offset", .double(Double(nested.offset)))]
        }
        return Array(JSONWriter.compact(.object(state)).utf8)
    }

    /// Bytes `encode` writes for `q`, computed without packing.
    public static func storedByteCount(_ q: QuantizedTensor) -> Int {
        let state = stateJSON(q, blockSize: q.groupSize).count
        if let nested = q.nestedScales {
            return q.codes.count / 2 + nested.codes.count + 64 + 4 * nested.secondLevelScales.count + 4 * 256 + state
        }
        return q.codes.count / 2 + 4 * q.scales.count + 64 + state
    }

    /// The NF4 weight `name` rebuilt from its parts, or nil when the checkpoint has no bitsandbytes
    /// state for it. `part` returns a stored tensor (and marks it as used); errors name the file.
    static func decode(name: String, file: String, part: (String) throws -> DenseTensor?) throws -> QuantizedTensor? {
        func fail(_ reason: String) -> CompressedTensorsError { .malformed(tensor: name, reason: "\(file): \(reason)") }
        func required(_ suffix: String) throws -> DenseTensor {
            guard let t = try part(name + suffix) else { throw fail("missing part '\(name + suffix)'") }
            return t
        }
        guard let stateTensor = try part(name + stateSuffix) else { return nil }
        guard stateTensor.dtype == .u8 || stateTensor.dtype == .i8 else { throw fail("quant_state must be U8 bytes") }
        let state: JSONValue
        do { state = try JSONParser.parse(stateTensor.storage.array) } catch { throw fail("quant_state is not JSON: \(error)") }
        guard state["quant_type"]?.stringValue == "nf4" else { throw fail("quant_state.quant_type must be \"nf4\"") }
        guard let block = state["blocksize"]?.nonNegativeInt, block >= 2, block % 2 == 0, block <= 1 << 20 else {
            throw fail("quant_state.blocksize must be a positive even integer")
        }
        guard let dimensions = state["shape"]?.arrayElements?.map(\.nonNegativeInt), !dimensions.contains(nil),
              let shape = try? Shape(validating: dimensions.map { $0! }) else { throw fail("quant_state.shape is not a valid shape") }
        guard shape.columnCount % block == 0, shape.elementCount % 2 == 0 else {
            throw fail("row length \(shape.columnCount) is not a multiple of the block size \(block)")
        }
        let n = shape.elementCount, blocks = n / block
        let weight = try required("")
        guard weight.dtype == .u8, weight.byteCount == n / 2 else { throw fail("packed codes must be U8 with \(n / 2) bytes, found \(weight.dtype) with \(weight.byteCount)") }
        let quantMap = try required(".quant_map")
        guard quantMap.elementCount == 16, quantMap.dtype.isConvertibleFloat, let values = try? quantMap.floats(), values.allSatisfy(\.isFinite) else {
            throw fail("quant_map must hold 16 finite floats")
        }
        let absmax = try required(".absmax")
        guard absmax.elementCount == blocks else { throw fail("absmax has \(absmax.elementCount) values, expected \(blocks)") }
        var scales: [Float]
        var nested: QuantizedTensor.NestedScales?
        if state["nested_blocksize"] != nil || state["nested_offset"] != nil {
            guard let block2 = state["nested_blocksize"]?.nonNegativeInt, block2 > 0, block2 <= 1 << 20,
                  case .number(let offsetText)? = state["nested_offset"], let offset = Float(offsetText), offset.isFinite else {
                throw fail("quant_state has malformed nested_blocksize or nested_offset")
            }
            guard absmax.dtype == .u8 else { throw fail("double-quantized absmax must be U8 codes") }
            let second = try required(".nested_absmax"), map = try required(".nested_quant_map")
            guard second.elementCount == (blocks + block2 - 1) / block2, second.dtype.isConvertibleFloat,
                  let secondValues = try? second.floats(), secondValues.allSatisfy(\.isFinite) else {
                throw fail("nested_absmax must hold \((blocks + block2 - 1) / block2) finite floats")
            }
            guard map.elementCount == 256, map.dtype.isConvertibleFloat, let mapValues = try? map.floats(), mapValues.allSatisfy(\.isFinite) else {
                throw fail("nested_quant_map must hold 256 finite floats")
            }
            let scaleCodes = absmax.storage.array
            let n = QuantizedTensor.NestedScales(codes: scaleCodes, secondLevelScales: secondValues, offset: offset, blockSize: block2, map: mapValues)
            nested = n
            scales = n.scales()
        } else {
            guard absmax.dtype.isConvertibleFloat, let a = try? absmax.floats() else { throw fail("absmax must be floats") }
            scales = a
        }
        guard scales.allSatisfy(\.isFinite) else { throw fail("absmax holds NaN or Inf") }
        var codes = [UInt8](repeating: 0, count: n)
        weight.storage.withUnsafeBytes { raw in
            for k in 0..<(n / 2) {
                codes[2 * k] = raw[k] >> 4
                codes[2 * k + 1] = raw[k] & 0x0F
            }
        }
        return QuantizedTensor(shape: shape, scheme: .codebook(values), bits: 4, symmetric: true, granularity: .group(block),
                               codes: codes, scales: scales, zeroPoints: [Int32](repeating: 0, count: blocks), nestedScales: nested)
    }

    /// Names of weights stored with a bitsandbytes NF4 state in `names`.
    static func weights(in names: [String]) -> [String] {
        names.filter { $0.hasSuffix(stateSuffix) }.map { String($0.dropLast(stateSuffix.count)) }
    }
}
