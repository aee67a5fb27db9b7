import Foundation

/// A fresh folder under the system temporary directory, removed (with everything in it) when the
/// value is released. Each instance has its own folder, so tests can run in parallel.
public final class TemporaryDirectory: Sendable {
    /// Absolute path of the folder, without a trailing slash.
    public let path: String

    /// Creates `<tmp>/modelpress-tests-<prefix>-<uuid>`.
    public init(prefix: String = "t") throws {
        let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        path = base + "/modelpress-tests-\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The path of `name` inside the folder (nothing is created).
    public func url(_ name: String) -> String { path + "/" + name }

    /// Writes `bytes` to `name` inside the folder (replacing any file there) and returns its path.
    @discardableResult
    public func write(_ bytes: [UInt8], to name: String) throws -> String {
        let file = url(name)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// Writes UTF-8 text to `name` inside the folder and returns its path.
    @discardableResult
    public func write(text: String, to name: String) throws -> String {
        try write(Array(text.utf8), to: name)
    }

    /// Creates a sub-folder and returns its path.
    @discardableResult
    public func makeFolder(_ name: String) throws -> String {
        let folder = url(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// The names of the entries in the folder (hidden ones included), sorted.
    public func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    /// The bytes of the file at `path`.
    public static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
