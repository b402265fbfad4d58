// What `tandem serve` runs besides the HTTP server: the metadata store, the kernels on their own
// loop, and the workspace server that ties them to tandem.v1.
import Dispatch
import Foundation
import Logging
import TandemAudit
import TandemConfig
import TandemKernel
import TandemLoop
import TandemServer
import TandemStore
import TandemWorkspace
#if canImport(Glibc)
import Glibc
#endif

struct WorkspaceApp {
    let store: TandemStore
    let kernelLoop: EventLoopGroup
    let kernels: KernelService
    let workspaces: WorkspaceServer
    let audit: AuditLog?
    /// Set on the first start (no users yet): the new administrator's token, shown once.
    let firstAdminToken: String?

    static func start(_ c: TandemConfiguration, base: String, logger: Logger) throws -> WorkspaceApp {
        let settings = WorkspaceSettings(c, base: base)
        let store = try openStore(dataRoot: settings.dataRoot)
        var firstToken: String?
        if try store.userCount() == 0 {
            let admin = try store.createUser(name: "admin", displayName: "Administrator", isAdmin: true)
            firstToken = try store.createToken(user: admin.id, name: "first start").plaintext
        }
        let group = try EventLoopGroup(count: 1, logger: logger)
        let kernelSettings = c.kernels
        let kernels: KernelService
        do {
            kernels = try blockOn { try await KernelService.start(settings: kernelSettings, base: base, loop: group.loops[0], logger: logger) }
        } catch {
            group.shutdown()
            logger.critical("kernels cannot run on this host", metadata: ["error": "\(error)"])
            throw error
        }
        var audit: AuditLog?
        if c.audit.enabled {
            do {
                // `<data>/audit`, where `tandem audit …` looks (docs/audit.md).
                audit = try AuditLog(.standard(dataDirectory: settings.dataRoot, contentKeyEnvironmentVariable: "TANDEM_AUDIT_KEY"))
            } catch {
                group.shutdown()
                logger.critical("the audit log cannot be opened", metadata: ["error": "\(error)"])
                throw error
            }
        }
        if let audit, c.audit.retentionDays > 0 {
            let cutoff = Int64(time(nil) - time_t(c.audit.retentionDays * 86_400)) * 1_000_000
            if let mark = try? audit.prune(olderThan: cutoff) {
                logger.info("audit entries pruned", metadata: ["through": "\(mark.prunedThrough)", "retentionDays": "\(c.audit.retentionDays)"])
            }
        }
        let recorder = audit.map { WorkspaceAudit(log: $0, hashIdentifiers: c.audit.hashIdentifiers) }
        let workspaces = try WorkspaceServer(settings: settings, store: store, kernels: kernels, audit: recorder, logger: logger)
        // Configuration changes show as a new digest of the effective configuration at start.
        recorder?.record(AuditAction(rawValue: "server.start")!, AuditActor(id: "server", role: "system")) { e in
            e.add("version", text: TandemVersion.string)
            if let recorder { e.addDigest("config", of: Array(c.renderTOML().utf8), key: recorder.log.contentKey) }
        }
        if firstToken != nil {
            recorder?.record(AuditAction(rawValue: "user.create")!, AuditActor(id: "server", role: "system")) { e in
                e.add("user", text: "admin")
                e.add("admin", 1)
            }
        }
        return WorkspaceApp(store: store, kernelLoop: group, kernels: kernels, workspaces: workspaces, audit: audit, firstAdminToken: firstToken)
    }

    /// Stops every kernel (removing their containers) and the kernel loop.
    func stop() {
        let kernels = self.kernels
        _ = try? blockOn { await kernels.shutdownAll() }
        kernelLoop.shutdown()
        try? audit?.close()
    }
}

/// The store lives at `<data>/.tandem/tandem.db` (the directory is private to the server).
func openStore(dataRoot: String) throws -> TandemStore {
    let dir = dataRoot + "/.tandem"
    try FileManager.default.createDirectory(atPath: dataRoot, withIntermediateDirectories: true)
    mkdir(dir, 0o700)
    return try TandemStore(path: dir + "/tandem.db")
}
