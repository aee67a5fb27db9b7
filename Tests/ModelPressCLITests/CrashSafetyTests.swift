import Foundation
import Testing
import TensorCore
import TestSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kills the real `modelpress compress` with SIGKILL at seeded pseudo-random moments of its run and
/// checks what a crash may leave behind: the output path holds nothing or a complete output (the
/// previous one, or the new one when the kill came after the rename), the input is untouched, and
/// the temporary files of killed runs are removed by the next successful run into the same folder.
@Suite("crash safety: SIGKILL during compress", .serialized)
struct CrashSafetyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let model = root.appendingPathComponent("TestModels/pico-llama-f32").path
    static let outputName = "out.safetensors.zst"
    static let reportName = "out.json"

    /// Both write a seekable `.zst` output (an inner temporary file, then the compressed temporary
    /// file) and a JSON report.
    enum Scenario: String, CaseIterable, CustomTestStringConvertible {
        /// Mostly writing: the temporary files exist for most of the run, so most kills land there.
        case lossless
        /// Mostly computing (GPTQ with full Hessians): most kills land before anything is written.
        case gptq = "gptq-int4"
        var recipe: String { CrashSafetyTests.root.appendingPathComponent("Recipes/\(rawValue).recipe").path }
        var testDescription: String { rawValue }
    }

    /// A started `modelpress compress` (stdout discarded, stderr to a file for diagnostics).
    final class Run {
        let process = Process()
        let errorPath: String

        init(_ scenario: Scenario, input: String, output: String, scratch: TemporaryDirectory, tag: String) throws {
            errorPath = scratch.url("stderr-\(tag)")
            _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: try CommandLineRunner.binary())
            let report = (output as NSString).deletingLastPathComponent + "/" + CrashSafetyTests.reportName
            process.arguments = ["compress", input, "--recipe", scenario.recipe, "-o", output, "--report", report, "--quiet", "--threads", "2"]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
            try process.run()
        }

        var standardError: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

        /// Waits for a normal end; returns the exit status.
        func finish() -> Int32 {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    static func temporaries(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".modelpress-tmp-") }.sorted()
    }

    @Test("10 seeded SIGKILLs: output is absent or complete, input untouched, leftovers removed by the next run",
          arguments: Scenario.allCases)
    func killedRuns(_ scenario: Scenario) throws {
        let dir = try TemporaryDirectory(prefix: "crash")
        // The input is a copy in its own folder, so anything written next to it would show.
        let inputFolder = try dir.makeFolder("input")
        for name in ["model.safetensors", "config.json"] {
            try FileManager.default.copyItem(atPath: Self.model + "/" + name, toPath: inputFolder + "/" + name)
        }
        let inputFile = inputFolder + "/model.safetensors"
        let inputBytes = try TemporaryDirectory.read(inputFile)
        let inputEntries = try FileManager.default.contentsOfDirectory(atPath: inputFolder).sorted()

        // Reference runs (the second one warm, timed): the kill moments are spread over its run time.
        let referenceFolder = try dir.makeFolder("reference")
        var duration = 0.0
        for pass in 0..<2 {
            let start = Date()
            let reference = try Run(scenario, input: inputFolder, output: referenceFolder + "/" + Self.outputName, scratch: dir, tag: "reference\(pass)")
            let status = reference.finish()
            duration = Date().timeIntervalSince(start)
            try #require(status == 0, "\(reference.standardError)")
        }
        let referenceBytes = try TemporaryDirectory.read(referenceFolder + "/" + Self.outputName)
        #expect(try Self.temporaries(in: referenceFolder).isEmpty)

        let outFolder = try dir.makeFolder("out")
        let output = outFolder + "/" + Self.outputName
        var generator = SeededGenerator(seed: 0x11_4C4A_5348)   // the same kill moments on every run
        let kills = 10
        var leftovers = 0
        var killedRuns = 0
        for index in 0..<kills {
            // Even kills: a complete previous output is already there and must survive.
            if index % 2 == 0 {
                if !FileManager.default.fileExists(atPath: output) { try Data(referenceBytes).write(to: URL(fileURLWithPath: output)) }
            } else {
                try? FileManager.default.removeItem(atPath: output)
            }
            let hadOutput = FileManager.default.fileExists(atPath: output)
            // Stratified: kill `index` lands in the index-th tenth of the measured run time.
            let fraction = (Double(index) + Double.random(in: 0..<1, using: &generator)) / Double(kills)
            let delay = 0.02 + fraction * duration
            let run = try Run(scenario, input: inputFolder, output: output, scratch: dir, tag: "kill\(index)")
            Thread.sleep(forTimeInterval: delay)
            let killed = kill(run.process.processIdentifier, SIGKILL) == 0
            run.process.waitUntilExit()
            if run.process.terminationReason == .exit {
                #expect(run.process.terminationStatus == 0, "kill \(index): \(run.standardError)")
            } else {
                killedRuns += 1
                #expect(killed && run.process.terminationStatus == SIGKILL, "kill \(index) after \(delay) s")
            }

            if FileManager.default.fileExists(atPath: output) {
                #expect(try TemporaryDirectory.read(output) == referenceBytes, "kill \(index) after \(delay) s: the output is not a complete output")
            } else {
                #expect(!hadOutput, "kill \(index) after \(delay) s: the previous output is gone")
            }
            #expect(try TemporaryDirectory.read(inputFile) == inputBytes, "kill \(index): the input changed")
            #expect(try FileManager.default.contentsOfDirectory(atPath: inputFolder).sorted() == inputEntries, "kill \(index): files appeared next to the input")
            // A report, when there, is complete (its timings differ from run to run, so it is parsed, not compared).
            let report = outFolder + "/" + Self.reportName
            if FileManager.default.fileExists(atPath: report) {
                #expect((try? JSONSerialization.jsonObject(with: Data(TemporaryDirectory.read(report)))) != nil, "kill \(index): incomplete report")
            }
            let others = try FileManager.default.contentsOfDirectory(atPath: outFolder)
                .filter { $0 != Self.outputName && $0 != Self.reportName && !$0.contains(".modelpress-tmp-") }
            #expect(others.isEmpty, "kill \(index): unexpected files \(others)")
            leftovers = max(leftovers, try Self.temporaries(in: outFolder).count)

            // Halfway and at the end: a successful run into the same folder removes the leftovers.
            if index == kills / 2 - 1 || index == kills - 1 {
                let next = try Run(scenario, input: inputFolder, output: output, scratch: dir, tag: "next\(index)")
                let nextStatus = next.finish()
                #expect(nextStatus == 0, "\(next.standardError)")
                #expect(try TemporaryDirectory.read(output) == referenceBytes)
                #expect(try Self.temporaries(in: outFolder).isEmpty, "left over after a successful run")
                #expect(try FileManager.default.contentsOfDirectory(atPath: outFolder).sorted() == [Self.reportName, Self.outputName])
            }
        }
        // The kills must have hit running processes; in the lossless runs, also their temporary files.
        #expect(killedRuns >= kills / 2, "only \(killedRuns) of \(kills) runs were killed (run time \(duration) s)")
        if scenario == .lossless { #expect(leftovers > 0, "no kill left a temporary file (run time \(duration) s)") }
        #expect(try TemporaryDirectory.read(inputFile) == inputBytes)
    }

    @Test("the next run removes only its own output's temporary files of processes that no longer run")
    func onlyStaleOwnTemporariesAreRemoved() throws {
        let dir = try TemporaryDirectory(prefix: "crash-stale")
        // A process id that no longer runs.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/sh")
        gone.arguments = ["-c", "exit 0"]
        try gone.run()
        gone.waitUntilExit()
        let dead = gone.processIdentifier
        try #require(kill(dead, 0) != 0)
        // A process id that runs: this test process.
        let alive = getpid()

        let name = "out.safetensors.zst"
        let stale = [".\(name).modelpress-tmp-\(dead)-Ab12Cd",
                     ".\(name).modelpress-tmp-\(dead)-inner-1234",
                     "..\(name).modelpress-tmp-\(dead)-inner-1234.modelpress-tmp-\(dead)-Zz99Yy"]
        let kept = [".\(name).modelpress-tmp-\(alive)-Ab12Cd",         // a writer that still runs
                    ".\(name).modelpress-tmp-Ab12Cd",                  // no process id: not provably stale
                    ".other.safetensors.modelpress-tmp-\(dead)-Ab12Cd", // another output's
                    "\(name).modelpress-tmp-\(dead)-Ab12Cd",           // not hidden: not ours
                    ".\(name).backup",
                    "notes.txt"]
        for file in stale + kept { try dir.write(Array("junk".utf8), to: file) }
        let folderLike = try dir.makeFolder(".\(name).modelpress-tmp-\(dead)-folder") // only regular files go

        let result = try CommandLineRunner.run(["compress", Self.model, "--recipe", Self.root.appendingPathComponent("Recipes/w8-per-channel.recipe").path,
                                                "-o", dir.url(name), "--quiet"])
        #expect(result.status == 0, "\(result)")
        let entries = try dir.entries()
        for file in stale { #expect(!entries.contains(file), "\(file) should be removed") }
        for file in kept { #expect(try TemporaryDirectory.read(dir.url(file)) == Array("junk".utf8), "\(file) should be kept") }
        #expect(FileManager.default.fileExists(atPath: folderLike))
        #expect(Set(entries) == Set(kept + [name, (folderLike as NSString).lastPathComponent]))
    }
}
