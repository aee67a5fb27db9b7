import Dispatch
import Foundation
import CheckpointFormats
import Reports

/// Measures `compress`'s report records on one background thread, a tensor at a time, so that one
/// tensor's measurement overlaps the next tensor's compression (used at `--threads 2` and more; at
/// one thread every record is measured on the calling thread, at once).
///
/// Invariants: at most one measurement waits or runs (so at most one extra tensor result is held in
/// memory); records land at their tensor's position, so the report does not depend on scheduling;
/// `records()` throws the problem of the earliest position, as measuring in order would.
final class BackgroundRecorder: @unchecked Sendable {
    private let background: Bool
    private let queue = DispatchQueue(label: "modelpress.report-records")
    private let slot = DispatchSemaphore(value: 1)
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var results: [Result<TensorRecord, any Error>?]

    init(count: Int, background: Bool) {
        self.background = background
        results = Array(repeating: nil, count: count)
    }

    /// Measures the record of position `i` with `work`, then runs `after` (giving pages back).
    func measure(_ i: Int, _ work: @escaping @Sendable () throws -> TensorRecord, after: @escaping @Sendable () -> Void) {
        guard background else {
            store(i, Result { try work() })
            after()
            return
        }
        slot.wait()
        queue.async(group: group) { [self] in
            store(i, Result { try work() })
            after()
            slot.signal()
        }
    }

    /// Every record, once all measurements are done.
    func records() throws -> [TensorRecord] {
        group.wait()
        return try results.map { try $0!.get() }
    }

    private func store(_ i: Int, _ result: Result<TensorRecord, any Error>) {
        lock.lock()
        results[i] = result
        lock.unlock()
    }
}
