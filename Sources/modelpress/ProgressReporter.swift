import Foundation
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Progress on stderr: a bar rewritten in place on a terminal (tensors done, MB/s, ETA), plain lines
/// otherwise, nothing when quiet.
final class ProgressReporter: @unchecked Sendable {
    private let isTerminal = isatty(2) != 0
    private let start = Date()
    private let lock = NSLock()

    func update(done: Int, total: Int, bytes: Int, name: String) {
        lock.lock(); defer { lock.unlock() }
        let seconds = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(bytes) / seconds / 1e6
        if isTerminal {
            let width = 30
            let filled = total == 0 ? width : width * done / total
            let eta = done == 0 ? 0 : seconds * Double(total - done) / Double(done)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            Console.standardError("\r[\(bar)] \(done)/\(total) tensors  \(String(format: "%.1f", rate)) MB/s  ETA \(String(format: "%.0f", eta)) s ")
            if done == total { Console.standardError("\n") }
        } else {
            Console.standardError("[\(done)/\(total)] \(Console.printable(name)) (\(String(format: "%.1f", rate)) MB/s)\n")
        }
    }
}
