import Foundation

/// `MODELPRESS_PEAK_RSS_FILE=PATH`: at exit, write this process's peak resident set in bytes
/// (`VmHWM` of `/proc/self/status`) to PATH, for the streaming benchmark and tests.
///
/// A parent's `wait4` figure (`ru_maxrss`) is no use for that from a large parent: Linux carries the
/// parent's high-water mark into a `vfork`+`exec` child (`posix_spawn`), so a test runner holding
/// 200 MiB sees every child peak at 200 MiB or more. `VmHWM` belongs to the new program's memory
/// alone.
enum PeakMemoryRecord {
    static func installIfRequested() {
        guard let path = ProcessInfo.processInfo.environment["MODELPRESS_PEAK_RSS_FILE"], !path.isEmpty else { return }
        target = path
        atexit {
            guard let path = PeakMemoryRecord.target,
                  let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                  let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return }
            try? "\(kilobytes * 1024)\n".write(toFile: path, atomically: false, encoding: .utf8)
        }
    }

    nonisolated(unsafe) private static var target: String?
}
