/// One reader exercised with arbitrary bytes: what a fuzzer calls once per input.
///
/// Invariant: `run` never traps, hangs or allocates far beyond the input's size for any input; it
/// returns `.accepted` when the reader took the input (and everything a user would then touch,
/// such as every tensor decoded to floats, worked) or `.rejected` with the error the reader threw.
/// Any other outcome (a crash, a trap, a huge allocation, a hang) is a fuzzing finding.
public protocol FuzzTarget: Sendable {
    /// The name used on the command line, in `MODELPRESS_FUZZ_TARGET` and as the corpus folder name.
    var name: String { get }
    /// What the target reads, for `modelpress-fuzz list`.
    var summary: String { get }
    /// Reads `input` as the target's format.
    func run(_ input: UnsafeRawBufferPointer) -> FuzzOutcome
}

/// What one fuzz input did.
public enum FuzzOutcome: Sendable {
    /// The reader accepted the input.
    case accepted
    /// The reader refused the input with a thrown error (the expected way to fail).
    case rejected(any Error)

    /// The error, when rejected.
    public var error: (any Error)? {
        if case .rejected(let error) = self { return error }
        return nil
    }
}

extension FuzzTarget {
    /// Runs `body`, turning a thrown error into `.rejected`.
    func outcome(_ body: () throws -> Void) -> FuzzOutcome {
        do {
            try body()
            return .accepted
        } catch {
            return .rejected(error)
        }
    }

    /// Runs `run` on a byte array.
    public func run(bytes: [UInt8]) -> FuzzOutcome {
        bytes.withUnsafeBytes { run($0) }
    }
}
