import Foundation
import Testing
import TensorCore
import CheckpointFormats
@testable import ModelPress
import TestSupport

@Suite("inspect on .zst files")
struct ZstdInspectTests {
    @Test("inspect decodes only the header frames: it works even when a tensor's frames are damaged")
    func headerOnly() throws {
        let dir = try TemporaryDirectory(prefix: "zst-inspect")
        let output = dir.url("m.safetensors.zst")
        var conversion = try CheckpointConversion(inputPath: CompressionPipelineTests.pico, outputPath: output)
        try conversion.run()
        let summary = try CheckpointSummary(path: output)
        let original = try CheckpointSummary(path: CompressionPipelineTests.pico)
        #expect(summary.rows == original.rows)
        #expect(summary.format == .zstd)
        // Damage the last content frame (lm_head/norm data, far from the header).
        var bytes = try TemporaryDirectory.read(output)
        let reader = try ZstdArchiveReader(path: output)
        let header = try reader.read(0..<8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        #expect(header < 4096)
        let at = bytes.count / 2
        bytes[at] ^= 0xFF
        let damaged = try dir.write(bytes, to: "damaged.safetensors.zst")
        #expect(try CheckpointSummary(path: damaged).rows == original.rows)
        #expect(throws: ZstdArchiveError.self) { _ = try CheckpointReader.open(path: damaged) }
    }
}
