import Foundation

/// A per-input timeout for the in-process driver: `SIGALRM` after `seconds` prints which input hung
/// and exits 70 (a hang is a finding, like a crash).
enum Watchdog {
    nonisolated(unsafe) static var seconds: UInt32 = 10
    nonisolated(unsafe) private static var message: [CChar] = []

    static func arm(target: String, input: String) {
        message = Array("\nmodelpress-fuzz: timeout: target \(target) ran over \(seconds) s on the input saved at \(input)\n".utf8CString)
        signal(SIGALRM) { _ in
            Watchdog.message.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
            _exit(70)
        }
        alarm(seconds)
    }

    static func disarm() { alarm(0) }
}
