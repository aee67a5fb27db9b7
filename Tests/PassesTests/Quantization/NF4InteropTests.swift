import Foundation
import Testing
import TensorCore
import CheckpointFormats
@testable import Passes
import TestSupport

/// NF4 against an independent numpy implementation of bitsandbytes' `quantize_4bit`
/// (`Tests/Interop/nf4_interop.py`): files it writes in bitsandbytes' layout read back as exactly the
/// tensors our quantizer makes from the same input, and the files we write dequantize in numpy, the
/// bitsandbytes way, to exactly our values.
@Suite("NF4 interop with a numpy bitsandbytes reference")
struct NF4InteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Tests/Interop/nf4_interop.py").path

    static func run(_ arguments: [String], in folder: TemporaryDirectory) throws {
        let result = try PythonRunner.run([script] + arguments, in: folder)
        try #require(result.status == 0, "nf4_interop.py \(arguments[0]) failed (exit \(result.status)):\n\(result.stderr)")
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test("files written the bitsandbytes way read as the tensors our quantizer makes, bit for bit", arguments: [false, true])
    func readReference(doubleQuantization: Bool) throws {
        let folder = try TemporaryDirectory(prefix: "nf4")
        try Self.run(["write", folder.path], in: folder)
        let input = try CheckpointReader.open(path: folder.url("input.safetensors"))
        let file = folder.url(doubleQuantization ? "nf4-dq.safetensors" : "nf4.safetensors")
        let reference = try CheckpointReader.open(path: file)
        let expected = try CheckpointReader.open(path: folder.url("expected.safetensors"))
        let quantizer = NF4Quantizer(blockSize: 64, doubleQuantization: doubleQuantization)
        #expect(reference.entries.map(\.name) == input.entries.map(\.name))
        for entry in input.entries {
            guard case .quantized(let theirs)? = reference[entry.name]?.payload else { Issue.record("\(entry.name) not read as NF4"); continue }
            let ours = quantizer.quantize(try denseTensor(input, entry.name).floats(), shape: entry.shape).quantizedTensor
            #expect(theirs.codes == ours.codes, "codes of \(entry.name)")
            #expect(Self.bits(theirs.scales) == Self.bits(ours.scales), "scales of \(entry.name)")
            #expect(theirs.nestedScales == ours.nestedScales, "nested scales of \(entry.name)")
            #expect(theirs == ours)
            let numpyValues = try denseTensor(expected, (doubleQuantization ? "nf4-dq/" : "nf4/") + entry.name).floats()
            #expect(Self.bits(ours.dequantized()) == Self.bits(numpyValues), "dequantized \(entry.name)")
        }
    }

    @Test("our NF4 files dequantize in numpy, the bitsandbytes way, to our values bit for bit", arguments: [false, true])
    func writeForReference(doubleQuantization: Bool) throws {
        let folder = try TemporaryDirectory(prefix: "nf4")
        var rng = SeededGenerator(seed: 99)
        let shape = Shape([40, 192])
        let values = (0..<shape.elementCount).map { i in i % 11 == 0 ? 0 : Float(rng.nextUnitDouble() * 2 - 1) * 0.05 }
        let q = NF4Quantizer(blockSize: 64, doubleQuantization: doubleQuantization).quantize(values, shape: shape).quantizedTensor
        let checkpoint = try Checkpoint(entries: [TensorEntry(name: "layers.3.mlp.down_proj.weight", payload: .quantized(q))])
        let path = folder.url("ours.safetensors")
        try SafetensorsWriter.write(checkpoint, to: path)
        try Self.run(["dequantize", path, folder.url("numpy.safetensors")], in: folder)
        let numpy = try CheckpointReader.open(path: folder.url("numpy.safetensors"))
        #expect(Self.bits(try denseTensor(numpy, "layers.3.mlp.down_proj.weight").floats()) == Self.bits(q.dequantized()))
        #expect(zip(values, q.dequantized()).allSatisfy { $0 != 0 || $1 == 0 }, "zeros stay exactly zero")
    }
}
