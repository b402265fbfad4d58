// The workspace server: what a tandem.v1 session or a REST call may do, checked against the
// caller's role, on top of the store (users, workspaces, members), the file layer and the
// kernels. Sendable and shared by every loop; the mutable parts are the store's (SQLite behind
// a mutex), the kernels' (their loop) and two small registries behind mutexes.
public import Logging
import Synchronization
public import TandemAudit
public import TandemConfig
import TandemCrypto
import TandemFiles
public import TandemKernel
import TandemLoop
import TandemProtocol
import TandemServer
public import TandemStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct WorkspaceSettings: Sendable {
    public var dataRoot: String
    public var templates: String
    /// Local directories that `file://` URLs and paths may be cloned from.
    public var cloneRoots: [String]
    public var allowNetworkClone: Bool
    public var maxFileBytes: Int
    /// The largest WebSocket message the server accepts (limits.maxMessageSize).
    public var maxMessageBytes: Int
    public var clientBufferBytes: Int
    public var sessionSeconds: Int
    public var kernelsPerUser: Int
    public var executionsPerDay: Int
    public var cpuSecondsPerDay: Int
    /// Owner of files the server writes (the kernels' user), when kernels are isolated.
    public var fileOwner: (uid: UInt32, gid: UInt32)?

    public init(_ c: TandemConfiguration, base: String) {
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base + "/" + p }
        dataRoot = resolve(c.server.data)
        templates = resolve(c.workspaces.templates)
        cloneRoots = c.workspaces.cloneRoots.map(resolve)
        allowNetworkClone = c.workspaces.allowNetworkClone
        maxFileBytes = c.workspaces.maxFileBytes
        maxMessageBytes = c.limits.maxMessageSize
        clientBufferBytes = c.workspaces.clientBufferBytes
        sessionSeconds = Int(c.workspaces.sessionHours * 3600)
        kernelsPerUser = c.quotas.kernelsPerUser
        executionsPerDay = c.quotas.executionsPerDay
        cpuSecondsPerDay = c.quotas.cpuSecondsPerDay
        let uid = UInt32(c.kernels.uidBase + kernelContainerUID)
        fileOwner = c.kernels.backend == "oci" ? (uid, uid) : nil
    }
}

/// Counters for logs and, later, metrics.
public final class WorkspaceMetrics: Sendable {
    private let sessions = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    func sessionOpened() { sessions.add(1, ordering: .relaxed) }
    func sessionClosed() { sessions.subtract(1, ordering: .relaxed) }
    func outputDropped(_ n: Int) { dropped.add(n, ordering: .relaxed) }
    public var openSessions: Int { sessions.load(ordering: .relaxed) }
    public var droppedOutputBytes: Int { dropped.load(ordering: .relaxed) }
}

public final class WorkspaceServer: Sendable {
    public let settings: WorkspaceSettings
    public let store: TandemStore
    public let kernels: KernelService
    public let metrics = WorkspaceMetrics()
    /// The audit log, when enabled.
    public let audit: WorkspaceAudit?
    let logger: Logger
    private let channels = Mutex<[String: WorkspaceChannel]>([:])
    private let fileSystems = Mutex<[String: WorkspaceFS]>([:])
    private let sessionIDs = Atomic<UInt64>(0)
    /// Paths changed through the server in the last second (workspace NUL path → when).
    let recentWrites = Mutex<[String: ContinuousClock.Instant]>([:])
    /// Who started each workspace's current kernel (for quotas.kernelsPerUser).
    let kernelStarters = Mutex<[String: String]>([:])
    /// Workspaces over `kernels.diskQuotaMB`: writes are refused until files are deleted.
    let overQuota = Mutex<Set<String>>([])
    let limiter: LoginRateLimiterBox

    public init(settings: WorkspaceSettings, store: TandemStore, kernels: KernelService, audit: WorkspaceAudit? = nil, logger: Logger) throws {
        self.audit = audit
        self.settings = settings
        self.store = store
        self.kernels = kernels
        self.logger = logger
        limiter = LoginRateLimiterBox()
        try FileManager.default.createDirectory(atPath: settings.dataRoot, withIntermediateDirectories: true)
        kernels.setDiskObserver { [weak self] workspace, isOver in
            self?.overQuota.withLock { s in if isOver { s.insert(workspace) } else { s.remove(workspace) } }
        }
    }

    func fileSystemsGet(_ w: String) -> WorkspaceFS? { fileSystems.withLock { $0[w] } }
    func fileSystemsPut(_ w: String, _ f: WorkspaceFS) { fileSystems.withLock { $0[w] = f } }

