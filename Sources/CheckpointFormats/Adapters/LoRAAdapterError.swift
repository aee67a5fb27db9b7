import TensorCore

/// A PEFT adapter folder that cannot be merged (exit 65): the message names the file and the key.
public struct LoRAAdapterError: Error, Equatable, Sendable, CustomStringConvertible, InputDataError {
    public let file: String
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
