// One workspace's fan-out: it observes the workspace's kernel (on the kernel loop), encodes each
// event once, and hands it to every subscribed client session on that session's own loop
// (one hop per loop, not per client). File and workspace events go the same way.
import Synchronization
import TandemKernel
import TandemLoop

/// Where a session lives: its loop and its id in that loop's SessionRegistry.
struct SessionRef: Sendable, Hashable {
    let loop: EventLoop
    let id: UInt64
    static func == (a: SessionRef, b: SessionRef) -> Bool { a.id == b.id && a.loop === b.loop }
    func hash(into h: inout Hasher) { h.combine(id) }
}

/// One encoded event on its way to sessions.
struct Delivery: Sendable {
    var workspace: String
    /// The kernel stream's sequence number (nil for file and workspace events).
    var seq: UInt64?
    var kind: StreamKind
    var json: String
    var outputBytes: Int
    /// Access was withdrawn (member removed: that user; workspace deleted: everyone): sessions
    /// it concerns stop receiving this workspace's events after this one.
    var revoke: Revoke? = nil
}

enum Revoke: Sendable {
    case user(Int64)
    case everyone
}


final class WorkspaceChannel: KernelObserver {
    let workspace: String
    private let subscribers = Mutex<Set<SessionRef>>([])
    /// Who started which execution, to charge its CPU time when it finishes.
    private let requesters = Mutex<[Int: String]>([:])
    private let onFinished: @Sendable (_ requester: String, _ cpuMs: Int64) -> Void
    /// Audit of executions and kernel lifecycle (nil when the audit log is off).
    let executions: ExecutionAudit?

    init(workspace: String, audit: WorkspaceAudit?, onFinished: @escaping @Sendable (String, Int64) -> Void) {
        self.workspace = workspace
        self.onFinished = onFinished
        executions = audit.map { ExecutionAudit(audit: $0, workspace: workspace) }
    }

    func subscribe(_ s: SessionRef) { subscribers.withLock { _ = $0.insert(s) } }
    func unsubscribe(_ s: SessionRef) { subscribers.withLock { _ = $0.remove(s) } }
    var subscriberCount: Int { subscribers.withLock { $0.count } }

    func kernelEvent(_ record: KernelEventRecord) {
        executions?.kernelEvent(record)
        switch record.event {
        case .started(let id, let by):
            requesters.withLock { $0[id] = by }
        case .finished(let o):
            if let by = requesters.withLock({ $0.removeValue(forKey: o.executionID) }) { onFinished(by, o.cpuNanos / 1_000_000) }
        default:
            break
        }
        guard subscriberCount > 0 else { return }
        let (json, kind, bytes) = EventJSON.kernel(record)
        broadcast(Delivery(workspace: workspace, seq: record.seq, kind: kind, json: json, outputBytes: bytes))
    }

    func broadcast(_ d: Delivery) {
        let subs = subscribers.withLock { $0 }
        var byLoop: [ObjectIdentifier: (EventLoop, [UInt64])] = [:]
        for s in subs { byLoop[ObjectIdentifier(s.loop), default: (s.loop, [])].1.append(s.id) }
        for (_, (loop, ids)) in byLoop {
            loop.execute { l in
                let registry = SessionRegistry.on(l)
                for id in ids { registry.sessions[id]?.deliver(d) }
            }
        }
    }
}

/// The client sessions of one loop, by id. Loop-confined.
final class SessionRegistry {
    var sessions: [UInt64: ClientSession] = [:]
    static func on(_ loop: Loop) -> SessionRegistry {
        loop.local("tandem.sessions") { SessionRegistry() }
    }
}

@available(*, unavailable)
extension SessionRegistry: Sendable {}
