import Foundation
import Testing
import TensorCore
import CheckpointFormats
import TestSupport

/// Interop with the Python reference (`safetensors` 0.8 + numpy + ml_dtypes), driven by
/// `Tests/Interop/safetensors_interop.py`: files written by Python are read bit-exactly, files written
/// by ModelPress load bit-exactly in Python, `.reference` ordering reproduces `save_file` byte for
/// byte, and the F16/BF16/FP8 casts agree with numpy and ml_dtypes.
@Suite("Safetensors interop with Python")
struct SafetensorsInteropTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repoRoot.appendingPathComponent("Tests/Interop/safetensors_interop.py").path

    /// Every dtype the interop files cover (all that numpy + ml_dtypes can express).
    static let coveredDTypes: [DType] = [.bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64, .f16, .f32, .f64, .bf16, .f8E4M3, .f8E5M2]

    // MARK: Sidecar files

    /// One tensor of a sidecar: dtype, shape and the bit pattern of every element (unsigned).
    struct SidecarTensor: Codable {
        let name: String
        let dtype: String
        let shape: [Int]
        let bits: [UInt64]
        /// For float dtypes written by Python: each element widened to float32 by numpy / ml_dtypes.
        var float32Bits: [UInt32]? = nil

        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, bits
            case float32Bits = "float32_bits"
        }
    }

    struct SidecarFile: Codable {
        var file: String? = nil
        let metadata: [String: String]
        let tensors: [SidecarTensor]
    }

    struct ReferenceSet: Codable {
        let files: [SidecarFile]
    }

    struct CastTable: Codable {
        let inputs: [UInt32]
        let f16: [UInt16]
        let bf16: [UInt16]
        let e4m3: [UInt8?]
        let e5m2: [UInt8?]
        let decodeF16: [UInt32]
        let decodeBF16: [UInt32]
        let decodeE4M3: [UInt32]
        let decodeE5M2: [UInt32]

        enum CodingKeys: String, CodingKey {
            case inputs, f16, bf16, e4m3, e5m2
            case decodeF16 = "decode_f16", decodeBF16 = "decode_bf16", decodeE4M3 = "decode_e4m3", decodeE5M2 = "decode_e5m2"
        }
    }

    // MARK: Helpers

    struct NotDense: Error {}

    static func dense(_ entry: TensorEntry) throws -> DenseTensor {
        guard case .dense(let t) = entry.payload else { throw NotDense() }
        return t
    }

    static func bytesPerElement(_ dtype: DType) -> Int { dtype.bitsPerElement / 8 }

    /// The little-endian bit pattern of every element.
    static func elementBits(_ tensor: DenseTensor) -> [UInt64] {
        let width = bytesPerElement(tensor.dtype)
        return tensor.storage.withUnsafeBytes { raw in
            (0..<tensor.elementCount).map { i in
                (0..<width).reduce(UInt64(0)) { $0 | UInt64(raw[i * width + $1]) << (8 * $1) }
            }
        }
    }

    /// A tensor whose elements have exactly the bit patterns `bits`.
    static func tensor(_ dtype: DType, _ shape: [Int], bits: [UInt64]) throws -> DenseTensor {
        let width = bytesPerElement(dtype)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(bits.count * width)
        for v in bits { for b in 0..<width { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * b))) } }
        return try DenseTensor(dtype: dtype, shape: Shape(shape), storage: ByteStorage(bytes))
    }

    static func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func writeSidecar(_ sidecar: SidecarFile, to path: String) throws {
        try JSONEncoder().encode(sidecar).write(to: URL(fileURLWithPath: path))
    }

    /// Runs the interop script; stops the test with the script's stderr if it exits non-zero.
    @discardableResult
    private static func runScript(_ arguments: [String], in folder: TemporaryDirectory,
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> PythonResult {
        let result = try PythonRunner.run([script] + arguments, in: folder)
        try #require(result.status == 0, "safetensors_interop.py \(arguments.first ?? "") failed (exit \(result.status)):\n\(result.stderr)",
                     sourceLocation: sourceLocation)
        return result
    }

    static func isNaN(f16 bits: UInt16) -> Bool { bits & 0x7C00 == 0x7C00 && bits & 0x03FF != 0 }
    static func isNaN(bf16 bits: UInt16) -> Bool { bits & 0x7F80 == 0x7F80 && bits & 0x007F != 0 }
    static func isNaN(e4m3 code: UInt8) -> Bool { code & 0x7F == 0x7F }
    static func isNaN(e5m2 code: UInt8) -> Bool { code & 0x7C == 0x7C && code & 0x03 != 0 }
    static func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

    // MARK: 1. Python -> Swift

    @Test("Python -> Swift: files written by safetensors.numpy.save_file read bit-exactly, every dtype")
    func readsPythonFiles() throws {
        let folder = try TemporaryDirectory(prefix: "interop-read")
        let out = folder.url("reference")
        try Self.runScript(["write-reference", out], in: folder)
        let reference = try Self.decode(ReferenceSet.self, from: out + "/reference.json")

        let dtypes = Set(reference.files.flatMap { $0.tensors.map(\.dtype) })
        #expect(dtypes == Set(Self.coveredDTypes.map(\.rawValue)))
        var checkedElements = 0, checkedTensors = 0
        for file in reference.files {
            let name = try #require(file.file)
            let checkpoint = try SafetensorsReader.open(path: out + "/" + name)
            #expect(Dictionary(uniqueKeysWithValues: checkpoint.metadata.map { ($0.key, $0.value.description) }) == file.metadata, "\(name)")
            #expect(Set(checkpoint.entries.map(\.name)) == Set(file.tensors.map(\.name)), "\(name)")
            #expect(checkpoint.count == file.tensors.count, "\(name)")
            // Shapes of every kind are present: a scalar, a zero-element tensor, 1-D, 2-D and 3-D.
            #expect(Set(file.tensors.map(\.shape.count)).isSuperset(of: [0, 1, 2, 3]), "\(name)")
            #expect(file.tensors.contains { $0.shape == [2, 0] }, "\(name)")

            for expected in file.tensors {
                let entry = try #require(checkpoint[expected.name], "\(name): \(expected.name) missing")
                let tensor = try Self.dense(entry)
                #expect(tensor.dtype.rawValue == expected.dtype, "\(expected.name)")
                #expect(tensor.shape.dimensions == expected.shape, "\(expected.name)")
                #expect(tensor.elementCount == expected.bits.count, "\(expected.name)")
                let bits = Self.elementBits(tensor)
                let firstDifference = zip(bits, expected.bits).enumerated().first { $0.element.0 != $0.element.1 }
                #expect(bits == expected.bits,
                        "\(expected.name): element \(firstDifference?.offset ?? -1) is \(firstDifference.map { Self.hex($0.element.0) } ?? "-"), numpy wrote \(firstDifference.map { Self.hex($0.element.1) } ?? "-")")
                checkedTensors += 1
                checkedElements += bits.count

                // Decoding to Float agrees with numpy / ml_dtypes widening (NaN: only NaN-ness).
                if let float32Bits = expected.float32Bits {
                    #expect(tensor.dtype.isConvertibleFloat)
                    let floats = try tensor.floats()
                    #expect(floats.count == float32Bits.count)
                    for (i, (value, reference)) in zip(floats, float32Bits).enumerated() {
                        let want = Float(bitPattern: reference)
                        let same = want.isNaN ? value.isNaN : value.bitPattern == reference
                        #expect(same, "\(expected.name)[\(i)]: decoded \(value) (\(Self.hex(value.bitPattern))), numpy \(want) (\(Self.hex(reference)))")
                        if !same { break }
                    }
                }
            }
        }
        #expect(checkedTensors >= 15 * 5)
        #expect(checkedElements > 2500)
    }

    // MARK: 2. Swift -> Python

    /// Edge bit patterns per dtype (the sign bit set where it means a negative value).
    static func edgeBits(_ dtype: DType) -> [UInt64] {
        func u(_ values: [Int64], _ width: Int) -> [UInt64] {
            values.map { UInt64(bitPattern: $0) & (width == 64 ? .max : (1 << UInt64(width)) - 1) }
        }
        switch dtype {
        case .bool: return [0, 1, 1, 0]
        case .u8: return [0, 1, 127, 128, 254, 255]
        case .i8: return u([Int64(Int8.min), -1, 0, 1, Int64(Int8.max)], 8)
        case .u16: return [0, 1, 0x7FFF, 0x8000, 0xFFFF]
        case .i16: return u([Int64(Int16.min), -1, 0, 1, Int64(Int16.max)], 16)
        case .u32: return [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
        case .i32: return u([Int64(Int32.min), -1, 0, 1, Int64(Int32.max)], 32)
        case .u64: return [0, 1, UInt64(Int64.max), UInt64(Int64.max) + 1, .max]
        case .i64: return u([.min, -1, 0, 1, .max], 64)
        case .f16:   // 0, -0, inf, -inf, qNaN, -qNaN, sNaN, min/max subnormal, min normal, max, -max, 1
            return [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]
        case .bf16:
            return [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x0001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80]
        case .f32:
            return [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 1, 0x007F_FFFF,
                    0x0080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x3F80_0000].map { UInt64($0) }
        case .f64:
            return [0, 0x8000_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x7FF8_0000_0000_0000,
                    0x7FF0_0000_0000_0001, 1, 0x000F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF,
                    0xFFEF_FFFF_FFFF_FFFF, 0x3FF0_0000_0000_0000]
        case .f8E4M3: return [0x00, 0x80, 0x7F, 0xFF, 0x01, 0x07, 0x08, 0x7E, 0xFE, 0x38]
        case .f8E5M2: return [0x00, 0x80, 0x7C, 0xFC, 0x7E, 0x7D, 0x01, 0x03, 0x04, 0x7B, 0xFB, 0x3C]
        default: return []
        }
    }

    /// Tensors of `dtype`: edges, seeded random bit patterns (3-D), a scalar, zero-element tensors and,
    /// for float dtypes, seeded Gaussian values encoded by `DenseTensor(floats:shape:dtype:)`.
    static func swiftTensors(_ dtype: DType, generator: inout SeededGenerator) throws -> [(String, DenseTensor)] {
        let width = dtype.bitsPerElement
        let mask: UInt64 = width == 64 ? .max : (1 << UInt64(width)) - 1
        let random = (0..<30).map { _ in dtype == .bool ? generator.next() & 1 : generator.next() & mask }
        let edges = edgeBits(dtype)
        let prefix = dtype.rawValue.lowercased()
        var result: [(String, DenseTensor)] = [
            ("\(prefix).edges", try tensor(dtype, [edges.count], bits: edges)),
            ("\(prefix).random", try tensor(dtype, [3, 5, 2], bits: random)),
            ("\(prefix).scalar", try tensor(dtype, [], bits: [edges[edges.count - 1]])),
            ("\(prefix).empty", try tensor(dtype, [2, 0], bits: [])),
            ("\(prefix).empty1d", try tensor(dtype, [0], bits: [])),
        ]
        if dtype.isConvertibleFloat {
            let values = generator.gaussianFloats(count: 48, standardDeviation: 3) + [0, -0.0, 1e-7, -65504, 448, 57344]
            result.append(("\(prefix).encoded", try DenseTensor(floats: values, shape: Shape([6, 9]), dtype: dtype)))
        }
        return result
    }

    @Test("Swift -> Python: files written by SafetensorsWriter load bit-exactly with safetensors + numpy")
    func pythonReadsSwiftFiles() throws {
        let folder = try TemporaryDirectory(prefix: "interop-write")
        var generator = SeededGenerator(seed: 0x1D7E_50F7)
        var general: [TensorEntry] = [], fp8: [TensorEntry] = []
        for dtype in Self.coveredDTypes {
            for (name, tensor) in try Self.swiftTensors(dtype, generator: &generator) {
                let entry = TensorEntry(name: name, tensor: tensor)
                if dtype == .f8E4M3 || dtype == .f8E5M2 { fp8.append(entry) } else { general.append(entry) }
            }
        }
        // Not in reference order, so that `.preserve` and `.reference` give different files.
        general.reverse()
        let metadata = [MetadataEntry(key: "format", value: .string("pt")), MetadataEntry(key: "note", value: .string("ModelPress → \"safetensors\""))]
        var arguments = ["verify"]
        for (file, entries, ordering) in [("general-preserve", general, SafetensorsWriter.Ordering.preserve),
                                          ("general-reference", general, .reference), ("fp8", fp8, .reference)] {
            let checkpoint = try Checkpoint(entries: entries, metadata: metadata)
            let path = folder.url(file + ".safetensors")
            try SafetensorsWriter.write(checkpoint, to: path, ordering: ordering)
            let sidecar = SidecarFile(metadata: ["format": "pt", "note": "ModelPress → \"safetensors\""], tensors: try entries.map {
                let t = try Self.dense($0)
                return SidecarTensor(name: $0.name, dtype: t.dtype.rawValue, shape: t.shape.dimensions, bits: Self.elementBits(t))
            })
            try Self.writeSidecar(sidecar, to: folder.url(file + ".json"))
            arguments += [path, folder.url(file + ".json")]
            // The preserve file keeps the given order; the reference file is sorted.
            let order = try SafetensorsReader.open(path: path).entries.map(\.name)
            let planned = try entries.map { SafetensorsWriter.PlannedTensor(name: $0.name, dtype: try Self.dense($0).dtype, shape: $0.shape) }
            #expect(order == SafetensorsWriter.arrange(planned, ordering).map { planned[$0].name }, "\(file)")
            #expect(ordering == .reference || order == entries.map(\.name), "\(file)")
        }
        let result = try Self.runScript(arguments, in: folder)
        #expect(result.stdout.contains("verified \(general.count * 2 + fp8.count) tensors in 3 file(s)"), "\(result.stdout)")

        // The verifier is not vacuous: one flipped bit in the sidecar makes it fail and name the tensor.
        let good = try Self.decode(SidecarFile.self, from: folder.url("general-preserve.json"))
        var tensors = good.tensors
        let victim = try #require(tensors.firstIndex { $0.name == "f32.random" })
        var bits = tensors[victim].bits
        bits[7] ^= 1 << 12
        tensors[victim] = SidecarTensor(name: tensors[victim].name, dtype: tensors[victim].dtype, shape: tensors[victim].shape, bits: bits)
        try Self.writeSidecar(SidecarFile(metadata: good.metadata, tensors: tensors), to: folder.url("bad.json"))
        let bad = try PythonRunner.run([Self.script, "verify", folder.url("general-preserve.safetensors"), folder.url("bad.json")], in: folder)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("f32.random: 1 elements differ"), "\(bad.stderr)")
    }

    // MARK: 3. Byte-exact writer

    @Test("`.reference` ordering writes the same bytes as safetensors.numpy.save_file", arguments: [true, false])
    func referenceWriterIsByteIdentical(withMetadata: Bool) throws {
        let folder = try TemporaryDirectory(prefix: "interop-bytes")
        let pythonFile = folder.url("python.safetensors")
        try Self.runScript(["save-reference", pythonFile, folder.url("tensors.json")] + (withMetadata ? [] : ["--no-metadata"]), in: folder)
        let spec = try Self.decode(SidecarFile.self, from: folder.url("tensors.json"))
        #expect(spec.metadata == (withMetadata ? ["format": "pt"] : [:]))
        #expect(Set(spec.tensors.map(\.dtype)).count >= 14)
        let expected = try TemporaryDirectory.read(pythonFile)

        // Built from the description, fed in reverse order: the writer must sort.
        var entries: [TensorEntry] = []
        for t in spec.tensors.reversed() {
            let dtype = try #require(DType(rawValue: t.dtype))
            entries.append(TensorEntry(name: t.name, tensor: try Self.tensor(dtype, t.shape, bits: t.bits)))
        }
        let metadata = spec.metadata.map { MetadataEntry(key: $0.key, value: .string($0.value)) }
        let swiftFile = folder.url("swift.safetensors")
        try SafetensorsWriter.write(try Checkpoint(entries: entries, metadata: metadata), to: swiftFile, ordering: .reference)
        let written = try TemporaryDirectory.read(swiftFile)
        let firstDifference = zip(written, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        let identical = written == expected
        #expect(identical, """
            ModelPress wrote \(written.count) bytes, Python \(expected.count); first difference at byte \(firstDifference ?? min(written.count, expected.count))
            ModelPress: \(String(decoding: written.prefix(1200), as: UTF8.self))
            Python:     \(String(decoding: expected.prefix(1200), as: UTF8.self))
            """)

        // Reading Python's file and writing it back gives the same bytes, in either ordering
        // (the reader returns tensors in file order, which is already the reference order).
        let read = try SafetensorsReader.open(path: pythonFile)
        for ordering in [SafetensorsWriter.Ordering.reference, .preserve] {
            let path = folder.url("rewrite.safetensors")
            try SafetensorsWriter.write(read, to: path, ordering: ordering)
            let rewritten = try TemporaryDirectory.read(path)
            let same = rewritten == expected
            #expect(same, "rewriting Python's file with \(ordering) ordering changed its bytes")
        }
    }

    // MARK: 4. Casting conformance

    @Test("F16, BF16 and FP8 encoding and decoding match numpy and ml_dtypes bit for bit")
    func castsMatchNumpyAndMLDtypes() throws {
        let folder = try TemporaryDirectory(prefix: "interop-casts")
        try Self.runScript(["casts", folder.url("casts.json")], in: folder)
        let table = try Self.decode(CastTable.self, from: folder.url("casts.json"))
        let n = table.inputs.count
        #expect(n >= 9000)
        let counts: [Int] = [table.f16.count, table.bf16.count, table.e4m3.count, table.e5m2.count]
        #expect(counts == [n, n, n, n])
        let inputs = table.inputs.map(Float.init(bitPattern:))

        // The sweep really covers the interesting cases.
        let f16Ties = table.inputs.filter { let e = ($0 >> 23) & 0xFF; return e >= 113 && e <= 142 && $0 & 0x1FFF == 0x1000 }.count
        let bf16Ties = table.inputs.filter { $0 & 0xFFFF == 0x8000 && ($0 >> 23) & 0xFF != 0xFF }.count
        #expect(f16Ties >= 300 && bf16Ties >= 400, "\(f16Ties) F16 ties, \(bf16Ties) BF16 ties")
        #expect(inputs.contains { $0.isNaN } && inputs.contains(.infinity) && inputs.contains(-.infinity))
        #expect(inputs.filter { $0.isSubnormal }.count >= 200)
        #expect(table.e4m3.compactMap { $0 }.count >= 5000 && table.e5m2.compactMap { $0 }.count >= 5000)

        // Bulk encoders (FloatCodec, with its SIMD BF16 path) must agree with the scalar ones.
        let shape = Shape([n])
        let bulkF16 = Self.elementBits(try DenseTensor(floats: inputs, shape: shape, dtype: .f16)).map { UInt16($0) }
        let bulkBF16 = Self.elementBits(try DenseTensor(floats: inputs, shape: shape, dtype: .bf16)).map { UInt16($0) }
        let bulkE4M3 = Self.elementBits(try DenseTensor(floats: inputs, shape: shape, dtype: .f8E4M3)).map { UInt8($0) }
        let bulkE5M2 = Self.elementBits(try DenseTensor(floats: inputs, shape: shape, dtype: .f8E5M2)).map { UInt8($0) }

        // Mismatches per kind of check: a count and the first few messages.
        var failures: [String: (count: Int, examples: [String])] = [:]
        func check(_ ok: Bool, _ kind: String, _ message: @autoclosure () -> String) {
            guard !ok else { return }
            var entry = failures[kind, default: (0, [])]
            entry.count += 1
            if entry.examples.count < 5 { entry.examples.append(message()) }
            failures[kind] = entry
        }
        var comparedE4M3 = 0, comparedE5M2 = 0, saturated = 0
        for i in 0..<n {
            let x = inputs[i]
            let label = "x = \(x) (\(Self.hex(table.inputs[i])))"
            // F16 (numpy astype float16)
            for (name, got) in [("halfBits", HalfPrecision.halfBits(x)), ("bulk F16", bulkF16[i])] {
                let want = table.f16[i]
                check(x.isNaN ? Self.isNaN(f16: got) && Self.isNaN(f16: want) : got == want, name,
                      "\(name)(\(label)) = \(Self.hex(got)), numpy \(Self.hex(want))")
            }
            // BF16 (ml_dtypes.bfloat16)
            for (name, got) in [("bfloat16Bits", HalfPrecision.bfloat16Bits(x)), ("bulk BF16", bulkBF16[i])] {
                let want = table.bf16[i]
                check(x.isNaN ? Self.isNaN(bf16: got) && Self.isNaN(bf16: want) : got == want, name,
                      "\(name)(\(label)) = \(Self.hex(got)), ml_dtypes \(Self.hex(want))")
            }
            // F8_E4M3: ml_dtypes where it cannot overflow, else the saturation rule (±448 = 0x7E | sign)
            let sign: UInt8 = x.sign == .minus ? 0x80 : 0
            for (name, got) in [("e4m3.encode", FP8Format.e4m3.encode(x)), ("bulk E4M3", bulkE4M3[i])] {
                if let want = table.e4m3[i] {
                    check(got == want, name, "\(name)(\(label)) = \(Self.hex(got)), ml_dtypes \(Self.hex(want))")
                    comparedE4M3 += 1
                } else if x.isNaN {
                    check(Self.isNaN(e4m3: got), name, "\(name)(\(label)) = \(Self.hex(got)), expected NaN")
                } else {
                    check(got == sign | 0x7E, name, "\(name)(\(label)) = \(Self.hex(got)), expected saturation to \(Self.hex(sign | 0x7E))")
                    saturated += 1
                }
            }
            // F8_E5M2: ml_dtypes where it cannot overflow (inf stays inf), else saturation to ±57344 = 0x7B | sign
            for (name, got) in [("e5m2.encode", FP8Format.e5m2.encode(x)), ("bulk E5M2", bulkE5M2[i])] {
                if let want = table.e5m2[i] {
                    check(got == want, name, "\(name)(\(label)) = \(Self.hex(got)), ml_dtypes \(Self.hex(want))")
                    comparedE5M2 += 1
                } else if x.isNaN {
                    check(Self.isNaN(e5m2: got), name, "\(name)(\(label)) = \(Self.hex(got)), expected NaN")
                } else {
                    check(got == sign | 0x7B, name, "\(name)(\(label)) = \(Self.hex(got)), expected saturation to \(Self.hex(sign | 0x7B))")
                    saturated += 1
                }
            }
        }
        #expect(comparedE4M3 >= 10_000 && comparedE5M2 >= 10_000 && saturated >= 1000)

        // Decoding every code: scalar and bulk (FloatCodec) against numpy / ml_dtypes widening.
        let codes16 = (0..<65536).map { UInt64($0) }, codes8 = (0..<256).map { UInt64($0) }
        let decodes: [(String, DType, [UInt64], [UInt32], (Int) -> Float)] = [
            ("F16", .f16, codes16, table.decodeF16, { HalfPrecision.float(halfBits: UInt16($0)) }),
            ("BF16", .bf16, codes16, table.decodeBF16, { HalfPrecision.float(bfloat16Bits: UInt16($0)) }),
            ("F8_E4M3", .f8E4M3, codes8, table.decodeE4M3, { FP8Format.e4m3.decode(UInt8($0)) }),
            ("F8_E5M2", .f8E5M2, codes8, table.decodeE5M2, { FP8Format.e5m2.decode(UInt8($0)) }),
        ]
        for (name, dtype, codes, reference, scalar) in decodes {
            #expect(reference.count == codes.count)
            let bulk = try Self.tensor(dtype, [codes.count], bits: codes).floats()
            for code in 0..<min(codes.count, reference.count) {
                let want = Float(bitPattern: reference[code])
                for (kind, got) in [("decode", scalar(code)), ("bulk decode", bulk[code])] {
                    check(want.isNaN ? got.isNaN : got.bitPattern == reference[code], "\(name) \(kind)",
                          "\(name) \(kind)(\(Self.hex(code))) = \(got) (\(Self.hex(got.bitPattern))), reference \(want)")
                }
            }
        }
        let report = failures.keys.sorted().map { kind in
            "\(kind): \(failures[kind]!.count) mismatches, e.g.\n    " + failures[kind]!.examples.joined(separator: "\n    ")
        }.joined(separator: "\n")
        #expect(failures.isEmpty, "\(report)")
    }

    @Test("FP8 encoding saturates finite overflow and E4M3 infinities to ±max")
    func fp8Saturation() throws {
        let e4m3: [(Float, UInt8)] = [(464, 0x7E), (-464, 0xFE), (480, 0x7E), (1e6, 0x7E), (-1e6, 0xFE), (.greatestFiniteMagnitude, 0x7E),
                                     (.infinity, 0x7E), (-.infinity, 0xFE), (448, 0x7E), (447.99, 0x7E), (-448, 0xFE)]
        let e5m2: [(Float, UInt8)] = [(61440, 0x7B), (-61440, 0xFB), (65536, 0x7B), (1e6, 0x7B), (-1e6, 0xFB),
                                     (.greatestFiniteMagnitude, 0x7B), (.infinity, 0x7C), (-.infinity, 0xFC), (57344, 0x7B)]
        for (format, cases, dtype) in [(FP8Format.e4m3, e4m3, DType.f8E4M3), (.e5m2, e5m2, .f8E5M2)] {
            let bulk = Self.elementBits(try DenseTensor(floats: cases.map(\.0), shape: Shape([cases.count]), dtype: dtype))
            for (i, (x, code)) in cases.enumerated() {
                #expect(format.encode(x) == code, "\(dtype) encode(\(x)) = \(Self.hex(format.encode(x))), expected \(Self.hex(code))")
                #expect(bulk[i] == UInt64(code), "\(dtype) bulk encode(\(x)) = \(Self.hex(bulk[i])), expected \(Self.hex(code))")
            }
        }
        #expect(FP8Format.e4m3.decode(0x7E) == 448 && FP8Format.e4m3.maxFinite == 448)
        #expect(FP8Format.e5m2.decode(0x7B) == 57344 && FP8Format.e5m2.maxFinite == 57344)
        #expect(FP8Format.e5m2.decode(0x7C) == .infinity && FP8Format.e4m3.decode(0x7F).isNaN)
    }
}

/// The output of a finished Python process.

