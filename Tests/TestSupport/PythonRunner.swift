import Foundation

/// The exit status and output of a Python run.
public struct PythonResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs the cross-check scripts with `$MODELPRESS_PYTHON` (set by `make test` to the project's venv;
/// default `python3` on PATH).
public enum PythonRunner {
    /// Runs `python arguments...` in `folder` (a fresh temporary folder when nil) and waits for it.
    /// stdout and stderr go through files, so large outputs cannot block a pipe.
    public static func run(_ arguments: [String], in folder: TemporaryDirectory? = nil) throws -> PythonResult {
        let python = ProcessInfo.processInfo.environment["MODELPRESS_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        let folder = try folder ?? TemporaryDirectory(prefix: "python")
        let tag = UUID().uuidString
        let outPath = try folder.write([], to: ".stdout-\(tag)"), errPath = try folder.write([], to: ".stderr-\(tag)")
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return PythonResult(status: process.terminationStatus,
                            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}
