// A whole Tandem on 127.0.0.1: store in a temp file, kernels in real containers, the workspace
// server and its routes on an ephemeral port, and tandem.v1 clients. One workspace "shared"
// with four members, one per role, plus a second workspace only alice belongs to.
import Testing
import Logging
import Synchronization
import Dispatch
import TandemClient
import TandemConfig
import TandemCrypto
import TandemKernel
import TandemLoop
import TandemServer
import TandemStore
import TandemAudit
@testable import TandemWorkspace
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

let repoRoot: String = {
    var parts = #filePath.split(separator: "/").map(String.init)
    parts.removeLast(3)
    return "/" + parts.joined(separator: "/")
}()

private let fixtureCounter = Atomic<Int>(0)

final class WorkspaceFixture: Sendable {
    let root: String
    let store: TandemStore
    let kernelGroup: EventLoopGroup
    let kernels: KernelService
    let workspaces: WorkspaceServer
    let server: HTTPServer
    let clients: EventLoopGroup
    /// Tokens by user name: alice (owner), bob (editor), vera (viewer), ada (agent); "alice-a"
    /// is alice's token limited to the shared workspace.
    let tokens: [String: String]
    let audit: AuditLog?
    /// Everything the server logged (at every level).
    let logs: LogCapture
    /// The shared workspace and alice's private one.
    let shared: String
    let privateWS: String

    var port: Int { server.port }
    var url: String { "ws://127.0.0.1:\(port)/ws" }

    static func make(audit auditOn: Bool = false, _ tweak: (inout TandemConfiguration) -> Void = { _ in }) async throws -> WorkspaceFixture {
        let n = fixtureCounter.add(1, ordering: .relaxed).newValue
        let root = "/tmp/tandem-wt-\(getpid())-\(n)"
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        var c = TandemConfiguration()
        c.server.port = 0
        c.server.loops = 2
        c.server.data = root + "/data"
        c.server.web = root
        c.kernels.stateDir = root + "/state"
        c.kernels.cgroupParent = "tandem-wt-\(getpid())-\(n)"
        c.kernels.poolSize = 1
        c.kernels.memoryMB = 256
        c.workspaces.templates = repoRoot + "/config/templates"
        c.workspaces.cloneRoots = [root + "/repos"]
        c.log.level = "critical"
        tweak(&c)
        try c.validate()
        let logs = LogCapture()
        var logger = Logger(label: "workspace-test") { label in CapturingLogHandler(capture: logs) }
        logger.logLevel = .trace
        let store = try TandemStore(path: root + "/data/tandem.db")
        var tokens: [String: String] = [:]
        var users: [String: User] = [:]
        for name in ["alice", "bob", "vera", "ada", "mallory"] {
            let u = try store.createUser(name: name)
            users[name] = u
            tokens[name] = try store.createToken(user: u.id, name: "test").plaintext
        }
        let shared = try store.createWorkspace(name: "Shared", owner: users["alice"]!.id)
        _ = try store.setMember(workspace: shared.id, user: users["bob"]!.id, role: .editor, by: users["alice"]!.id)
        _ = try store.setMember(workspace: shared.id, user: users["vera"]!.id, role: .viewer, by: users["alice"]!.id)
        _ = try store.setMember(workspace: shared.id, user: users["ada"]!.id, role: .agent, by: users["alice"]!.id)
        let priv = try store.createWorkspace(name: "Alice only", owner: users["alice"]!.id)
        tokens["alice-a"] = try store.createToken(user: users["alice"]!.id, name: "scoped", workspace: shared.id).plaintext
        for w in [shared.id.rawValue, priv.id.rawValue] {
            try FileManager.default.createDirectory(atPath: root + "/data/" + w, withIntermediateDirectories: true)
        }
        let kernelGroup = try EventLoopGroup(count: 1, logger: logger)
        let kernels = try await KernelService.start(settings: c.kernels, base: repoRoot, loop: kernelGroup.loops[0], logger: logger)
        let auditLog: AuditLog? = auditOn ? try AuditLog(.standard(dataDirectory: root + "/data")) : nil
        let recorder = auditLog.map { WorkspaceAudit(log: $0, hashIdentifiers: c.audit.hashIdentifiers) }
        let ws = try WorkspaceServer(settings: WorkspaceSettings(c, base: repoRoot), store: store, kernels: kernels, audit: recorder, logger: logger)
        var routes = TandemServerBuilder.baseRoutes(c)
        ws.install(into: &routes, handshake: TandemServerBuilder.webSocketHandshake(c))
        let server = try TandemServerBuilder.start(c, routes: routes, logger: logger)
        let clients = try EventLoopGroup(count: 1, logger: logger)
        return WorkspaceFixture(root: root, store: store, kernelGroup: kernelGroup, kernels: kernels, workspaces: ws, server: server,
                                clients: clients, tokens: tokens, shared: shared.id.rawValue, privateWS: priv.id.rawValue,
                                audit: auditLog, logs: logs)
    }

