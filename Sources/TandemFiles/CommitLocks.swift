// Serializes the commit step of writes this process makes to the same file.
import Synchronization

/// Striped locks for the last step of ``WorkspaceFS/write(_:_:expectedSHA256:createOnly:maxBytes:)``
/// (the rename, or exchange + verification + undo), keyed by the parent directory's inode and
/// the name, process-wide (so two `WorkspaceFS` for the same directory share them).
///
/// Why: the compare-and-swap undo ("is the target still ours? then swap back") is two system
/// calls. Two server writers interleaving there could swap a committed write back out and
/// delete it. Holding the stripe makes each commit atomic with respect to every other write of
/// this process; only a kernel writing in the microseconds between those two calls remains,
/// and then what is lost is a write that had already been replaced by a conflicting one.
final class CommitLocks: Sendable {
    static let shared = CommitLocks()

    private final class Stripe: Sendable {
        let mutex = Mutex<Void>(())
    }

    private let stripes: [Stripe] = (0..<64).map { _ in Stripe() }

    func withLock<R>(dev: UInt64, ino: UInt64, name: String, _ body: () throws(FileError) -> R) throws(FileError) -> R {
        var h = Hasher()
        h.combine(dev)
        h.combine(ino)
        h.combine(name)
        let stripe = stripes[Int(UInt(bitPattern: h.finalize()) % UInt(stripes.count))]
        // Mutex.withLock's `sending` result does not fit a generic R here; carry it out by hand.
        var result: Result<R, FileError>?
        stripe.mutex.withLock { _ in
            do throws(FileError) {
                result = .success(try body())
            } catch {
                result = .failure(error)
            }
        }
        return try result!.get()
    }
}
