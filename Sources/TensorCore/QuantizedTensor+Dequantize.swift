/// Dequantization: element `(r, c)` of group `g` becomes `scales[g] · (code − zeroPoints[g])` (integer
/// schemes) or `scales[g] · table[code]` (codebooks, FP8), in F32 arithmetic.
///
/// Elements are walked in spans that share a group (a row for `.channel`, `n` columns for `.group(n)`,
/// everything for `.tensor`). Integer spans run 16 codes at a time: a code becomes a float exactly
/// through its bits (`0x4B00_0000 | code` is `2^23 + code`), and `Float(code) − Float(z)` equals the
/// reference's `Float(code − z)` because both round the same exact integer once (|z| ≤ 2^24).
/// Mixed-width tensors go element by element through the column→class table: `scales[r·K + k] ·
/// Float(code − zeroPoints[r·K + k])`, and exactly +0 for a column of width 0.
extension QuantizedTensor {
    /// The dequantized values, row-major.
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: codes.count) { out, initialized in
            if let base = out.baseAddress { dequantize(elements: 0..<codes.count, into: base) }
            initialized = codes.count
        }
    }

    /// Writes the dequantized values of the row-major elements `range` to `out` (`range.count` values):
    /// the same values as those elements of `dequantized()`, without materializing the rest.
    public func dequantize(elements range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= codes.count, "dequantize: range outside the tensor")
        guard !range.isEmpty else { return }
        if !columnClasses.isEmpty { return dequantizeMixedWidths(elements: range, into: out) }
        let columns = columnCount
        let table = codeTable()
        codes.withUnsafeBufferPointer { codes in
            scales.withUnsafeBufferPointer { scales in
                zeroPoints.withUnsafeBufferPointer { zeros in
                    var i = range.lowerBound
                    while i < range.upperBound {
                        let r = i / columns, c = i % columns
                        let g = groupIndex(row: r, column: c)
                        let end: Int = switch granularity {
                        case .tensor: range.upperBound
                        case .channel: min(range.upperBound, (r + 1) * columns)
                        case .group(let n): min(range.upperBound, r * columns + min(columns, (c / n + 1) * n))
                        }
                        let target = out + (i - range.lowerBound)
                        if let table {
                            for j in i..<end { target[j - i] = scales[g] * table[Int(codes[j])] }
                        } else {
                            Self.dequantizeIntegers(codes.baseAddress! + i, count: end - i, scale: scales[g], zero: zeros[g], into: target)
                        }
                        i = end
                    }
                }
            }
        }
    }

    /// `dequantize(elements:into:)` for a tensor with column widths, one row piece at a time.
    private func dequantizeMixedWidths(elements range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let columns = columnCount, k = classWidths.count
        codes.withUnsafeBufferPointer { codes in
            scales.withUnsafeBufferPointer { scales in
                zeroPoints.withUnsafeBufferPointer { zeros in
                    columnClasses.withUnsafeBufferPointer { classes in
                        var i = range.lowerBound
                        while i < range.upperBound {
                            let r = i / columns, rowStart = r * columns
                            let end = min(range.upperBound, rowStart + columns)
                            for j in i..<end {
                                let g = Int(classes[j - rowStart])
                                out[j - range.lowerBound] = g < 0 ? 0 : scales[r * k + g] * Float(Int32(codes[j]) - zeros[r * k + g])
                            }
                            i = end
                        }
                    }
                }
            }
        }
    }

    /// The value of each code before scaling, for codebook and FP8 schemes; nil for integer schemes.
    private func codeTable() -> [Float]? {
        var table = [Float](repeating: 0, count: 256)
        switch scheme {
        case .integer: return nil
        case .codebook(let values): for (i, v) in values.enumerated() where i < 256 { table[i] = v }
        case .float8(let kind): for i in 0..<256 { table[i] = kind.format.decode(UInt8(i)) }
        }
        return table
    }

    /// `scale · Float(code − zero)` for `count` codes.
    @inline(__always)
    private static func dequantizeIntegers(_ codes: UnsafePointer<UInt8>, count: Int, scale: Float, zero: Int32,
                                           into out: UnsafeMutablePointer<Float>) {
        var j = 0
        if zero.magnitude <= 1 << 24 {
            let s = SIMD16<Float>(repeating: scale), z = SIMD16<Float>(repeating: Float(zero))
            let exponent = SIMD16<UInt32>(repeating: 0x4B00_0000), twoTo23 = SIMD16<Float>(repeating: 8_388_608)
            let target = UnsafeMutableRawPointer(out)
            while j + 16 <= count {
                let bytes = UnsafeRawPointer(codes + j).loadUnaligned(as: SIMD16<UInt8>.self)
                let values = unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: bytes) | exponent, to: SIMD16<Float>.self) - twoTo23
                target.storeBytes(of: s * (values - z), toByteOffset: 4 * j, as: SIMD16<Float>.self)
                j += 16
            }
        }
        while j < count {
            out[j] = scale * Float(Int32(codes[j]) - zero)
            j += 1
        }
    }
}
