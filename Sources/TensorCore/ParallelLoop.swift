import Dispatch

/// Runs a loop body over `0..<count` split into contiguous ranges on several threads.
///
/// Invariant the caller keeps: `body` writes only to memory that belongs to its own range, so ranges
/// never race; results therefore do not depend on the thread count or on scheduling. With
/// `threadCount <= 1` the body runs once, on the calling thread, over the whole range.
public enum ParallelLoop {
    public static func forEachRange(count: Int, threadCount: Int, _ body: (Range<Int>) -> Void) {
        let workers = max(1, min(threadCount, count))
        if workers == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunks = min(count, workers * 8)   // several chunks per worker balance uneven work
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                box.value((count * c / chunks)..<(count * (c + 1) / chunks))
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure when the caller guarantees data-race freedom by other
/// means (disjoint ranges in `ParallelLoop`).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
