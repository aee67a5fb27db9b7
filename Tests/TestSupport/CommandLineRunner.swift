import Foundation

/// Runs the built `modelpress` binary and captures its exit status, stdout and stderr.
public enum CommandLineRunner {
    public struct Result: Sendable, CustomStringConvertible {
        /// The exit code, or the signal number when `crashed`.
        public let status: Int32
        /// True when the process was ended by a signal (a trap or crash), not by exit().
        public let crashed: Bool
        public let standardOutput: String
        public let standardError: String
        public var description: String { "\(crashed ? "signal" : "exit") \(status)\n--- stdout\n\(standardOutput)--- stderr\n\(standardError)" }
        /// stderr split into lines (a final newline does not start an extra line).
        public var errorLines: [String] {
            var lines = standardError.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            return lines
        }
    }

    public enum LookupError: Error, CustomStringConvertible {
        case notFound([String])
        public var description: String {
            "the modelpress binary was not found (build it first, or set MODELPRESS_BINARY); looked at:\n" + {
                if case .notFound(let c) = self { return c.joined(separator: "\n") }
                return ""
            }()
        }
    }

    /// Candidate locations of the binary, most trusted first:
    /// `MODELPRESS_BINARY`; next to the running test bundle (`Bundle.main.executableURL`,
    /// `CommandLine.arguments[0]`, any loaded `.xctest` bundle), which is the build folder of
    /// whatever scratch path `swift test` used; then `<package>/.build*/debug/modelpress`.
    public static func candidates() -> [String] {
        var result: [String] = []
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["MODELPRESS_BINARY"], !explicit.isEmpty { result.append(explicit) }

        var folders: [URL] = []
        if let executable = Bundle.main.executableURL { folders.append(executable.resolvingSymlinksInPath().deletingLastPathComponent()) }
        if let first = CommandLine.arguments.first, !first.isEmpty {
            let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
            let url = first.hasPrefix("/") ? URL(fileURLWithPath: first) : cwd.appendingPathComponent(first)
            folders.append(url.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            // macOS: <build>/debug/X.xctest/Contents/MacOS/X; Linux: <build>/debug/X.xctest (an executable).
            folders.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent())
        }
        for folder in folders {
            var url = folder
            // Walk up out of an .xctest bundle, if we are inside one.
            for _ in 0..<4 where url.path.contains(".xctest") { url.deleteLastPathComponent() }
            result.append(url.appendingPathComponent("modelpress").path)
        }

        // Fallback: scratch folders of the package that holds this file (Tests/TestSupport/<file>).
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let scratch = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).filter { $0.hasPrefix(".build") }.sorted()
        for folder in scratch {
            result.append(root.appendingPathComponent(folder).appendingPathComponent("debug/modelpress").path)
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0).inserted }
    }

    /// The path of the `modelpress` binary.
    public static func binary() throws -> String {
        let all = candidates()
        guard let found = all.first(where: { FileManager.default.isExecutableFile(atPath: $0) && !FileSystemCheck.isDirectory($0) }) else {
            throw LookupError.notFound(all)
        }
        return found
    }

    /// Runs `modelpress arguments...` to completion. Output is captured through files (not pipes),
    /// so a chatty child can never block on a full pipe.
    public static func run(_ arguments: [String], currentDirectory: String? = nil) throws -> Result {
        let capture = try TemporaryDirectory(prefix: "cli-capture")
        let outPath = capture.url("stdout")
        let errPath = capture.url("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory, isDirectory: true) }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal,
                      standardOutput: String(decoding: try TemporaryDirectory.read(outPath), as: UTF8.self),
                      standardError: String(decoding: try TemporaryDirectory.read(errPath), as: UTF8.self))
    }
}

private enum FileSystemCheck {
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