    func nextSessionID() -> UInt64 { sessionIDs.add(1, ordering: .relaxed).newValue }

    func channel(_ workspace: String) -> WorkspaceChannel {
        channels.withLock { c in
            if let ch = c[workspace] { return ch }
            let store = self.store
            let ch = WorkspaceChannel(workspace: workspace, audit: audit) { requester, cpuMs in
                // Kernel CPU counts toward the requester's daily quota.
                if let u = (try? store.user(named: requester)) ?? nil { try? store.recordUsage(user: u.id, executions: 0, cpuMs: cpuMs) }
            }
            c[workspace] = ch
            return ch
        }
    }

    /// The host directory of a workspace (ids are generated by the store: no path characters).
    public func directory(_ workspace: String) -> String { settings.dataRoot + "/" + workspace }

    func helloJSON(for p: Caller) -> String {
        let k = kernels.settings
        return "{\"type\":\"hello\",\"protocol\":\"\(TandemProtocol.name)\",\"server\":\(JSONText.quote("tandem \(TandemVersion.string)")),"
            + "\"user\":{\"name\":\(JSONText.quote(p.user.name)),\"admin\":\(p.user.isAdmin)},"
            + "\"scope\":\(p.workspaceScope.map(JSONText.quote) ?? "null"),"
            + "\"kernels\":[\(kernels.kernelNames.map(JSONText.quote).joined(separator: ","))],"
            + "\"limits\":{\"maxMessageBytes\":\(settings.maxMessageBytes),\"maxFileBytes\":\(settings.maxFileBytes),"
            + "\"maxCodeBytes\":\(k.maxCodeBytes),\"replayBytes\":\(k.replayBytes),\"clientBufferBytes\":\(settings.clientBufferBytes)}}"
    }

    // MARK: Authorization

    /// The caller's role in `workspace` if it allows `action`. Unknown workspaces and workspaces
    /// the caller is not a member of look the same (`not_found`): ids are not disclosed.
    func authorize(_ p: Caller, workspace: String, action: Action) -> Result<WorkspaceRole, ProtocolError> {
        if let scope = p.workspaceScope, scope != workspace {
            return .failure(.forbidden("this token is limited to workspace \(scope)"))
        }
        if action == .readAudit, p.user.isAdmin, p.workspaceScope == nil { return .success(.owner) }
        guard let m = store.membership(of: p.user, in: workspace), let role = WorkspaceRole(rawValue: m.role.rawValue) else {
            return .failure(.notFound("no workspace \(workspace) for you"))
        }
        guard Permissions.allows(role, action, grants: m.grants) else {
            audit?.record(.requestDenied, p, role: role.rawValue, workspace: workspace, outcome: .denied) { e in
                e.add("action", text: action.rawValue)
            }
            return .failure(.forbidden("a \(role.rawValue) may not \(action.phrase)"))
        }
        return .success(role)
    }

    func checkWritable(_ workspace: String) throws(ProtocolError) {
        if store.workspace(workspace)?.isArchived == true {
            throw ProtocolError("archived", "the workspace is archived (read-only); unarchive it first")
        }
    }

    // MARK: Workspaces

    func listWorkspaces(_ p: Caller, archived: Bool) throws(ProtocolError) -> String {
        var items: [String] = []
        for (w, role) in (try? store.workspaces(for: p.user.id, includeArchived: archived)) ?? [] {
            if let scope = p.workspaceScope, scope != w.id.rawValue { continue }
            items.append(workspaceJSON(w, role: role.rawValue))
        }
        return "{\"workspaces\":[\(items.joined(separator: ","))]}"
    }

    func workspaceJSON(_ w: Workspace, role: String?) -> String {
        "{\"id\":\(JSONText.quote(w.id.rawValue)),\"name\":\(JSONText.quote(w.name)),\"archived\":\(w.isArchived)"
            + (role.map { ",\"role\":\"\($0)\"" } ?? "") + "}"
    }

