// HTTP side of the workspace server: the tandem.v1 WebSocket at /ws (authenticated on the
// upgrade: session cookie or bearer token; the Origin allowlist is checked by the handshake),
// token → cookie login, and the REST API for scripts (docs/protocol.md, "REST").
import TandemAudit
import TandemCrypto
import TandemHTTP
import TandemKernel
import TandemLoop
import TandemProtocol
public import TandemServer
import TandemStore
public import TandemWebSocket
import Foundation

let sessionCookie = "tandem_session"

extension WorkspaceServer {
    /// Adds /ws, /api/v1/login|logout|me|execute|templates and the file routes.
    public func install(into routes: inout Routes, handshake base: WebSocketServerHandshake.Configuration) {
        var hs = base
        hs.subprotocols = [TandemProtocol.name]
        hs.requireSubprotocol = true
        routes.webSockets["/ws"] = WebSocketRoute(handshake: hs, checkOrigin: true) { [self] request, _ in
            guard let p = principal(for: request, allowBearer: true) else { return nil }
            return ClientSession(id: nextSessionID(), principal: p, server: self)
        }
        routes.add("/api/v1/login", methods: ["POST"]) { [self] request, _, responder in responder.respond(login(request)) }
        routes.add("/api/v1/logout", methods: ["POST"]) { [self] request, _, responder in responder.respond(logout(request)) }
        routes.add("/api/v1/me") { [self] request, _, responder in
            guard let p = principal(for: request, allowBearer: true) else { return responder.respond(unauthorized()) }
            responder.respond(.json(.ok, "{\"user\":{\"name\":\(JSONText.quote(p.user.name)),\"admin\":\(p.user.isAdmin)},\"scope\":\(p.workspaceScope.map(JSONText.quote) ?? "null")}"))
        }
        routes.add("/api/v1/templates") { [self] request, _, responder in
            guard principal(for: request, allowBearer: true) != nil else { return responder.respond(unauthorized()) }
            responder.respond(.json(.ok, "{\"templates\":[\(templateNames().map(JSONText.quote).joined(separator: ","))]}"))
        }
        routes.add("/api/v1/execute", methods: ["POST"]) { [self] request, loop, responder in
            execute(request, responder: Deferred(loop: loop, responder: responder))
        }
        routes.addPrefix("/api/v1/workspaces/", methods: ["GET", "HEAD", "PUT", "DELETE"]) { [self] request, _, responder in
            responder.respond(files(request))
        }
    }

    // MARK: Authentication

    /// The caller, from the session cookie or (for scripts and agents) `Authorization: Bearer`.
    /// Failed bearer attempts count toward the per-address login limit.
    func principal(for request: HTTPRequest, allowBearer: Bool) -> Caller? {
        if let cookie = cookieValue(request.head.headers, sessionCookie), let c = store.caller(cookie: cookie) {
            return c
        }
        guard allowBearer, let auth = request.head.headers["Authorization"], auth.lowercased().hasPrefix("bearer ") else { return nil }
        let address = peerHost(request.peerAddress)
        guard limiter.allowed(address: address, user: nil) else { return nil }
        let token = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        guard let p = store.caller(token: token) else {
            limiter.failed(address: address, user: nil)
            audit?.record(.authLoginFailed, AuditActor.anonymous(address), outcome: .denied) { e in e.add("method", text: "bearer") }
            return nil
        }
        return p
    }

    private func unauthorized() -> HTTPResponse {
        .error(.unauthorized, code: "unauthorized", message: "sign in: a session cookie or Authorization: Bearer <token>")
    }

    /// POST {"token": "...", "user": optional} → a session cookie (HttpOnly, SameSite=Strict, Secure under TLS).
    func login(_ request: HTTPRequest) -> HTTPResponse {
        let address = peerHost(request.peerAddress)
        guard let obj = jsonObject(request.body), case .string(let token)? = obj["token"] else {
            return .error(.badRequest, code: "bad_request", message: "send {\"token\": \"...\"}")
        }
        // With "user", failures also count against that user name (and the token must be theirs).
        let userHint: String? = if case .string(let u)? = obj["user"] { u } else { nil }
        guard limiter.allowed(address: address, user: userHint) else {
            return .error(.tooManyRequests, code: "rate_limited", message: "too many failed sign-ins; try again later")
        }
        guard let p = store.caller(token: token), p.workspaceScope == nil, userHint == nil || userHint == p.user.name else {
            limiter.failed(address: address, user: userHint)
            logger.notice("sign-in failed", metadata: ["peer": "\(address)"])
            audit?.record(.authLoginFailed, AuditActor.anonymous(address), outcome: .denied) { e in e.add("method", text: "token") }
            return .error(.unauthorized, code: "unauthorized", message: "unknown, revoked or expired token (or one limited to a workspace)")
        }
        limiter.succeeded(address: address, user: userHint)
        let cookie: String
        do { cookie = try store.createSession(user: p.user.id, ttl: Int64(settings.sessionSeconds)) } catch {
            return .error(.internalServerError, code: "internal", message: "cannot create a session")
        }
        var h = HTTPHeaders()
        h.add("Set-Cookie", "\(sessionCookie)=\(cookie); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(settings.sessionSeconds)" + (request.isTLS ? "; Secure" : ""))
        h.add("Cache-Control", "no-store")
        logger.info("signed in", metadata: ["user": "\(p.user.name)", "peer": "\(address)"])
        audit?.record(.authLoginSucceeded, p) { e in
            e.add("method", text: "token")
            e.add("peer", text: address)
        }
        return .json(.ok, "{\"user\":{\"name\":\(JSONText.quote(p.user.name))}}", headers: h)
    }

