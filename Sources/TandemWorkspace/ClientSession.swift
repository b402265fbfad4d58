// One tandem.v1 WebSocket: an authenticated person or agent. It checks every request against
// the sender's role in the workspace it names, answers each with exactly one `ok` or `error`,
// and receives the events of the workspaces it joined, with the backpressure policy of
// docs/protocol.md: control events are never dropped, kernel output is buffered up to a bound
// and then replaced by a `kernel.gap` for this client only, stats keep only the latest.
// Loop-confined: it lives on its connection's loop.
import TandemCrypto
import TandemKernel
import TandemLoop
import TandemProtocol
import TandemServer
import TandemStore
import TandemWebSocket

final class ClientSession: WebSocketEndpoint {
    let id: UInt64
    let principal: Caller
    let server: WorkspaceServer
    private weak var ws: WebSocketConnection?
    private var ref: SessionRef?
    private var streams: [String: Stream] = [:]
    private var openedAt = ContinuousClock.now

    /// One joined workspace's outgoing events.
    struct Stream {
        enum Item {
            case event(String, outputBytes: Int)
            case held(Delivery)
            case gap(from: UInt64, to: UInt64, bytes: Int)
        }
        var joining = true
        /// Events held back (not writable, or still joining), in order.
        var pending: [Item] = []
        var pendingOutputBytes = 0
        var latestStats: String?
        /// While joining: the snapshot's last seq is not known yet; later events are held.
        var snapshotSeq: UInt64 = 0
    }

    init(id: UInt64, principal: Caller, server: WorkspaceServer) {
        self.id = id
        self.principal = principal
        self.server = server
    }

    var userName: String { principal.user.name }

    // MARK: WebSocketEndpoint

