import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Runs the `modelpress` binary and reads the child's peak resident set (`wait4`'s `ru_maxrss`,
/// which counts touched pages of memory-mapped files too), for the streaming-memory tests and
/// `modelpress-bench streaming`.
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
        var pid: pid_t = 0
        let start = ContinuousClock.now
        guard posix_spawn(&pid, binary, &actions, nil, argv, environ) == 0 else { throw RunError(description: "cannot start \(binary)") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let elapsed = ContinuousClock.now - start
        guard status == 0 else { throw RunError(description: "modelpress \(arguments.joined(separator: " ")) failed (wait status \(status))") }
        return (usage.ru_maxrss * 1024, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }

    /// The peak RSS in bytes of `modelpress arguments...` (see `measure`).
    public static func run(_ arguments: [String]) throws -> Int {
        try measure(arguments).peak
    }
}
