import Foundation
import Testing
import TestSupport

/// Issue 11, part 3: the real `modelpress` binary gives byte-identical outputs, and byte-identical
/// `--report` JSON, at `--threads 1` and `--threads 2` and when run twice in a row, for a
/// representative recipe of every pass family (GPTQ, BAQ, OBS, RPS, ggml types, zstd, NF4, LoRA merge),
/// and the same holds for `convert --type Q4_K` and `decompress`.
///
/// Every run gets its own working folder and writes the same relative names there (`out.<ext>`,
/// `report.json`), so the report's `output` field is identical too: nothing is removed from the
/// reports before they are compared.
@Suite("Determinism: outputs do not depend on --threads or on the run")
struct DeterminismTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pico = root.appendingPathComponent("TestModels/pico-llama-f32").path

    struct Case: Sendable, CustomTestStringConvertible {
        /// The file under Recipes/, without `.recipe`.
        let recipe: String
        /// The output extension (picks the writer).
        let ext: String
        /// Thread counts of the compress runs, in order; a count given twice is the run-to-run check.
        let threads: [Int]
        /// Start the runs at once rather than one after the other (for a slow recipe, so that its
        /// single-threaded run does not set the suite's wall time alone).
        var concurrent = false
        var testDescription: String { "\(recipe) → .\(ext) at --threads \(threads.map(String.init).joined(separator: ","))" }
    }

    /// Recipes that need calibration read it through their own `calibration` step (a path relative
    /// to the recipe file), so they run from any working folder.
    static let cases: [Case] = [
        Case(recipe: "gptq-int4", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "baq-avg3", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "prune-2of4-sparsegpt", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "prune50-then-w4", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "share-embeddings", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "gguf-q4k", ext: "gguf", threads: [1, 2, 2]),
        // The slowest recipe by far (~25 s of CPU per run in a debug build: every tensor is quantized
        // to all six candidate ggml types): one run per thread count; run-to-run variation would
        // show up as a 1 ≠ 2 difference as well. The two runs overlap.
        Case(recipe: "gguf-baq-mixed", ext: "gguf", threads: [2, 1], concurrent: true),
        Case(recipe: "lossless", ext: "safetensors.zst", threads: [1, 2, 2]),
        Case(recipe: "nf4", ext: "safetensors", threads: [1, 2, 2]),
        Case(recipe: "lora-merge", ext: "safetensors", threads: [1, 2, 2]),
    ]

    private func expectSuccess(_ result: CommandLineRunner.Result, _ what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.crashed && result.status == 0, "\(what): \(result)", sourceLocation: sourceLocation)
        #expect(result.standardOutput.isEmpty, "\(what) printed with --quiet: \(result.standardOutput)",
                sourceLocation: sourceLocation)
    }

    /// Runs `arguments` in a fresh folder `name` under `dir` and returns the bytes of `files` there.
    private func run(_ arguments: [String], in dir: TemporaryDirectory, folder name: String,
                     reading files: [String]) throws -> [[UInt8]] {
        let folder = try dir.makeFolder(name)
        expectSuccess(try CommandLineRunner.run(arguments, currentDirectory: folder), "\(name): modelpress \(arguments.joined(separator: " "))")
        return try files.map { try TemporaryDirectory.read(folder + "/" + $0) }
    }

    @Test("compress: output and --report bytes are the same at every thread count and on every run",
          arguments: cases)
    func compress(_ c: Case) throws {
        let dir = try TemporaryDirectory(prefix: "det-\(c.recipe)")
        let recipe = Self.root.appendingPathComponent("Recipes/\(c.recipe).recipe").path
        let output = "out.\(c.ext)"
        let labels = c.threads.enumerated().map { "run\($0.offset + 1)-t\($0.element)" }
        let runOne: @Sendable (Int) throws -> [[UInt8]] = { i in
            try self.run(["compress", Self.pico, "--recipe", recipe, "-o", output, "--report", "report.json",
                          "--threads", String(c.threads[i]), "--quiet"],
                         in: dir, folder: labels[i], reading: [output, "report.json"])
        }
        let results: [Result<[[UInt8]], any Error>]
        if c.concurrent {
            let box = ResultsBox(count: c.threads.count)
            DispatchQueue.concurrentPerform(iterations: c.threads.count) { i in box.set(i, Result { try runOne(i) }) }
            results = box.results
        } else {
            results = c.threads.indices.map { i in Result { try runOne(i) } }
        }
        var runs: [(label: String, output: [UInt8], report: [UInt8])] = []
        for (label, result) in zip(labels, results) {
            let bytes = try result.get()
            runs.append((label, bytes[0], bytes[1]))
        }
        let first = try #require(runs.first)
        #expect(!first.output.isEmpty && !first.report.isEmpty)
        for other in runs.dropFirst() {
            #expect(Self.firstDifference(other.output, first.output).isEmpty, "\(c.recipe): \(output) of \(first.label) and \(other.label) differ")
            #expect(Self.firstDifference(other.report, first.report).isEmpty, "\(c.recipe): report.json of \(first.label) and \(other.label) differ")
        }

        // decompress the compressed file at 1 and 2 threads (a .zst comes back through the
        // byte-for-byte path; the others are dequantized tensor by tensor).
        let compressed = dir.url(first.label + "/" + output)
        var dense: [[UInt8]] = []
        for threads in [1, 2] {
            dense += try run(["decompress", compressed, "-o", "dense.safetensors", "--threads", String(threads), "--quiet"],
                             in: dir, folder: "decompress-t\(threads)", reading: ["dense.safetensors"])
        }
        #expect(!dense[0].isEmpty)
        #expect(Self.firstDifference(dense[0], dense[1]).isEmpty, "\(c.recipe): decompress --threads 1 and 2 differ")
    }

    /// Run-to-run repetition of the Q4_K quantizer is covered by the gguf-q4k recipe case above.
    @Test("convert --type Q4_K of the pico model: the same bytes at --threads 2 and 1")
    func convertQ4K() throws {
        let dir = try TemporaryDirectory(prefix: "det-convert")
        var outputs: [[UInt8]] = []
        for (i, threads) in [2, 1].enumerated() {
            outputs += try run(["convert", Self.pico, "-o", "out.gguf", "--type", "Q4_K", "--threads", String(threads), "--quiet"],
                               in: dir, folder: "run\(i + 1)-t\(threads)", reading: ["out.gguf"])
        }
        #expect(!outputs[0].isEmpty)
        #expect(Self.firstDifference(outputs[1], outputs[0]).isEmpty, "convert --threads 2 and 1 differ")

        var dense: [[UInt8]] = []
        for threads in [1, 2] {
            dense += try run(["decompress", dir.url("run1-t2/out.gguf"), "-o", "dense.safetensors", "--threads", String(threads), "--quiet"],
                             in: dir, folder: "decompress-t\(threads)", reading: ["dense.safetensors"])
        }
        #expect(!dense[0].isEmpty)
        #expect(Self.firstDifference(dense[0], dense[1]).isEmpty, "decompress of Q4_K --threads 1 and 2 differ")
    }

    @Test("decompress --threads 0 is a usage error (exit 64) naming --threads")
    func decompressThreadsZero() throws {
        let dir = try TemporaryDirectory(prefix: "det-threads0")
        let result = try CommandLineRunner.run(["decompress", Self.pico + "/model.safetensors", "-o", dir.url("o.safetensors"), "--threads", "0"])
        #expect(!result.crashed && result.status == 64, "\(result)")
        #expect(result.standardError.contains("--threads"), "\(result)")
        #expect(try dir.entries().isEmpty)
    }

    /// Results written from several threads, each to its own slot.
    final class ResultsBox: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [Result<[[UInt8]], any Error>?]
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ value: Result<[[UInt8]], any Error>) { lock.lock(); slots[i] = value; lock.unlock() }
        var results: [Result<[[UInt8]], any Error>] {
            lock.lock(); defer { lock.unlock() }
            return slots.map { $0 ?? .failure(CancellationError()) }
        }
    }

    /// "" when equal, else where they first differ. Expectations test this string rather than
    /// `a == b`, so that a failure prints it, not megabytes of bytes.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String {
        if a == b { return "" }
        let n = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        return ": first at byte \(n) (sizes \(a.count) and \(b.count))"
    }
}