    private init(root: String, store: TandemStore, kernelGroup: EventLoopGroup, kernels: KernelService, workspaces: WorkspaceServer,
                 server: HTTPServer, clients: EventLoopGroup, tokens: [String: String], shared: String, privateWS: String,
                 audit: AuditLog?, logs: LogCapture) {
        self.audit = audit
        self.logs = logs
        self.root = root
        self.store = store
        self.kernelGroup = kernelGroup
        self.kernels = kernels
        self.workspaces = workspaces
        self.server = server
        self.clients = clients
        self.tokens = tokens
        self.shared = shared
        self.privateWS = privateWS
    }

    /// A connected client for `user` (a key of `tokens`), with the server's own origin.
    func client(_ user: String, origin: String? = nil, headers: [(String, String)]? = nil) async throws(ClientError) -> TandemClient {
        let h = headers ?? [("Authorization", "Bearer \(tokens[user]!)"), ("Origin", origin ?? "http://127.0.0.1:\(port)")]
        return try await TandemClient.connect(url: url, headers: h, loop: clients.loops[0])
    }

    func close() async {
        server.shutdown(graceNanos: 500_000_000)
        await kernels.shutdownAll()
        kernelGroup.shutdown()
        clients.shutdown()
        try? audit?.close()
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        if let layout = CgroupLayout.parse(mountinfo: mountinfo) {
            for dir in layout.allDirectories(relative: kernels.settings.cgroupParent) { rmdir(dir) }
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}

extension JSONValue {
    static func s(_ v: String) -> JSONValue { .string(v) }
}

/// Log lines, kept for scanning.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = metadata.merging(explicit ?? [:]) { $1 }
        capture.add("\(level) \(message) \(all)")
    }
}

/// Raw HTTP for REST tests, on a thread of its own: blocking a thread of Swift's cooperative
/// pool (two on this machine) would stall every other test's tasks.
func http(_ port: Int, _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) async -> (status: Int, headers: String, body: [UInt8]) {
    await withCheckedContinuation { cont in
        DispatchQueue.global().async { cont.resume(returning: httpBlocking(port, method, path, headers: headers, body: body)) }
    }
}

func httpBlocking(_ port: Int, _ method: String, _ path: String, headers: [(String, String)], body: [UInt8]) -> (status: Int, headers: String, body: [UInt8]) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var tv = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
    guard ok else { return (0, "", []) }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    head += "\r\n"
    let req = Array(head.utf8) + body
    _ = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    guard let sep = out.firstRange(of: [13, 10, 13, 10]) else { return (0, String(decoding: out, as: UTF8.self), []) }
    let headText = String(decoding: out[..<sep.lowerBound], as: UTF8.self)
    let status = Int(headText.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, headText, Array(out[sep.upperBound...]))
}
