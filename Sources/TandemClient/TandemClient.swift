// A tandem.v1 client on Tandem's own WebSocket client: requests are matched to their replies by
// id and awaited; events are kept (bounded) and can be awaited by predicate. Used by the tests,
// the benchmarks and scripts written in Swift.
import Synchronization
public import TandemCrypto
import TandemHTTP
public import TandemLoop
import TandemServer
import TandemWebSocket
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public struct ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server's error code (`forbidden`, `not_found`, …) or a client-side one
    /// (`connect_failed`, `closed`, `timeout`).
    public var code: String
    public var message: String
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

public final class TandemClient: Sendable {
    private let loop: EventLoop
    private let state = Mutex<State>(State())
    private let nextID = Atomic<Int>(0)

    struct State: ~Copyable {
        var socket: SocketRef?
        var pending: [Int: CheckedContinuation<Result<JSONValue, ClientError>, Never>] = [:]
        var events: [JSONValue] = []
        var hello: JSONValue?
        var closed: (code: Int?, reason: String)?
        var opened: CheckedContinuation<Result<Void, ClientError>, Never>?
        var maxEvents = 100_000
        /// When false, events are only counted (bytes and number) except `kernel.finished`.
        var decodeEvents = true
        var eventBytes = 0
        var eventCount = 0
        /// Callers waiting for an event that matches.
        var waiters: [Int: Waiter] = [:]
    }

    struct Waiter {
        var match: @Sendable (JSONValue) -> Bool
        var continuation: CheckedContinuation<JSONValue?, Never>
    }

    private init(loop: EventLoop) { self.loop = loop }

    /// Connects and waits for the server's `hello`. `headers` go on the upgrade request
    /// (`Authorization: Bearer …`, `Cookie`, `Origin`).
    public static func connect(url: String, headers: [(String, String)] = [], loop: EventLoop,
                               decodeEvents: Bool = true) async throws(ClientError) -> TandemClient {
        guard let u = WebSocketURL(url) else { throw ClientError("bad_url", url) }
        let client = TandemClient(loop: loop)
        client.state.withLock { $0.decodeEvents = decodeEvents }
        let r: Result<Void, ClientError> = await withCheckedContinuation { cont in
            client.state.withLock { $0.opened = cont }
            let accepted = loop.execute { l in
                let ep = ClientEndpoint(client: client)
                WebSocketClient.connect(url: u, loop: l, subprotocols: ["tandem.v1"], extraHeaders: HTTPHeaders(headers), endpoint: ep) { f in
                    client.finishOpen(.failure(ClientError("connect_failed", f.reason)))
                }
            }
            if !accepted { client.finishOpen(.failure(ClientError("connect_failed", "client loop stopped"))) }
        }
        try r.get()
        return client
    }

    /// The server's hello message.
    public var hello: JSONValue? { state.withLock { $0.hello } }
    public var closed: (code: Int?, reason: String)? { state.withLock { $0.closed } }

    /// Sends a request and waits for its `ok` (returns `result`) or `error` (throws).
    public func request(_ type: String, _ fields: [String: JSONValue] = [:], timeout: Double = 30) async throws(ClientError) -> JSONValue {
        let id = nextID.add(1, ordering: .relaxed).newValue
        var msg = fields
        msg["type"] = .string(type)
        msg["id"] = .number(Double(id))
        let text = TandemClient.encode(.object(msg))
        return try await send(text: text, id: id, timeout: timeout)
    }

    /// Sends raw text and waits for the reply with id `id` (for tests of malformed messages).
    public func send(text: String, id: Int, timeout: Double = 30) async throws(ClientError) -> JSONValue {
        let r: Result<JSONValue, ClientError> = await withCheckedContinuation { cont in
            let closed = state.withLock { s -> Bool in
                if s.closed != nil { return true }
                s.pending[id] = cont
                return false
            }
            if closed { return cont.resume(returning: .failure(ClientError("closed", "the connection is closed"))) }
            sendRaw(text)
            let loop = self.loop
            loop.execute { l in
                l.schedule(afterNanos: UInt64(timeout * 1e9)) { [weak self] in
                    self?.complete(id: id, .failure(ClientError("timeout", "no reply in \(timeout) s")))
                }
            }
        }
        return try r.get()
    }

    /// Sends text without waiting for anything.
    public func sendRaw(_ text: String) {
        let bytes = Array(text.utf8)
        loop.execute { [self] _ in
            state.withLock { $0.socket }?.value.send(.text, bytes)
        }
    }

    /// Events received so far (everything that is not a reply).
    public var events: [JSONValue] { state.withLock { $0.events } }

