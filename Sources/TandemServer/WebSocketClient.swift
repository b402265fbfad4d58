// A WebSocket client on the same loop and transport as the server (ws:// and wss://, with
// permessage-deflate), used by tests, benchmarks and the CLI.
public import TandemLoop
import TandemWebSocket
public import TandemHTTP

/// A parsed `ws://` or `wss://` URL.
public struct WebSocketURL: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// Path and query.
    public var target: String

    public init?(_ string: String) {
        let rest: Substring
        if string.hasPrefix("ws://") { secure = false; rest = string.dropFirst(5) } else if string.hasPrefix("wss://") { secure = true; rest = string.dropFirst(6) } else { return nil }
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        var t = String(rest[slash...])
        if t.isEmpty { t = "/" } else if t.hasPrefix("?") { t = "/" + t }
        target = t
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { return nil }; port = p } else { port = secure ? 443 : 80 }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        } else {
            host = String(authority)
            port = secure ? 443 : 80
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
    }

    /// The `Host` header value.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return (port == (secure ? 443 : 80)) ? h : "\(h):\(port)"
    }
}

public enum WebSocketClient {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Connects on `loop`; `endpoint` receives the socket once the handshake succeeds, or
    /// `onFailure` is called (on the loop).
    public static func connect(
        url: WebSocketURL, loop: Loop, options: WebSocketOptions = WebSocketOptions(), subprotocols: [String] = [],
        extraHeaders: HTTPHeaders = HTTPHeaders(), tls: TLSContext? = nil, endpoint: any WebSocketEndpoint,
        onFailure: @escaping (Failure) -> Void
    ) {
        do {
            let (fd, inProgress) = try tcpConnect(host: url.host, port: url.port)
            var tlsContext = tls
            if url.secure && tlsContext == nil { tlsContext = try TLSContext(clientVerifying: true) }
            let c = try Connection(
                loop: loop, fd: fd, peerAddress: url.host, options: ConnectionOptions(), tls: url.secure ? tlsContext : nil,
                serverName: url.host, connecting: inProgress)
            let handshake = WebSocketClientHandshake(subprotocols: subprotocols, deflate: options.deflate)
            let h = ClientHandshakeHandler(
                url: url, handshake: handshake, options: options, extraHeaders: extraHeaders, endpoint: endpoint, onFailure: onFailure)
            c.handler = h
            c.setDeadline(afterNanos: 10_000_000_000)
            c.start()
        } catch {
            onFailure(Failure(reason: "\(error)"))
        }
    }
}

final class ClientHandshakeHandler: ConnectionHandler {
    let url: WebSocketURL
    let handshake: WebSocketClientHandshake
    let options: WebSocketOptions
    let extraHeaders: HTTPHeaders
    let endpoint: any WebSocketEndpoint
    var onFailure: ((WebSocketClient.Failure) -> Void)?
    var buffer: [UInt8] = []

    init(url: WebSocketURL, handshake: WebSocketClientHandshake, options: WebSocketOptions, extraHeaders: HTTPHeaders,
         endpoint: any WebSocketEndpoint, onFailure: @escaping (WebSocketClient.Failure) -> Void) {
        self.url = url
        self.handshake = handshake
        self.options = options
        self.extraHeaders = extraHeaders
        self.endpoint = endpoint
        self.onFailure = onFailure
    }

    func connectionActive(_ connection: Connection) {
        connection.write(handshake.requestBytes(host: url.hostHeader, target: url.target, extraHeaders: extraHeaders))
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        let parsed: HTTPResponseHeadParser.Parsed?
        do {
            parsed = try HTTPResponseHeadParser.parse(buffer)
        } catch {
            return failed(connection, "invalid handshake response: \(error.reason)")
        }
        guard let parsed else { return }
        do {
            let agreement = try handshake.validate(status: parsed.status, headers: parsed.headers)
            let ws = WebSocketConnection(
                connection: connection, isClient: true, subprotocol: agreement.subprotocol, deflate: agreement.deflate,
                options: options, endpoint: endpoint)
            onFailure = nil
            ws.start(leftover: Array(buffer[parsed.consumed...]))
        } catch {
            failed(connection, "handshake failed: \(error.reason)")
        }
    }

    func connectionDeadlinePassed(_ connection: Connection) { failed(connection, "handshake timed out") }

    private func failed(_ connection: Connection, _ reason: String) {
        let f = onFailure
        onFailure = nil
        connection.close(graceful: false)
        f?(WebSocketClient.Failure(reason: reason))
    }

    func connectionClosed(_ connection: Connection, error: (any Error)?) {
        let f = onFailure
        onFailure = nil
        f?(WebSocketClient.Failure(reason: error.map { "\($0)" } ?? "connection closed during the handshake"))
    }
}

@available(*, unavailable)
extension ClientHandshakeHandler: Sendable {}
