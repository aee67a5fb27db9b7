import Foundation
import FuzzTargets

/// The fuzz driver that needs no libFuzzer: replays corpus files and runs seeded mutants of them
/// through the targets in this process (`FuzzMutator`), one input at a time under a watchdog.
///
/// Invariant: before each input runs, it is written to `<crash-dir>/current-<target>` (removed when
/// the target finishes), so a crash or a timeout leaves the input that caused it behind.
struct InProcessDriver {
    let arguments: [String]

    func run() -> Int32 {
        guard let command = arguments.first else { return usage() }
        switch command {
        case "list":
            for t in FuzzRegistry.all { print("\(t.name)\t\(t.summary)") }
            return 0
        case "replay":
            guard arguments.count >= 3, let targets = targets(arguments[1]) else { return usage() }
            for target in targets {
                for file in FuzzCorpus(paths: Array(arguments.dropFirst(2))).files {
                    let outcome = target.run(bytes: file.bytes)
                    print("\(target.name) \(file.path): " + (outcome.error.map { "rejected: \($0)" } ?? "accepted"))
                }
            }
            return 0
        case "mutate":
            return mutate()
        default:
            return usage()
        }
    }

    private func targets(_ name: String) -> [any FuzzTarget]? {
        name == "all" ? FuzzRegistry.all : FuzzRegistry.target(named: name).map { [$0] }
    }

    private func option(_ name: String) -> String? {
        arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }

    private func mutate() -> Int32 {
        guard arguments.count >= 2, let targets = targets(arguments[1]), let corpus = option("--corpus") else { return usage() }
        let inputs = Int(option("--inputs") ?? "1000") ?? 1000
        let seed = UInt64(option("--seed") ?? "1") ?? 1
        let crashDir = option("--crash-dir") ?? NSTemporaryDirectory()
        Watchdog.seconds = UInt32(option("--timeout") ?? "10") ?? 10
        try? FileManager.default.createDirectory(atPath: crashDir, withIntermediateDirectories: true)
        for target in targets {
            let seeds = FuzzCorpus(paths: [corpus + "/" + target.name]).files.map(\.bytes)
            let current = crashDir + "/current-" + target.name
            var mutator = FuzzMutator(seed: seed, maximumLength: max(4096, seeds.map(\.count).max() ?? 0))
            var accepted = 0
            let start = Date()
            for i in 0..<(seeds.count + inputs) {
                let input = i < seeds.count ? seeds[i] : mutator.mutate(seeds.isEmpty ? [] : seeds[(i - seeds.count) % seeds.count], others: seeds)
                FileManager.default.createFile(atPath: current, contents: Data(input))
                Watchdog.arm(target: target.name, input: current)
                if case .accepted = target.run(bytes: input) { accepted += 1 }
                Watchdog.disarm()
            }
            try? FileManager.default.removeItem(atPath: current)
            let seconds = Date().timeIntervalSince(start)
            print("\(target.name): \(seeds.count) seeds + \(inputs) mutants, \(accepted) accepted, \(String(format: "%.1f", seconds)) s, no crash")
        }
        return 0
    }

    private func usage() -> Int32 {
        FileHandle.standardError.write(Data("""
        usage: modelpress-fuzz list
               modelpress-fuzz replay TARGET|all PATH...
               modelpress-fuzz mutate TARGET|all --corpus DIR [--inputs N] [--seed S] [--crash-dir DIR] [--timeout SECONDS]
        (a libFuzzer build: MODELPRESS_FUZZ_TARGET=TARGET modelpress-fuzz [libFuzzer flags] [CORPUS...]; see make fuzz)

        """.utf8))
        return 64
    }
}
