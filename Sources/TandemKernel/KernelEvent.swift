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
}

public struct KernelEventRecord: Sendable, Equatable {
    public var workspace: String
    public var seq: UInt64
    public var event: KernelEvent
}

/// Receives a kernel's events. Called on the kernel loop: implementations hop to their own
/// thread or loop and must not block.
public protocol KernelObserver: AnyObject, Sendable {
    func kernelEvent(_ record: KernelEventRecord)
}
