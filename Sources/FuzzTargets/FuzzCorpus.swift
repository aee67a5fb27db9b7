import Foundation

/// The files of a corpus folder (recursively, sorted by path, hidden files skipped), or a single file.
///
/// Invariant: `files` holds regular files only, each with its bytes, in a stable order.
public struct FuzzCorpus {
    public let files: [(path: String, bytes: [UInt8])]

    /// Reads every file under `paths` (folders are walked; a missing path holds nothing).
    public init(paths: [String]) {
        var found: [String] = []
        for path in paths {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
            guard isFolder.boolValue else { found.append(path); continue }
            let names = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
            for name in names where !name.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                var sub: ObjCBool = false
                if FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &sub), !sub.boolValue { found.append(path + "/" + name) }
            }
        }
        files = found.sorted().compactMap { path in
            (try? Data(contentsOf: URL(fileURLWithPath: path))).map { (path, [UInt8]($0)) }
        }
    }
}
