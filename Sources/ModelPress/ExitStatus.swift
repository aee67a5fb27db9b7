import TensorCore
import CheckpointFormats

/// The exit codes of the command line (DESIGN.md): 0 success, 1 I/O or runtime failure,
/// 64 usage error, 65 bad input data, 2 for `diff --fail-above` regressions.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    public static let regression: Int32 = 2
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65

    /// The exit code for an error thrown by the library.
    public static func code(for error: any Error) -> Int32 {
        switch error {
        case is any InputDataError: dataError
        case is UsageError: usage
        default: failure
        }
    }
}

/// A command-line usage problem found by the library (bad flag combination, unsupported output path).
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// Throws when `output` names the input file or one of its shards (the input is never modified).
    public static func refuseOverwriting(input: String, output: String) throws {
        guard let target = FileSystem.identity(output) else { return }
        if try CheckpointFormat.sourceFiles(path: input).contains(where: { FileSystem.identity($0).map { $0 == target } ?? false }) {
            throw UsageError("\(output): the output would overwrite the input")
        }
    }
}
