import Testing
import TensorCore
import CheckpointFormats

@Suite("ZstdFrame")
struct ZstdFrameTests {
    @Test("round trip, and a corrupted frame is an error")
    func roundTrip() throws {
        var rng = SeededGenerator(seed: 2)
        let floats = rng.gaussianFloats(count: 10_000, standardDeviation: 0.02)
        let bytes = floats.withUnsafeBytes { [UInt8]($0) }
        let frame = try bytes.withUnsafeBytes { try ZstdFrame.compress($0, level: 3) }
        #expect(Array(frame.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
        #expect(frame.count < bytes.count)
        #expect(try frame.withUnsafeBytes { try ZstdFrame.decompress($0, limit: bytes.count) } == bytes)
        #expect(throws: ZstdError.self) { try frame.withUnsafeBytes { try ZstdFrame.decompress($0, limit: 100) } }
        var broken = frame
        broken[broken.count / 2] ^= 0xFF
        #expect(throws: ZstdError.self) { try broken.withUnsafeBytes { try ZstdFrame.decompress($0, limit: bytes.count) } }
    }
}
