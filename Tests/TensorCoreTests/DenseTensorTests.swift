import Testing
import TensorCore

@Suite("DenseTensor and Shape")
struct DenseTensorTests {
    @Test("shape element counts, rows and columns; overflow and negative dims are errors")
    func shapes() throws {
        #expect(Shape([]).elementCount == 1)
        #expect(Shape([2, 0]).elementCount == 0)
        #expect(Shape([3, 4, 5]).rowCount == 3 && Shape([3, 4, 5]).columnCount == 20)
        #expect(throws: TensorError.elementCountOverflow([1 << 62, 4])) { try Shape(validating: [1 << 62, 4]) }
        #expect(throws: TensorError.negativeDimension([2, -1])) { try Shape(validating: [2, -1]) }
    }

    @Test("byte counts per dtype, sub-byte packing")
    func byteCounts() {
        #expect(DType.f32.byteCount(elementCount: 3) == 12)
        #expect(DType.bf16.byteCount(elementCount: 3) == 6)
        #expect(DType.f4.byteCount(elementCount: 4) == 2)
        #expect(DType.f4.byteCount(elementCount: 3) == nil)
        #expect(DType.f6E2M3.byteCount(elementCount: 4) == 3)
        #expect(DType.f6E2M3.byteCount(elementCount: 2) == nil)
        #expect(DType.u64.byteCount(elementCount: Int.max / 2) == nil)
        #expect(DType.allCases.count == 22)
    }

    @Test("storage must match dtype and shape")
    func storageMismatch() {
        #expect(throws: TensorError.byteCountMismatch(dtype: .f32, shape: [2], expected: 8, actual: 7)) {
            try DenseTensor(dtype: .f32, shape: Shape([2]), storage: ByteStorage([UInt8](repeating: 0, count: 7)))
        }
    }

    @Test("float round trip through every float dtype stays within its rounding bound",
          arguments: [DType.f32, .f64, .f16, .bf16, .f8E4M3, .f8E5M2])
    func castRoundTrip(dtype: DType) throws {
        var rng = SeededGenerator(seed: 3)
        let values = rng.gaussianFloats(count: 4099, standardDeviation: 0.5)
        let tensor = try DenseTensor(floats: values, shape: Shape([values.count]), dtype: dtype)
        let back = try tensor.floats()
        // Relative rounding bound: half an ulp at the format's mantissa width (subnormals: half the smallest step).
        let (mantissaBits, smallest): (Int, Float) = switch dtype {
        case .f32, .f64: (23, 0)
        case .f16: (10, 0x1p-24)
        case .bf16: (7, 0)
        case .f8E4M3: (3, 0x1p-9)
        default: (2, 0x1p-16)
        }
        for (x, y) in zip(values, back) {
            let bound = max(abs(x) * Float(sign: .plus, exponent: -mantissaBits - 1, significand: 1), smallest / 2)
            #expect(abs(x - y) <= bound, "\(dtype): \(x) -> \(y)")
        }
        // Re-encoding the decoded values is the identity on bytes.
        #expect(try DenseTensor(floats: back, shape: tensor.shape, dtype: dtype).storage == tensor.storage)
    }

    @Test("conversion between dtypes equals decode then encode")
    func conversion() throws {
        var rng = SeededGenerator(seed: 5)
        let values = rng.gaussianFloats(count: 20_000)
        let f32 = try DenseTensor(floats: values, shape: Shape([100, 200]))
        for target in [DType.f16, .bf16, .f8E4M3, .f64] {
            let direct = try f32.converted(to: target)
            let expected = try DenseTensor(floats: values, shape: f32.shape, dtype: target)
            #expect(direct == expected)
            #expect(try direct.converted(to: .f32).floats() == (try expected.floats()))
        }
        #expect(throws: TensorError.notConvertibleToFloat(.i32)) {
            try DenseTensor(dtype: .i32, shape: Shape([1]), storage: ByteStorage([0, 0, 0, 0])).floats()
        }
    }
}
