import ArgumentParser
import ModelPress
import CheckpointFormats
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Writes to the standard streams without touching C's global `FILE*` objects.
enum Console {
    static func standardOutput(_ text: String) { write(1, text) }
    static func standardError(_ text: String) { write(2, text) }

    /// `text` with control characters (which may come from names inside a hostile file) escaped as
    /// `\n`, `\t` or `\u{1b}`, so a message stays one line and cannot drive the terminal.
    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F, 0x80..<0xA0, 0x2028, 0x2029: out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
        bytes.removeAll()
    }
}

/// Runs `body`, printing library errors as `modelpress: error: ...` and exiting with the
/// documented code (65 bad data, 64 usage, 1 otherwise).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        Console.standardError("modelpress: error: \(Console.printable(String(describing: error)))\n")
        throw ExitCode(ExitStatus.code(for: error))
    }
}

/// Writes `text` to `path` atomically.
func writeText(_ text: String, to path: String) throws {
    let writer = try AtomicFileWriter(destination: path)
    try writer.write(Array(text.utf8))
    try writer.commit()
}

/// The `--threads` value to use: the given one (at least 1), or every online core.
func threadCount(_ requested: Int?) throws -> Int {
    if let requested, requested < 1 { throw UsageError("--threads must be at least 1") }
    return requested ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}
