import Foundation
import Testing
import TensorCore
import CheckpointFormats
import ModelPress
import TestSupport

/// Integer, FP8 and codebook tensors in GGUF, checked with gguf-py (`Tests/Interop/gguf_interop.py
/// quantized`): gguf-py reads every `modelpress.quantization.<name>.*` key with its documented type
/// and every part with its documented name, ggml type and ne, and numpy, following only the layout
/// documented on `GGUFQuantizedLayout`, dequantizes each tensor to exactly our `dequantized()`.
///
/// Two files: pico-llama compressed to GGUF by a recipe mixing int2/3/4/8 (sym and asym; tensor,
/// channel and group scales) and FP8 E4M3/E5M2, and a file of hand-built tensors the passes do not
/// make yet (NF4 codebooks with and without double-quantized scales, a 2-bit codebook of rank 3,
/// 7-bit codes with partial groups).
@Suite("GGUF quantized tensors with gguf-py and numpy")
struct GGUFQuantizedInteropTests {
    typealias Q = QuantizedTensor

    static let recipe = """
        quantize.int bits=4 granularity=group:64 symmetric=false targets="*layers.0.mlp.*"
        quantize.int bits=3 granularity=channel symmetric=true targets="*layers.0.self_attn.*"
        quantize.int bits=8 granularity=tensor symmetric=false targets="*layers.1.mlp.*"
        quantize.int bits=2 granularity=group:32 symmetric=true targets="*layers.1.self_attn.q_proj*, *layers.1.self_attn.k_proj*"
        quantize.fp8 format=e4m3 granularity=channel targets="*layers.1.self_attn.v_proj*, *embed*"
        quantize.fp8 format=e5m2 granularity=tensor targets="*layers.1.self_attn.o_proj*, lm_head.weight"

        """

    static let nf4: [Float] = [-1, -0.6961928, -0.52507305, -0.3949175, -0.28444138, -0.18477343, -0.09105004, 0,
                               0.0795803, 0.1609302, 0.2461123, 0.33791524, 0.44070983, 0.562617, 0.72295684, 1]