    func webSocketOpened(_ ws: WebSocketConnection) {
        self.ws = ws
        ref = SessionRef(loop: ws.loop.handle, id: id)
        SessionRegistry.on(ws.loop).sessions[id] = self
        server.metrics.sessionOpened()
        openedAt = ContinuousClock.now
        server.audit?.record(.wsOpen, principal) { e in e.add("session", Int64(id)) }
        send(server.helloJSON(for: principal))
    }

    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        guard message.opcode == .text else {
            return send(Envelope.error(nil, .badMessage("tandem.v1 messages are JSON text frames")))
        }
        switch Envelope.parse(message.payload) {
        case .failure(let f):
            send(Envelope.error(f.id, f.error))
        case .success(let request):
            handle(request)
        }
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        if let ref {
            for workspace in streams.keys { server.channel(workspace).unsubscribe(ref) }
        }
        streams = [:]
        SessionRegistry.on(ws.loop).sessions[id] = nil
        server.metrics.sessionClosed()
        let seconds = (ContinuousClock.now - openedAt).components.seconds
        server.audit?.record(.wsClose, principal) { e in
            e.add("session", Int64(id))
            e.add("duration_s", seconds)
            if let code { e.add("close_code", Int64(code.rawValue)) }
        }
    }

    func webSocketWritable(_ ws: WebSocketConnection) { flushPending() }

    // MARK: Sending

    func send(_ json: String) { ws?.send(text: json) }

    /// Runs `work` off the loop and sends its answer (one JSON text) back on this loop.
    private func later(_ work: @escaping @Sendable () async -> String) {
        guard let ref else { return }
        Task {
            let json = await work()
            ref.loop.execute { l in SessionRegistry.on(l).sessions[ref.id]?.send(json) }
        }
    }

    // MARK: Events

    func deliver(_ d: Delivery) {
        guard var s = streams[d.workspace] else { return }
        if let revoke = d.revoke {
            let mine: Bool = switch revoke {
            case .everyone: true
            case .user(let id): id == principal.user.id.rawValue
            }
            if mine {
                // Access withdrawn: this is the last event of the workspace for this session.
                streams[d.workspace] = nil
                if let ref { server.channel(d.workspace).unsubscribe(ref) }
                send(d.json)
                return
            }
        }
        defer { streams[d.workspace] = s }
        if s.pending.count > 50_000 {
            // Even never-dropped events have a bound: a client this far behind is closed.
            ws?.close(code: .goingAway, reason: "too slow")
            return
        }
        if s.joining {
            // Held until the join reply and the replay have gone out.
            s.pending.append(.held(d))
            return
        }
        let writable = ws?.isWritable ?? false
        switch d.kind {
        case .control:
            if s.pending.isEmpty { send(d.json) } else { s.pending.append(.event(d.json, outputBytes: 0)) }
        case .stats:
            if s.pending.isEmpty && writable { send(d.json) } else { s.latestStats = d.json }
        case .output:
            if s.pending.isEmpty && writable {
                send(d.json)
            } else if s.pendingOutputBytes + d.outputBytes <= server.settings.clientBufferBytes {
                s.pending.append(.event(d.json, outputBytes: d.outputBytes))
                s.pendingOutputBytes += d.outputBytes
            } else {
                let seq = d.seq ?? 0
                if case .gap(let from, _, let bytes)? = s.pending.last {
                    s.pending[s.pending.count - 1] = .gap(from: from, to: seq, bytes: bytes + d.outputBytes)
                } else {
                    s.pending.append(.gap(from: seq, to: seq, bytes: d.outputBytes))
                }
                server.metrics.outputDropped(d.outputBytes)
            }
        }
    }

    private func flushPending() {
        for (workspace, var s) in streams where !s.joining {
            while let item = s.pending.first, ws?.isWritable ?? false {
                s.pending.removeFirst()
                switch item {
                case .event(let json, let bytes):
                    s.pendingOutputBytes -= bytes
                    send(json)
                case .gap(let from, let to, let bytes):
                    send(EventJSON.gap(workspace: workspace, fromSeq: from, toSeq: to, bytes: bytes))
                case .held(let d):
                    send(d.json)
                }
            }
            if s.pending.isEmpty, let stats = s.latestStats, ws?.isWritable ?? false {
                s.latestStats = nil
                send(stats)
            }
            streams[workspace] = s
        }
    }

    // MARK: Requests

    private func handle(_ r: Request) {
        var role: WorkspaceRole?
        if let action = r.spec.action {
            guard let workspace = r.workspace else { return send(Envelope.error(r.id, .invalid("missing workspace"))) }
            switch server.authorize(principal, workspace: workspace, action: action) {
            case .failure(let e): return send(Envelope.error(r.id, e))
            case .success(let granted): role = granted
            }
        }
        do throws(ProtocolError) {
            switch r.type {
            case "ping":
                send(Envelope.ok(r.id))
            case "workspace.list":
                send(Envelope.ok(r.id, result: try server.listWorkspaces(principal, archived: r.bool("archived") ?? false)))
            case "workspace.create":
                let name = r.string("name")!
                let template = r.string("template"), git = r.string("git")
                let principal = self.principal, server = self.server, id = r.id
                later {
                    do throws(ProtocolError) {
                        return Envelope.ok(id, result: try await server.createWorkspace(principal, name: name, template: template, git: git))
                    } catch {
                        return Envelope.error(id, error)
                    }
                }
            case "workspace.rename":
                send(Envelope.ok(r.id, result: try server.renameWorkspace(r.workspace!, name: r.string("name")!, by: principal)))
            case "workspace.archive":
                send(Envelope.ok(r.id, result: try server.archiveWorkspace(r.workspace!, archived: r.bool("archived")!, by: principal)))
            case "workspace.delete":
                let workspace = r.workspace!, server = self.server, id = r.id, principal = self.principal
                later {
                    do throws(ProtocolError) {
                        try await server.deleteWorkspace(workspace, by: principal)
                        return Envelope.ok(id)
                    } catch {
                        return Envelope.error(id, error)
                    }
                }
            case "workspace.members":
                send(Envelope.ok(r.id, result: try server.members(r.workspace!)))
            case "member.set":
                send(Envelope.ok(r.id, result: try server.setMember(r.workspace!, user: r.string("user")!, role: r.string("role")!,
                                                                   canRun: r.bool("canRun"), by: principal)))
            case "member.remove":
                send(Envelope.ok(r.id, result: try server.removeMember(r.workspace!, user: r.string("user")!, by: principal)))
            case "workspace.join":
                join(r, role: role!)
            case "workspace.leave":
                if let ref { server.channel(r.workspace!).unsubscribe(ref) }
                streams[r.workspace!] = nil
                send(Envelope.ok(r.id))
            case "file.tree":
                send(Envelope.ok(r.id, result: try server.fileTree(r.workspace!, path: r.string("path") ?? "")))
            case "file.read":
                send(Envelope.ok(r.id, result: try server.readFile(r.workspace!, path: r.string("path")!)))
            case "file.write":
                try server.checkWritable(r.workspace!)
                let bytes: [UInt8]
                if let text = r.string("content") {
                    guard r.string("base64") == nil else { throw ProtocolError.invalid("send content or base64, not both") }
                    bytes = Array(text.utf8)
                } else if let b64 = r.string("base64") {
                    guard let decoded = Base64.decode(b64) else { throw ProtocolError.invalid("base64 is not valid base64") }
                    bytes = decoded
                } else {
                    throw ProtocolError("missing_field", "file.write needs content or base64")
                }
                send(Envelope.ok(r.id, result: try server.writeFile(r.workspace!, path: r.string("path")!, bytes: bytes,
                                                                   baseSHA256: r.string("baseSha256"), createOnly: r.bool("create") ?? false,
                                                                   by: principal)))
            case "file.mkdir":
                try server.checkWritable(r.workspace!)
                send(Envelope.ok(r.id, result: try server.mkdir(r.workspace!, path: r.string("path")!, by: principal)))
            case "file.rename":
                try server.checkWritable(r.workspace!)
                send(Envelope.ok(r.id, result: try server.renameFile(r.workspace!, from: r.string("from")!, to: r.string("to")!,
                                                                    overwrite: r.bool("overwrite") ?? false, by: principal)))
            case "file.delete":
                try server.checkWritable(r.workspace!)
                send(Envelope.ok(r.id, result: try server.deleteFile(r.workspace!, path: r.string("path")!,
                                                                    recursive: r.bool("recursive") ?? false, by: principal)))
            case "kernel.execute":
                try server.checkWritable(r.workspace!)
                let workspace = r.workspace!, code = r.string("code")!, kernel = r.string("kernel")
                let server = self.server, id = r.id, principal = self.principal, roleName = role?.rawValue ?? ""
                later {
                    do throws(ProtocolError) {
                        let execution = try await server.execute(workspace, code: code, kernel: kernel, by: principal, role: roleName)
                        return Envelope.ok(id, result: "{\"executionId\":\(execution)}")
                    } catch {
                        return Envelope.error(id, error)
                    }
                }
            case "kernel.interrupt":
                let workspace = r.workspace!, server = self.server, id = r.id, name = userName
                later {
                    do throws(KernelError) {
                        try await server.kernels.interrupt(workspace: workspace, by: name)
                        return Envelope.ok(id)
                    } catch {
                        return Envelope.error(id, ProtocolError(error.code.rawValue, error.message))
                    }
                }
            case "kernel.restart":
                try server.checkWritable(r.workspace!)
                let workspace = r.workspace!, server = self.server, id = r.id, name = userName, kernel = r.string("kernel")
                later {
                    do throws(KernelError) {
                        try await server.kernels.restart(workspace: workspace, directory: server.directory(workspace), kernel: kernel, by: name)
                        return Envelope.ok(id)
                    } catch {
                        return Envelope.error(id, ProtocolError(error.code.rawValue, error.message))
                    }
                }
            case "audit.list":
                // The query runs on the audit writer's thread: wait for it off this loop.
                let workspace = r.workspace!, server = self.server, id = r.id
                let since = r.int("since"), after = r.int("afterSeq"), limit = r.int("limit")
                later {
                    do throws(ProtocolError) {
                        return Envelope.ok(id, result: try server.auditEntries(workspace, sinceSeconds: since, afterSeq: after, limit: limit))
                    } catch {
                        return Envelope.error(id, error)
                    }
                }
            case "kernel.complete":
                let workspace = r.workspace!, server = self.server, id = r.id
                let code = r.string("code")!, cursor = max(0, r.int("cursor")!)
                later {
                    do throws(KernelError) {
                        let c = try await server.kernels.complete(workspace: workspace, code: code, cursor: cursor)
                        let list = c.matches.map(JSONText.quote).joined(separator: ",")
                        return Envelope.ok(id, result: "{\"matches\":[\(list)],\"cursorStart\":\(c.cursorStart)}")
                    } catch {
                        return Envelope.error(id, ProtocolError(error.code.rawValue, error.message))
                    }
                }
            default:
                // Every catalogued type is handled above; the catalogue test keeps it so.
                send(Envelope.error(r.id, ProtocolError("unknown_type", "\(r.type) is not implemented")))
            }
        } catch {
            send(Envelope.error(r.id, error))
        }
    }

    private func join(_ r: Request, role: WorkspaceRole) {
        guard let ref else { return }
        let workspace = r.workspace!
        let lastSeq = r.int("lastSeq").map { UInt64(max(0, $0)) }
        if streams[workspace] != nil {
            return send(Envelope.error(r.id, ProtocolError("conflict", "already joined; leave first to resume from another point")))
        }
        streams[workspace] = Stream()
        let server = self.server, id = r.id
        let channel = server.channel(workspace)
        server.startWatching(workspace)
        Task {
            let result: Result<KernelSnapshot, KernelError>
            do throws(KernelError) {
                let s = try await server.kernels.attach(
                    workspace: workspace, directory: server.directory(workspace), observer: channel, afterSeq: lastSeq,
                    whileAttaching: { channel.subscribe(ref) })
                result = .success(s)
            } catch {
                result = .failure(error)
            }
            let replay: [String] = (try? result.get())?.replay.map { EventJSON.kernel($0).json } ?? []
            ref.loop.execute { l in
                SessionRegistry.on(l).sessions[ref.id]?.joined(workspace, id: id, role: role, snapshot: result, replay: replay)
            }
        }
    }

    private func joined(_ workspace: String, id: RequestID, role: WorkspaceRole, snapshot: Result<KernelSnapshot, KernelError>, replay: [String]) {
        guard var s = streams[workspace], s.joining else {
            // Left (or access withdrawn) before the join completed.
            if streams[workspace] == nil, let ref { server.channel(workspace).unsubscribe(ref) }
            return send(Envelope.error(id, ProtocolError("conflict", "the workspace was left before the join completed")))
        }
        switch snapshot {
        case .failure(let e):
            streams[workspace] = nil
            if let ref { server.channel(workspace).unsubscribe(ref) }
            send(Envelope.error(id, ProtocolError(e.code.rawValue, e.message)))
        case .success(let snap):
            let kernel = "{\"name\":\(JSONText.quote(snap.kernel)),\"state\":\"\(snap.state.rawValue)\",\"seq\":\(snap.seq),\"queued\":\(snap.queued),\"running\":\(snap.running.map(String.init) ?? "null")}"
            send(Envelope.ok(id, result: "{\"workspace\":\(JSONText.quote(workspace)),\"role\":\"\(role.rawValue)\",\"kernel\":\(kernel)}"))
            if let g = snap.gap { send(EventJSON.gap(workspace: workspace, fromSeq: g.fromSeq, toSeq: g.toSeq, bytes: g.bytes, atLeast: g.atLeast)) }
            for json in replay { send(json) }
            // Events that arrived while joining: only those after the snapshot (the replay had the rest).
            let held = s.pending
            s.pending = []
            s.joining = false
            streams[workspace] = s
            for item in held {
                // Kernel events up to the snapshot were in the replay; file and workspace events have no seq.
                if case .held(let d) = item, (d.seq ?? UInt64.max) > snap.seq { deliver(d) }
            }
        }
    }

}

@available(*, unavailable)
extension ClientSession: Sendable {}