    /// Waits until an event matches (one already received counts); returns it, or nil after
    /// `timeout` seconds. Woken by the event itself, not by polling.
    public func waitForEvent(timeout: Double = 10, _ match: @escaping @Sendable (JSONValue) -> Bool) async -> JSONValue? {
        let key = nextID.add(1, ordering: .relaxed).newValue + 1_000_000_000
        return await withCheckedContinuation { (cont: CheckedContinuation<JSONValue?, Never>) in
            let found = state.withLock { s -> JSONValue? in
                if let e = s.events.first(where: match) { return e }
                s.waiters[key] = Waiter(match: match, continuation: cont)
                return nil
            }
            if let found { return cont.resume(returning: found) }
            loop.execute { [weak self] l in
                l.schedule(afterNanos: UInt64(timeout * 1e9)) { [weak self] in
                    guard let self else { return }
                    let w = self.state.withLock { $0.waiters.removeValue(forKey: key) }
                    w?.continuation.resume(returning: nil)
                }
            }
        }
    }

    public func clearEvents() { state.withLock { $0.events = [] } }

    public func close() {
        loop.execute { [self] _ in state.withLock { $0.socket }?.value.close(code: .normal) }
    }

    // MARK: Endpoint side (on the loop)

    func finishOpen(_ r: Result<Void, ClientError>) {
        let cont = state.withLock { s -> CheckedContinuation<Result<Void, ClientError>, Never>? in
            let c = s.opened
            s.opened = nil
            return c
        }
        cont?.resume(returning: r)
    }

    func opened(_ ws: WebSocketConnection) { state.withLock { $0.socket = SocketRef(ws) } }

    /// Bytes and number of events received (all of them, decoded or not).
    public var received: (bytes: Int, events: Int) { state.withLock { ($0.eventBytes, $0.eventCount) } }

    func received(_ bytes: [UInt8]) {
        let decode = state.withLock { s -> Bool in
            s.eventBytes += bytes.count
            s.eventCount += 1
            return s.decodeEvents
        }
        // Benchmarks skip decoding bulk events: only replies, hello and kernel.finished matter.
        if !decode, bytes.count > 64, !bytes.starts(with: Array(#"{"type":"ok""#.utf8)), !bytes.starts(with: Array(#"{"type":"error""#.utf8)),
           !bytes.starts(with: Array(#"{"type":"hello""#.utf8)), !bytes.starts(with: Array(#"{"type":"kernel.finished""#.utf8)) {
            return
        }
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)), case .object(let o) = v else { return }
        let type: String? = if case .string(let t)? = o["type"] { t } else { nil }
        if type == "ok" || type == "error", case .number(let n)? = o["id"] {
            if type == "ok" {
                complete(id: Int(n), .success(o["result"] ?? .null))
            } else {
                var code = "error", message = ""
                if case .string(let c)? = o["code"] { code = c }
                if case .string(let m)? = o["message"] { message = m }
                complete(id: Int(n), .failure(ClientError(code, message)))
            }
            return
        }
        if type == "hello" {
            state.withLock { $0.hello = v }
            finishOpen(.success(()))
            return
        }
        let woken = state.withLock { s -> [Waiter] in
            if s.events.count < s.maxEvents { s.events.append(v) }
            var woken: [Waiter] = []
            for (key, w) in s.waiters where w.match(v) {
                woken.append(w)
                s.waiters[key] = nil
            }
            return woken
        }
        for w in woken { w.continuation.resume(returning: v) }
    }

    func complete(id: Int, _ r: Result<JSONValue, ClientError>) {
        let cont = state.withLock { $0.pending.removeValue(forKey: id) }
        cont?.resume(returning: r)
    }

    func closedByPeer(code: Int?, reason: String) {
        let waiting = state.withLock { s -> [CheckedContinuation<Result<JSONValue, ClientError>, Never>] in
            s.closed = (code, reason)
            s.socket = nil
            let p = Array(s.pending.values)
            s.pending = [:]
            return p
        }
        for c in waiting { c.resume(returning: .failure(ClientError("closed", "connection closed (\(code.map(String.init) ?? "no code")) \(reason)"))) }
        finishOpen(.failure(ClientError("closed", "connection closed before hello (\(code.map(String.init) ?? "no code")) \(reason)")))
    }

    /// JSON text of a value (compact).
    public static func encode(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .string(let s): return JSONText.quote(s)
        case .array(let a): return "[" + a.map(encode).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.sorted { $0.key < $1.key }.map { JSONText.quote($0.key) + ":" + encode($0.value) }.joined(separator: ",") + "}"
        }
    }
}

/// The loop-confined WebSocket, carried through the client's mutex. `@unchecked Sendable`: it is
/// only dereferenced inside `loop.execute` on its own loop; other threads only store and drop it.
final class SocketRef: @unchecked Sendable {
    let value: WebSocketConnection
    init(_ v: WebSocketConnection) { value = v }
}

final class ClientEndpoint: WebSocketEndpoint {
    let client: TandemClient
    init(client: TandemClient) { self.client = client }
    func webSocketOpened(_ ws: WebSocketConnection) { client.opened(ws) }
    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        if message.opcode == .text { client.received(message.payload) }
    }
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        client.closedByPeer(code: code.map { Int($0.rawValue) }, reason: reason)
    }
}

@available(*, unavailable)
extension ClientEndpoint: Sendable {}

extension JSONValue {
    public subscript(_ key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var int: Int? { if case .number(let n) = self { return Int(n) } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
}