    /// Random codes and scales for `scheme`; `nestedBlock` double-quantizes the scales.
    static func tensor(_ scheme: Q.Scheme, bits: Int, symmetric: Bool = true, _ granularity: Q.Granularity, _ dims: [Int],
                       seed: UInt64, nestedBlock: Int? = nil) -> Q {
        var rng = SeededGenerator(seed: seed)
        let shape = Shape(dims)
        let rows = shape.rowCount, columns = shape.columnCount
        let groups = switch granularity {
        case .tensor: 1
        case .channel: rows
        case .group(let n): rows * ((columns + n - 1) / n)
        }
        let codes = (0..<shape.elementCount).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }
        var scales = (0..<groups).map { _ in Float(rng.nextUnitDouble()) * 0.05 + 0.001 }
        let zeros = (0..<groups).map { _ in scheme != .integer ? 0 : symmetric ? Int32(1 << (bits - 1)) : Int32(rng.next() % UInt64(1 << bits)) }
        var nested: Q.NestedScales?
        if let block = nestedBlock {
            let map = (0..<256).map { _ in Float(rng.nextUnitDouble()) * 2 - 1 }.sorted()
            nested = Q.NestedScales(codes: (0..<groups).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                                    secondLevelScales: (0..<((groups + block - 1) / block)).map { _ in Float(rng.nextUnitDouble()) * 0.02 },
                                    offset: 0.0123, blockSize: block, map: map)
            scales = nested!.scales()
        }
        return Q(shape: shape, scheme: scheme, bits: bits, symmetric: symmetric, granularity: granularity, codes: codes,
                 scales: scales, zeroPoints: zeros, nestedScales: nested)
    }

    /// `[name, ggml type, ne]` of each part the layout documents, in file order.
    static func parts(_ name: String, _ q: Q) -> [JSONValue] {
        func part(_ n: String, _ type: String, _ numpy: [Int]) -> JSONValue {
            .array([.string(n), .string(type), .array(numpy.reversed().map { .integer($0) })])
        }
        let k = q.bits <= 2 ? 4 : q.bits <= 4 ? 2 : 1
        let dims = q.shape.dimensions
        let codes = dims.isEmpty ? [1] : Array(dims.dropLast()) + [(dims.last! + k - 1) / k]
        let scaleDims = q.granularity != .tensor && dims.count >= 2 ? [q.rowCount, q.scales.count / q.rowCount] : [q.scales.count]
        var out = [part(name, "I8", codes)]
        if let nested = q.nestedScales {
            out += [part(name + ".scale_codes", "I8", scaleDims), part(name + ".scale_scales", "F32", [nested.secondLevelScales.count]),
                    part(name + ".scale_map", "F32", [256])]
        } else {
            let half = q.scheme == .integer && q.scales.allSatisfy { HalfPrecision.float(halfBits: HalfPrecision.halfBits($0)) == $0 }
            out.append(part(name + ".scale", half ? "F16" : "F32", scaleDims))
        }
        if q.scheme == .integer && !q.symmetric { out.append(part(name + ".zero_point", q.zeroPoints.contains { $0 > 127 } ? "I16" : "I8", scaleDims)) }
        if case .codebook(let values) = q.scheme { out.append(part(name + ".codebook", "F32", [values.count])) }
        return out
    }

    @Test("gguf-py reads the documented keys and parts; numpy's dequantization equals ours bit for bit")
    func quantizedTensorsMatchNumpy() throws {
        let folder = try TemporaryDirectory(prefix: "gguf-quantized-interop")
        let recipe = try folder.write(text: Self.recipe, to: "mixed.recipe")
        let compressed = folder.url("pico-mixed.gguf")
        _ = try CompressionPipeline(inputPath: GGUFInteropTests.pico, recipePath: recipe).compress(outputPath: compressed)

        let handBuilt = folder.url("codebooks.gguf")
        let norm = try DenseTensor(floats: [1, 2, 3, 4], shape: Shape([4]))
        try GGUFWriter.write(Checkpoint(entries: [
            TensorEntry(name: "blk.0.attn_norm.weight", tensor: norm),
            TensorEntry(name: "blk.0.attn_q.weight", payload: .quantized(Self.tensor(.codebook(Self.nf4), bits: 4, .group(64), [8, 128], seed: 1))),
            TensorEntry(name: "blk.0.attn_k.weight", payload: .quantized(Self.tensor(.codebook(Self.nf4), bits: 4, .group(32), [4, 96], seed: 2, nestedBlock: 5))),
            TensorEntry(name: "blk.0.ffn_up.weight", payload: .quantized(Self.tensor(.codebook([-1, -0.25, 0, 0.5]), bits: 2, .channel, [3, 4, 10], seed: 3))),
            TensorEntry(name: "blk.0.ffn_down.weight", payload: .quantized(Self.tensor(.integer, bits: 7, symmetric: false, .group(5), [3, 11], seed: 4))),
            TensorEntry(name: "blk.0.ffn_gate.weight", payload: .quantized(Self.tensor(.float8(.e5m2), bits: 8, .channel, [5, 7], seed: 5))),
        ], metadata: [MetadataEntry(key: "general.architecture", value: .gguf(.string("llama")))]), to: handBuilt)

        var files: [JSONValue] = []
        var quantizedCount = 0
        for path in [compressed, handBuilt] {
            let checkpoint = try CheckpointReader.open(path: path)
            var tensors: [JSONValue] = [], dense: [JSONValue] = []
            for (i, entry) in checkpoint.entries.enumerated() {
                guard case .quantized(let q) = entry.payload else { dense.append(.string(entry.name)); continue }
                let values = folder.url("\(files.count)-\(i).f32")
                try q.dequantized().withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: values)) }
                let scheme = switch q.scheme {
                case .integer: "int"
                case .codebook: "codebook"
                case .float8(let kind): "fp8_\(kind.rawValue)"
                }
                tensors.append(GGUFInteropTests.obj([
                    ("name", .string(entry.name)), ("scheme", .string(scheme)), ("bits", .integer(q.bits)), ("symmetric", .bool(q.symmetric)),
                    ("granularity", .string(q.granularity.description)), ("shape", .array(q.shape.dimensions.map { .integer($0) })),
                    ("nested", .bool(q.nestedScales != nil)), ("parts", .array(Self.parts(entry.name, q))), ("dequantized", .string(values)),
                ]))
            }
            quantizedCount += tensors.count
            files.append(GGUFInteropTests.obj([("path", .string(path)), ("tensors", .array(tensors)), ("dense", .array(dense))]))
        }
        #expect(quantizedCount == 16 + 5)
        let sidecar = try folder.write(text: JSONWriter.compact(GGUFInteropTests.obj([("files", .array(files))])), to: "quantized.json")
        let result = try GGUFInteropTests.runScript(["quantized", sidecar], in: folder)
        #expect(result.stdout == "verified 2 files, 21 quantized tensors\n")
    }
}