    func createWorkspace(_ p: Caller, name: String, template: String?, git: String?) async throws(ProtocolError) -> String {
        guard p.workspaceScope == nil else { throw .forbidden("a token limited to one workspace cannot create workspaces") }
        guard template == nil || git == nil else { throw .invalid("give a template or a git URL, not both") }
        let source: WorkspaceSource
        if let template { source = .template(try templateDirectory(template)) }
        else if let git { source = .git(try checkCloneURL(git)) }
        else { source = .empty }
        let w: Workspace
        do {
            w = try store.createWorkspace(name: name, owner: p.user.id, template: template, origin: git)
        } catch {
            throw ProtocolError(error)
        }
        let dir = directory(w.id.rawValue)
        do {
            try await populate(dir, from: source)
        } catch {
            try? store.deleteWorkspace(w.id)
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        logger.info("workspace created", metadata: ["workspace": "\(w.id)", "by": "\(p.user.name)"])
        audit?.record(.workspaceCreate, p, role: "owner", workspace: w.id.rawValue) { [audit] e in
            audit?.identifier(&e, "name", name)
            if let template { e.add("template", text: template) }
            if git != nil { e.add("source", text: "git") }
        }
        return workspaceJSON(w, role: "owner")
    }

    func renameWorkspace(_ workspace: String, name: String, by p: Caller) throws(ProtocolError) -> String {
        do { _ = try store.renameWorkspace(try store.workspaceID(workspace), to: name) } catch let e as StoreError { throw ProtocolError(e) } catch { throw error as! ProtocolError }
        announce(workspace, change: "renamed", by: p)
        audit?.record(.workspaceRename, p, role: "owner", workspace: workspace) { [audit] e in audit?.identifier(&e, "name", name) }
        return "{}"
    }

    func archiveWorkspace(_ workspace: String, archived: Bool, by p: Caller) throws(ProtocolError) -> String {
        let id = try store.workspaceID(workspace)
        do { try store.archiveWorkspace(id, archived: archived) } catch { throw ProtocolError(error) }
        announce(workspace, change: archived ? "archived" : "unarchived", by: p)
        audit?.record(.workspaceArchive, p, role: "owner", workspace: workspace) { e in e.add("archived", archived ? 1 : 0) }
        return "{}"
    }

    func deleteWorkspace(_ workspace: String, by p: Caller) async throws(ProtocolError) {
        let id = try store.workspaceID(workspace)
        do { try store.deleteWorkspace(id) } catch { throw ProtocolError(error) }
        announce(workspace, change: "deleted", by: p, revoke: .everyone)
        audit?.record(.workspaceDelete, p, role: "owner", workspace: workspace)
        stopWatching(workspace)
        await kernels.shutdown(workspace: workspace)
        _ = fileSystems.withLock { $0.removeValue(forKey: workspace) }
        try? FileManager.default.removeItem(atPath: directory(workspace))
        logger.info("workspace deleted", metadata: ["workspace": "\(workspace)", "by": "\(p.user.name)"])
    }

    func members(_ workspace: String) throws(ProtocolError) -> String {
        let id = try store.workspaceID(workspace)
        let list = ((try? store.members(of: id)) ?? []).map { "{\"user\":\(JSONText.quote($0.userName)),\"role\":\"\($0.role.rawValue)\",\"canRun\":\($0.canRun)}" }
        return "{\"members\":[\(list.joined(separator: ","))]}"
    }

    func setMember(_ workspace: String, user: String, role: String, canRun: Bool?, by p: Caller) throws(ProtocolError) -> String {
        guard let r = Role(rawValue: role) else { throw .invalid("role must be owner, editor, viewer or agent") }
        let id = try store.workspaceID(workspace)
        guard let u = (try? store.user(named: user)) ?? nil else { throw .notFound("no user \(user)") }
        let before = store.membership(of: u, in: workspace)
        do {
            _ = try store.setMember(workspace: id, user: u.id, role: r, by: p.user.id)
            if let canRun { try store.setCanRun(workspace: id, user: u.id, canRun) }
        } catch {
            throw ProtocolError(error)
        }
        announce(workspace, change: "members", by: p)
        audit?.record(before == nil ? .memberAdd : .memberRoleChange, p, role: "owner", workspace: workspace) { e in
            e.add("member", text: u.name)
            e.add("role", text: r.rawValue)
            if let before { e.add("previous_role", text: before.role.rawValue) }
            if let canRun { e.add("can_run", canRun ? 1 : 0) }
        }
        return "{}"
    }

    func removeMember(_ workspace: String, user: String, by p: Caller) throws(ProtocolError) -> String {
        let id = try store.workspaceID(workspace)
        guard let u = (try? store.user(named: user)) ?? nil else { throw .notFound("no user \(user)") }
        do { try store.removeMember(workspace: id, user: u.id) } catch { throw ProtocolError(error) }
        announce(workspace, change: "members", by: p, revoke: .user(u.id.rawValue))
        audit?.record(.memberRemove, p, role: "owner", workspace: workspace) { e in e.add("member", text: u.name) }
        return "{}"
    }

    /// `workspace.changed` to everyone who joined the workspace.
    func announce(_ workspace: String, change: String, by p: Caller, revoke: Revoke? = nil) {
        let json = "{\"type\":\"workspace.changed\",\"workspace\":\(JSONText.quote(workspace)),\"change\":\"\(change)\",\"by\":\(JSONText.quote(p.user.name))}"
        channel(workspace).broadcast(Delivery(workspace: workspace, seq: nil, kind: .control, json: json, outputBytes: 0, revoke: revoke))
    }

    // MARK: Audit

    /// Entries of one workspace as JSON objects (AuditJSON lines), oldest first.
    func auditEntries(_ workspace: String, sinceSeconds: Int?, afterSeq: Int?, limit: Int?) throws(ProtocolError) -> String {
        guard let audit else { throw ProtocolError("unavailable", "the audit log is off (audit.enabled)") }
        let n = min(max(1, limit ?? 500), 5000)
        let since = sinceSeconds.map { Int64($0) * 1_000_000 }
        let after = UInt64(max(0, afterSeq ?? 0))
        do {
            let lines = try audit.log.read { r throws(AuditError) in
                try r.entries(workspace: workspace, sinceMicros: since, afterSeq: after, limit: n).map { AuditJSON.line($0) }
            }
            return "{\"entries\":[\(lines.joined(separator: ","))]}"
        } catch {
            throw ProtocolError("audit_error", "\(error)")
        }
    }

    // MARK: Kernels

    func execute(_ workspace: String, code: String, kernel: String?, by p: Caller, role: String = "") async throws(ProtocolError) -> Int {
        try checkQuota(p)
        try await checkKernelQuota(p, workspace: workspace)
        do {
            let id = try await kernels.submit(workspace: workspace, directory: directory(workspace), code: code,
                                              requester: p.user.name, kernel: kernel)
            try? store.recordUsage(user: p.user.id, executions: 1, cpuMs: 0)
            channel(workspace).executions?.submitted(id, code: Array(code.utf8), by: p, role: role,
                                                     kernel: kernel ?? kernels.settings.defaultKernel)
            return id
        } catch {
            throw ProtocolError(error.code.rawValue, error.message)
        }
    }

    /// quotas.kernelsPerUser: an execution that would start a kernel counts the kernels this
    /// user started that still run. A running kernel is shared and never counted again.
    func checkKernelQuota(_ p: Caller, workspace: String) async throws(ProtocolError) {
        func alive(_ s: KernelState?) -> Bool { s == .idle || s == .busy || s == .starting }
        if alive(await kernels.state(workspace: workspace)) { return }
        let mine = kernelStarters.withLock { $0.filter { $0.value == p.user.name && $0.key != workspace }.map(\.key) }
        var running = 0
        for w in mine where alive(await kernels.state(workspace: w)) { running += 1 }
        if running >= settings.kernelsPerUser {
            audit?.record(.quotaDenied, p, workspace: workspace, outcome: .denied) { e in e.add("quota", text: "kernels_per_user") }
            throw ProtocolError("quota_exceeded", "concurrent kernels: \(running) of \(settings.kernelsPerUser) running; stop one (or wait for it to go idle) first")
        }
        kernelStarters.withLock { $0[workspace] = p.user.name }
    }

    func checkQuota(_ p: Caller) throws(ProtocolError) {
        guard let u = try? store.usage(of: p.user.id) else { return }
        if u.executions >= Int64(settings.executionsPerDay) {
            audit?.record(.quotaDenied, p, outcome: .denied) { e in e.add("quota", text: "executions_per_day") }
            throw ProtocolError("quota_exceeded", "executions per day: \(u.executions) of \(settings.executionsPerDay) used")
        }
        if u.cpuMs / 1000 >= Int64(settings.cpuSecondsPerDay) {
            audit?.record(.quotaDenied, p, outcome: .denied) { e in e.add("quota", text: "cpu_seconds_per_day") }
            throw ProtocolError("quota_exceeded", "CPU seconds per day: \(u.cpuMs / 1000) of \(settings.cpuSecondsPerDay) used")
        }
    }
}

extension Action {
    var phrase: String {
        switch self {
        case .read: "read this workspace"
        case .writeFiles: "change files"
        case .runKernel: "run code or control the kernel"
        case .propose: "propose patches"
        case .review: "review patches"
        case .manageWorkspace: "rename or archive the workspace"
        case .manageMembers: "change members"
        case .deleteWorkspace: "delete the workspace"
        case .readAudit: "read the audit log"
        }
    }
}
