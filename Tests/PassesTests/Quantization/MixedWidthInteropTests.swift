import Foundation
import Testing
import TensorCore
import CheckpointFormats
@testable import Passes
import TestSupport

/// The `mixed-column-quantized` safetensors layout read by numpy alone (`Tests/Interop/mixed_width_interop.py`),
/// following only the documented layout: its bitstream unpacking and dequantization give exactly our
/// `dequantized()` values, bit for bit.
@Suite("Mixed-width safetensors layout with numpy")
struct MixedWidthInteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Interop/mixed_width_interop.py").path

    @Test("numpy unpacks our bitstreams and dequantizes every tensor to our values bit for bit")
    func numpyDequantizes() throws {
        let folder = try TemporaryDirectory(prefix: "mixed-interop")
        var rng = SeededGenerator(seed: 31)
        var entries: [TensorEntry] = [TensorEntry(name: "model.norm.weight", tensor: try DenseTensor(floats: [1, 2, 3], shape: Shape([3])))]
        // Quantized by the RTN quantizer (F16 scales; one with huge values: F32 scales), plus hand-built
        // tensors with every width 1...8, rank 3 and a row of only width-0 columns.
        for (name, dims, symmetric, choices, magnitude) in [("layers.0.mlp.up_proj.weight", [24, 80], false, [0, 2, 3, 4, 5, 8] as [UInt8], Float(0.02)),
                                                           ("layers.0.mlp.down_proj.weight", [16, 37], true, [2, 4, 6, 7], 0.05),
                                                           ("layers.0.self_attn.o_proj.weight", [5, 19], false, [0, 3, 8], 3e30)] {
            let shape = Shape(dims)
            let values = (0..<shape.elementCount).map { i in i % 13 == 0 ? 0 : Float(rng.nextGaussian()) * magnitude }
            let widths = (0..<shape.columnCount).map { _ in choices[Int(rng.next() % UInt64(choices.count))] }
            let q = IntegerQuantizer(bits: 4, symmetric: symmetric, granularity: .channel, clipping: .defaultMSE)
                .quantize(values, shape: shape, columnBits: widths, threadCount: 2)
            entries.append(TensorEntry(name: name, payload: .quantized(q)))
            let scaleDType = try CompressedTensorsLayout.encode(name: name, q).first { $0.name.hasSuffix("weight_scale") }?.tensor.dtype
            #expect(scaleDType == (magnitude > 1 ? .f32 : .f16), "\(name) scales")
        }
        entries.append(TensorEntry(name: "layers.1.mlp.gate_proj.weight",
                                   payload: .quantized(MixedWidthSamples.make([3, 2, 9], widths: [1, 2, 3, 4, 5, 6, 7, 8, 0], symmetric: false, seed: 32))))
        entries.append(TensorEntry(name: "layers.1.mlp.up_proj.weight",
                                   payload: .quantized(MixedWidthSamples.make([6, 10], widths: [8, 1, 0, 3], symmetric: true, seed: 33, halfScales: false))))
        let checkpoint = try Checkpoint(entries: entries)
        let path = folder.url("ours.safetensors")
        try SafetensorsWriter.write(checkpoint, to: path)
        let result = try PythonRunner.run([Self.script, "dequantize", path, folder.url("numpy.safetensors")], in: folder)
        try #require(result.status == 0, "mixed_width_interop.py failed (exit \(result.status)):\n\(result.stderr)")
        #expect(result.stdout == "dequantized 5 tensors\n")
        let numpy = try CheckpointReader.open(path: folder.url("numpy.safetensors"))
        for entry in checkpoint.entries {
            guard case .quantized(let q) = entry.payload else { continue }
            guard case .dense(let theirs)? = numpy[entry.name]?.payload else { Issue.record("numpy did not give \(entry.name)"); continue }
            #expect(theirs.shape == q.shape, "\(entry.name)")
            #expect(try theirs.floats().map(\.bitPattern) == q.dequantized().map(\.bitPattern), "\(entry.name)")
        }
    }
}
