// What the workspace server tells the audit log: who did what, when, to which workspace, with
// content only ever as keyed digests (docs/audit.md). Appends queue to the log's writer thread;
// only a full queue makes the audited action wait (backpressure, never a silent drop).
public import TandemAudit
import TandemKernel
import Synchronization

public final class WorkspaceAudit: Sendable {
    public let log: AuditLog
    /// `audit.hashIdentifiers`: paths and workspace names as digests.
    let hashIdentifiers: Bool

    public init(log: AuditLog, hashIdentifiers: Bool) {
        self.log = log
        self.hashIdentifiers = hashIdentifiers
    }

    var key: AuditContentKey { log.contentKey }

    public func record(_ action: AuditAction, _ actor: AuditActor, workspace: String = "", outcome: AuditOutcome = .success,
                       _ fill: (inout AuditEvent) -> Void = { _ in }) {
        var e = AuditEvent(action, actor: actor, workspace: workspace, outcome: outcome)
        fill(&e)
        _ = try? log.append(e)
    }

    func record(_ action: AuditAction, _ caller: Caller, role: String = "", workspace: String = "", outcome: AuditOutcome = .success,
                _ fill: (inout AuditEvent) -> Void = { _ in }) {
        record(action, AuditActor(id: caller.user.name, role: role.isEmpty ? (caller.user.isAdmin ? "admin" : "user") : role),
               workspace: workspace, outcome: outcome, fill)
    }

    func identifier(_ e: inout AuditEvent, _ name: String, _ value: String) {
        e.addIdentifier(name, value, hashed: hashIdentifiers, key: key)
    }
}

extension AuditAction {
    static let workspaceArchive = AuditAction(rawValue: "workspace.archive")!
    static let requestDenied = AuditAction(rawValue: "request.denied")!
}

/// Per-execution audit state on the kernel loop's side: the output digest grows with every
/// chunk; the entry is written once both the kernel's `finished` and the submitter's code
/// digest are known (they arrive in either order).
final class ExecutionAudit: Sendable {
    struct Submitted: Sendable {
        var code: AuditHash
        var bytes: Int
        var role: String
        var kernel: String
    }
    struct Running {
        var digester: AuditDigester
    }
    private struct State: ~Copyable {
        var running: [Int: Running] = [:]
        var submitted: [Int: Submitted] = [:]
        var finished: [Int: (ExecutionOutcome, AuditHash, Int, String)] = [:]
        var starting = false
    }
    private let state = Mutex<State>(State())
    let audit: WorkspaceAudit
    let workspace: String

    init(audit: WorkspaceAudit, workspace: String) {
        self.audit = audit
        self.workspace = workspace
    }

    func kernelEvent(_ r: KernelEventRecord) {
        switch r.event {
        case .started(let id, let by):
            noteRequester(id, by)
            let key = audit.key
            state.withLock { $0.running[id] = Running(digester: key.streamingDigest()) }
        case .output(let id?, _, let text):
            state.withLock { s in s.running[id]?.digester.update(text.utf8) }
        case .finished(let o):
            let done: (AuditHash, Int)? = state.withLock { s in
                guard let run = s.running.removeValue(forKey: o.executionID) else { return nil }
                return (run.digester.finish(), run.digester.count)
            }
            let output = done ?? (audit.key.digest([UInt8]()), 0)
            complete(o.executionID) { s in
                s.finished[o.executionID] = (o, output.0, output.1, "")
            }
        case .state(let st, let reason):
            let wasStarting = state.withLock { s -> Bool in
                let w = s.starting
                s.starting = st == .starting
                return w
            }
            switch st {
            case .idle where wasStarting:
                audit.record(.kernelStart, AuditActor(id: "kernel", role: "system"), workspace: workspace)
            case .dead:
                let oom = reason?.contains("out of memory") == true
                audit.record(oom ? .kernelOOMKill : .kernelStop, AuditActor(id: "kernel", role: "system"), workspace: workspace,
                             outcome: .failure) { e in if let reason { e.add("reason", text: String(reason.prefix(120))) } }
            case .stopped:
                audit.record(.kernelStop, AuditActor(id: "kernel", role: "system"), workspace: workspace) { e in
                    if let reason { e.add("reason", text: String(reason.prefix(120))) }
                }
            default:
                break
            }
        case .action(let name, let by):
            audit.record(name == "restart" ? .kernelRestart : .kernelInterrupt, AuditActor(id: by, role: "member"), workspace: workspace)
        default:
            break
        }
    }

    /// The submitter's side: the code's digest, once `kernel.execute` was accepted.
    func submitted(_ id: Int, code: [UInt8], by caller: Caller, role: String, kernel: String) {
        let s = Submitted(code: audit.key.digest(code), bytes: code.count, role: role, kernel: kernel)
        complete(id) { st in st.submitted[id] = s }
        _ = caller
    }

    private func complete(_ id: Int, _ add: (inout State) -> Void) {
        let both: (Submitted, (ExecutionOutcome, AuditHash, Int, String))? = state.withLock { s in
            add(&s)
            guard let sub = s.submitted[id], let fin = s.finished[id] else { return nil }
            s.submitted[id] = nil
            s.finished[id] = nil
            return (sub, fin)
        }
        guard let (sub, fin) = both else { return }
        let (o, output, outputBytes, _) = fin
        let outcome: AuditOutcome = o.status == .ok ? .success : .failure
        audit.record(.kernelExecute, AuditActor(id: requesterName(id), role: sub.role), workspace: workspace, outcome: outcome) { e in
            e.add("kernel", text: sub.kernel)
            e.add("status", text: o.status.rawValue)
            e.add("duration_us", Int64(o.wallNanos / 1000))
            e.add("cpu_us", o.cpuNanos / 1000)
            e.add("peak_rss_bytes", o.peakMemoryBytes)
            e.add("code_bytes", sub.bytes)
            e.add("output_bytes", outputBytes)
            e.addDigest("code", sub.code, keyID: audit.key.id)
            e.addDigest("output", output, keyID: audit.key.id)
        }
    }

    /// Who asked for each execution (set by the channel from `kernel.started`).
    private let requesters = Mutex<[Int: String]>([:])
    func noteRequester(_ id: Int, _ name: String) { requesters.withLock { $0[id] = name } }
    private func requesterName(_ id: Int) -> String { requesters.withLock { $0.removeValue(forKey: id) } ?? "unknown" }
}
