import Foundation
import FuzzTargets
import Testing

/// Each input the fuzzers found that crashed, hung or over-allocated (minimized, under
/// Tests/Fixtures/fuzz-findings/<target>/), replayed through its target: it must now be refused
/// with the specific error the fix added.
@Suite struct FuzzFindingTests {
    static let folder = CorpusReplayTests.root + "/Tests/Fixtures/fuzz-findings/"

    /// The error message of `target` for the finding `file`, or nil when the target accepts it.
    static func rejection(_ target: String, _ file: String) throws -> String? {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + target + "/" + file)))
        return try #require(FuzzRegistry.target(named: target)).run(bytes: bytes).error.map { "\($0)" }
    }

    /// `include X/Y` where every path reads as the same text: the path grows on each include, so the
    /// cycle check never fired and the parser recursed until the stack overflowed (libFuzzer, recipe,
    /// ASan stack-overflow). Now includes stop 16 files deep.
    @Test func includeThroughGrowingPathsStopsAtTheDepthLimit() throws {
        let message = try #require(try Self.rejection("recipe", "include-nesting-stack-overflow.recipe"))
        #expect(message.contains("includes nested more than 16 files deep"))
    }

    /// Three includes per file, each through a longer path, so each copy includes three more: 3^16
    /// files at the depth limit (libFuzzer, recipe, timeout; minimized by hand from two 1 KB
    /// inputs). Now a recipe runs at most 64 includes in all.
    @Test func includeFanOutStopsAfter64Includes() throws {
        let message = try #require(try Self.rejection("recipe", "include-fan-out-hang.recipe"))
        #expect(message.hasSuffix("fuzz/input.recipe:3:9: error: more than 64 includes in all"))
        #expect(message.components(separatedBy: "\n").count < 200)
    }

    /// Tensors of unknown ggml type ids declaring ~2^62 elements each over a few bytes: summing the
    /// element counts (`Checkpoint.parameterCount`) trapped on overflow (libFuzzer, gguf, round 2).
    /// Now an opaque type may declare at most 8 elements per stored byte.
    @Test func opaqueTypeElementCountIsBoundedByItsBytes() throws {
        let message = try #require(try Self.rejection("gguf", "opaque-type-element-count-overflow.gguf"))
        #expect(message.hasSuffix("tensor 'model.embed_tokens.weight': 8936451753933538304 elements of an unknown ggml type cannot fit in its 448 bytes (every ggml type takes at least 1 bit per element)"))
    }

    /// Any zstd input: writing the decoded file first cleans stale temporaries, which copied each
    /// `dirent`'s whole 256-byte `d_name` out of records glibc allocates shorter (ASan
    /// heap-buffer-overflow in `AtomicFileWriter.removeStaleTemporaries`). Now the name is read in
    /// place; the empty input is refused as a truncated stream.
    @Test func emptyZstdInputIsATruncatedStream() throws {
        let message = try #require(try Self.rejection("zstd", "empty-input-dirent-overread.zst"))
        #expect(message.hasSuffix("model.safetensors.zst: truncated zstd stream"))
    }
}
