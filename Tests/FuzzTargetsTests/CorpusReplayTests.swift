import Foundation
import FuzzTargets
import Testing
import TestSupport

/// The seed corpus and every fuzz finding, through every target, in the ordinary debug build: a
/// cheap guard that nothing the fuzzers were given (or found) crashes a reader again.
@Suite struct CorpusReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func everyTargetHasSeeds() {
        for target in FuzzRegistry.all {
            #expect(!FuzzCorpus(paths: [Self.root + "/Fuzz/Corpus/" + target.name]).files.isEmpty, "no seeds for \(target.name)")
        }
    }

    @Test func seedsAndFindingsRunThroughEveryTarget() {
        let files = FuzzCorpus(paths: [Self.root + "/Fuzz/Corpus", Self.root + "/Tests/Fixtures/fuzz-findings"]).files
        #expect(files.count > 20)
        for target in FuzzRegistry.all {
            for file in files { _ = target.run(bytes: file.bytes) }
        }
    }

    @Test func eachTargetAcceptsItsValidSeeds() {
        for target in FuzzRegistry.all {
            let seeds = FuzzCorpus(paths: [Self.root + "/Fuzz/Corpus/" + target.name]).files.filter { !$0.path.contains("/invalid-") }
            for seed in seeds {
                let outcome = target.run(bytes: seed.bytes)
                #expect(outcome.error == nil, "\(target.name) rejects \(seed.path): \(outcome.error.map { "\($0)" } ?? "")")
            }
        }
    }

    @Test func mutantsAreDeterministic() {
        var a = FuzzMutator(seed: 7), b = FuzzMutator(seed: 7)
        let input = Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}".utf8)
        for _ in 0..<50 { #expect(a.mutate(input) == b.mutate(input)) }
    }
}