    func logout(_ request: HTTPRequest) -> HTTPResponse {
        if let cookie = cookieValue(request.head.headers, sessionCookie) {
            if let c = store.caller(cookie: cookie) { audit?.record(.authLogout, c) }
            _ = try? store.deleteSession(cookie)
        }
        var h = HTTPHeaders()
        h.add("Set-Cookie", "\(sessionCookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
        return .json(.ok, "{}", headers: h)
    }

    // MARK: REST

    /// POST /api/v1/execute {"language"|"kernel", "code", "timeout"} → a one-shot run.
    func execute(_ request: HTTPRequest, responder: Deferred) {
        guard let p = principal(for: request, allowBearer: true) else { return responder.respond(unauthorized()) }
        guard p.workspaceScope == nil else {
            return responder.respond(.error(.forbidden, code: "forbidden", message: "a token limited to a workspace cannot run one-shot code"))
        }
        guard let obj = jsonObject(request.body), case .string(let code)? = obj["code"] else {
            return responder.respond(.error(.badRequest, code: "bad_request", message: "send {\"code\": \"...\", \"language\": \"python3\", \"timeout\": 10}"))
        }
        for key in obj.keys where !["code", "language", "kernel", "timeout"].contains(key) {
            return responder.respond(.error(.badRequest, code: "unknown_field", message: "unknown field \(key)"))
        }
        var kernel: String?
        if case .string(let k)? = obj["kernel"] ?? obj["language"] { kernel = k == "python" ? "python3" : k }
        var timeout = 30.0
        if case .number(let t)? = obj["timeout"] { timeout = t }
        do throws(ProtocolError) { try checkQuota(p) } catch {
            return responder.respond(.error(.tooManyRequests, code: error.code, message: error.message))
        }
        let kernels = self.kernels, store = self.store, audit = self.audit
        Task {
            do throws(KernelError) {
                let t = try await kernels.run(kernel: kernel, code: code, timeout: max(0.1, timeout))
                let o = t.outcome
                audit?.record(.runOneShot, p, outcome: o.status == .ok ? .success : .failure) { e in
                    e.add("kernel", text: kernel ?? kernels.settings.defaultKernel)
                    e.add("status", text: o.status.rawValue)
                    e.add("duration_us", Int64(o.wallNanos / 1000))
                    e.add("cpu_us", o.cpuNanos / 1000)
                    e.add("peak_rss_bytes", o.peakMemoryBytes)
                    if let audit {
                        e.addDigest("code", of: Array(code.utf8), key: audit.key)
                        e.addDigest("output", of: Array((t.stdout + t.stderr).utf8), key: audit.key)
                    }
                }
                try? store.recordUsage(user: p.user.id, executions: 1, cpuMs: o.cpuNanos / 1_000_000)
                let exit: Int = switch o.status {
                case .ok: 0
                case .timeout: 124
                case .died: 137
                case .interrupted: 130
                default: 1
                }
                let error = o.error.map { "{\"name\":\(JSONText.quote($0.name)),\"message\":\(JSONText.quote($0.message))}" } ?? "null"
                responder.respond(.json(.ok, "{\"status\":\"\(o.status.rawValue)\",\"exitCode\":\(exit),\"stdout\":\(JSONText.quote(t.stdout)),\"stderr\":\(JSONText.quote(t.stderr)),\"result\":\(o.result.map(JSONText.quote) ?? "null"),\"error\":\(error),\"wallMs\":\(EventJSON.ms(Int64(o.wallNanos))),\"cpuMs\":\(EventJSON.ms(o.cpuNanos)),\"peakMemory\":\(o.peakMemoryBytes)}"))
            } catch {
                let status: HTTPStatus = error.code == .hostLimit ? .serviceUnavailable : (error.code == .unknownKernel ? .badRequest : .internalServerError)
                responder.respond(.error(status, code: error.code.rawValue, message: error.message))
            }
        }
    }

    /// GET/PUT/DELETE /api/v1/workspaces/{id}/files/{path}; GET …/files/ lists the tree.
    func files(_ request: HTTPRequest) -> HTTPResponse {
        guard let p = principal(for: request, allowBearer: true) else { return unauthorized() }
        let rest = request.path.dropFirst("/api/v1/workspaces/".count)
        let parts = rest.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1] == "files" else {
            return .error(.notFound, code: "not_found", message: "use /api/v1/workspaces/{id}/files/{path}")
        }
        let workspace = String(parts[0])
        guard let path = percentDecode(parts.count == 3 ? parts[2] : "") else {
            return .error(.badRequest, code: "invalid_path", message: "bad percent-encoding")
        }
        let action: Action = (request.method == "GET" || request.method == "HEAD") ? .read : .writeFiles
        if case .failure(let e) = authorize(p, workspace: workspace, action: action) { return httpError(e) }
        do throws(ProtocolError) {
            switch request.method {
            case "GET", "HEAD":
                if path.isEmpty || path.hasSuffix("/") {
                    return .json(.ok, try fileTree(workspace, path: path))
                }
                let content = try rawFile(workspace, path: path)
                var h = HTTPHeaders()
                h.set("Content-Type", "application/octet-stream")
                h.set("ETag", "\"\(content.sha256)\"")
                h.set("Content-Disposition", "attachment")
                return HTTPResponse(status: .ok, headers: h, body: request.method == "HEAD" ? [] : content.bytes)
            case "PUT":
                try checkWritable(workspace)
                var base: String?
                if let m = request.head.headers["If-Match"] { base = m.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
                let create = request.head.headers["If-None-Match"] == "*"
                do {
                    return .json(.ok, try writeFile(workspace, path: path, bytes: request.body, baseSHA256: base, createOnly: create, by: p))
                } catch where (base != nil && error.code == "conflict") || (create && error.code == "exists") {
                    return .error(HTTPStatus(412), code: error.code, message: error.message)
                }
            case "DELETE":
                try checkWritable(workspace)
                return .json(.ok, try deleteFile(workspace, path: path, recursive: false, by: p))
            default:
                return .error(.methodNotAllowed, code: "method_not_allowed", message: "GET, PUT or DELETE")
            }
        } catch {
            return httpError(error)
        }
    }

    func httpError(_ e: ProtocolError) -> HTTPResponse {
        let status: HTTPStatus = switch e.code {
        case "not_found": .notFound
        case "forbidden", "escape": .forbidden
        case "conflict", "exists", "archived": HTTPStatus(409)
        case "file_too_large": .contentTooLarge
        case "quota_exceeded", "rate_limited": .tooManyRequests
        case "workspace_quota_exceeded": .contentTooLarge
        case "unauthorized": .unauthorized
        case "io", "database", "internal": .internalServerError
        case "busy", "kernel_unavailable", "kernel_limit_reached", "shutting_down", "kernel_start_failed": .serviceUnavailable
        default: .badRequest
        }
        return .error(status, code: e.code, message: e.message)
    }
}

/// Answers an HTTP request later, from any thread: hops back to the request's loop.
struct Deferred: Sendable {
    private let loop: EventLoop
    private let id: UInt64

