// What a workspace's kernel tells the people attached to it. Every event carries the workspace
// and a sequence number that increases by one per event of that workspace's kernel, so a
// subscriber can tell when it missed some (and the replay buffer can fill the gap).

/// The lifecycle of a workspace's kernel.
public enum KernelState: String, Sendable {
    case starting, idle, busy
    /// Died (OOM kill, crash); the next execution or a restart starts a fresh one.
    case dead
    /// Shut down (by request, idle timeout or server stop).
    case stopped
}

/// How one execution went, with its resource use.
public struct ExecutionOutcome: Sendable, Equatable {
    public var executionID: Int
    public var status: ExecutionStatus
    /// repr of the last expression's value, if any.
    public var result: String?
    public var error: ExecutionError?
    public var wallNanos: UInt64
    public var cpuNanos: Int64
    public var peakMemoryBytes: Int64
}

public enum KernelEvent: Sendable, Equatable {
    case state(KernelState, reason: String?)
    case started(executionID: Int, requester: String)
    /// Output, in order within each stream. `executionID` is nil for output that arrives while
    /// nothing runs (a background thread of an earlier cell).
    case output(executionID: Int?, stream: OutputStream, text: String)
    case finished(ExecutionOutcome)
    case stats(KernelStats)
    /// Something worth showing that is not an error of a request: pids limit hit, disk quota.
    case notice(code: String, message: String)
    /// Someone acted on the kernel (interrupt, restart): everyone is told who.
    case action(name: String, by: String)
}

public struct KernelEventRecord: Sendable, Equatable {
    public var workspace: String
    public var seq: UInt64
    public var event: KernelEvent
}

/// Events a late joiner missed that the replay buffer no longer holds.
public struct ReplayGap: Sendable, Equatable {
    /// The first and last sequence numbers lost.
    public var fromSeq: UInt64
    public var toSeq: UInt64
    /// Output bytes among them (`atLeast` when even the index of evicted events is exhausted).
    public var bytes: Int
    public var atLeast: Bool
}

/// Receives a kernel's events. Called on the kernel loop: implementations hop to their own
/// thread or loop and must not block.
public protocol KernelObserver: AnyObject, Sendable {
    func kernelEvent(_ record: KernelEventRecord)
}
