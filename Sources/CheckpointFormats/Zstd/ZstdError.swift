/// A zstd failure, with the library's error name. Decoding failures are bad input (exit 65).
public struct ZstdError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "zstd: \(message)" }
}