    init(loop: Loop, responder: HTTPResponder) {
        self.loop = loop.handle
        id = PendingResponders.on(loop).add(responder)
    }

    func respond(_ response: HTTPResponse) {
        let id = self.id
        loop.execute { l in PendingResponders.on(l).take(id)?.respond(response) }
    }
}

final class PendingResponders {
    private var next: UInt64 = 0
    private var responders: [UInt64: HTTPResponder] = [:]
    static func on(_ loop: Loop) -> PendingResponders {
        loop.local("tandem.deferred") { PendingResponders() }
    }
    func add(_ r: HTTPResponder) -> UInt64 {
        next += 1
        responders[next] = r
        return next
    }
    func take(_ id: UInt64) -> HTTPResponder? { responders.removeValue(forKey: id) }
}

@available(*, unavailable)
extension PendingResponders: Sendable {}

func cookieValue(_ headers: HTTPHeaders, _ name: String) -> String? {
    for line in headers.values("Cookie") {
        for part in line.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name {
                return String(kv[1]).trimmingCharacters(in: .whitespaces)
            }
        }
    }
    return nil
}

/// "1.2.3.4:5678" or "[::1]:5678" → the address without the port.
func peerHost(_ peer: String) -> String {
    if peer.hasPrefix("["), let end = peer.firstIndex(of: "]") { return String(peer[peer.index(after: peer.startIndex)..<end]) }
    if let colon = peer.lastIndex(of: ":"), peer.filter({ $0 == ":" }).count == 1 { return String(peer[..<colon]) }
    return peer
}

func jsonObject(_ bytes: [UInt8]) -> [String: JSONValue]? {
    guard case .object(let o)? = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else { return nil }
    return o
}
