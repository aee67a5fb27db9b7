import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Runs the `modelpress` binary and reads its peak resident set, which counts touched pages of
/// memory-mapped files too, for the streaming-memory tests and `modelpress-bench streaming`. The
/// child writes its own `VmHWM` at exit (`MODELPRESS_PEAK_RSS_FILE`): `wait4`'s `ru_maxrss` would
/// include this (possibly large) process's high-water mark, which Linux carries into a
/// `posix_spawn`ed child.
public enum PeakMemory {
    public struct RunError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `modelpress arguments...` (output discarded; `binary` defaults to the one the tests
    /// find); returns its peak RSS in bytes and its wall time in seconds. Throws when it cannot start
    /// or exits with a non-zero status.
    public static func measure(_ arguments: [String], binary: String? = nil) throws -> (peak: Int, seconds: Double) {
        let binary = try binary ?? CommandLineRunner.binary()
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let record = NSTemporaryDirectory() + "/modelpress-peak-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        defer { unlink(record) }
        let variables: [String] = ProcessInfo.processInfo.environment.filter { $0.key != "MODELPRESS_PEAK_RSS_FILE" }
            .map { "\($0.key)=\($0.value)" } + ["MODELPRESS_PEAK_RSS_FILE=" + record]
        let environment: [UnsafeMutablePointer<CChar>?] = variables.map { strdup($0) } + [nil]
        defer { environment.forEach { free($0) } }
        var pid: pid_t = 0
        let start = ContinuousClock.now
        guard posix_spawn(&pid, binary, &actions, nil, argv, environment) == 0 else { throw RunError(description: "cannot start \(binary)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let elapsed = ContinuousClock.now - start
        guard status == 0 else { throw RunError(description: "modelpress \(arguments.joined(separator: " ")) failed (wait status \(status))") }
        guard let text = try? String(contentsOfFile: record, encoding: .utf8), let peak = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw RunError(description: "modelpress \(arguments.joined(separator: " ")) wrote no peak memory record")
        }
        return (peak, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }

    /// The peak RSS in bytes of `modelpress arguments...` (see `measure`).
    public static func run(_ arguments: [String]) throws -> Int {
        try measure(arguments).peak
    }
}
