// Everything that reads fixture files lives here, so it can be swapped for the project's own
// safetensors reader later.
import Foundation
import CheckpointFormats

/// An F32 tensor read from a fixture safetensors file.
struct FixtureTensor: Sendable {
    let shape: [Int]
    let values: [Float]

    var rows: Int { shape.count == 2 ? shape[0] : 1 }
    var columns: Int { shape.last ?? 0 }
}

enum FixtureError: Error, CustomStringConvertible {
    case malformed(String)
    var description: String {
        switch self {
        case .malformed(let why): "malformed fixture: \(why)"
        }
    }
}

enum Fixtures {
    /// `Tests/Fixtures/ggml`, copied from llama.cpp-made fixtures (see its README.md).
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ggml", isDirectory: true)

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: url(name).path) }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

    /// The F32 input matrices (`inputs.safetensors`), numpy shape `[rows, cols]`.
    static let inputs: Result<[String: FixtureTensor], any Error> = Result { try readSafetensors("inputs.safetensors") }

    /// The per-column importance weights (`calib.safetensors`, `<name>.act_sq`).
    static let calibration: Result<[String: FixtureTensor], any Error> = Result { try readSafetensors("calib.safetensors") }

    /// Names of the input tensors, sorted.
    static var tensorNames: [String] { ((try? inputs.get()) ?? [:]).keys.sorted() }

    static func input(_ name: String) throws -> FixtureTensor {
        guard let t = try inputs.get()[name] else { throw FixtureError.malformed("no input tensor \(name)") }
        return t
    }

    static func importance(_ name: String) throws -> [Float] {
        guard let t = try calibration.get()[name + ".act_sq"] else { throw FixtureError.malformed("no act_sq for \(name)") }
        return t.values
    }

    /// Reads every F32 tensor of a fixture file with ModelPress's own safetensors reader.
    static func readSafetensors(_ name: String) throws -> [String: FixtureTensor] {
        let checkpoint = try SafetensorsReader.open(path: url(name).path)
        var result: [String: FixtureTensor] = [:]
        for entry in checkpoint.entries {
            guard case .dense(let t) = entry.payload, t.dtype == .f32 else { continue }
            result[entry.name] = FixtureTensor(shape: t.shape.dimensions, values: try t.floats())
        }
        return result
    }
}
