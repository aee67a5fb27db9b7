import ArgumentParser
import ModelPress
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Writes to the standard streams without touching C's global `FILE*` objects.
enum Console {
    static func standardOutput(_ text: String) { write(1, text) }
    static func standardError(_ text: String) { write(2, text) }

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
        Console.standardError("modelpress: error: \(error)\n")
        throw ExitCode(ExitStatus.code(for: error))
    }
}
