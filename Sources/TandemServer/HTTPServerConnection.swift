// One HTTP/1.1 connection: parses requests one at a time (pipelined requests wait their turn),
// routes them, writes responses, keeps alive, and hands the socket to a WebSocket on upgrade.
public import TandemHTTP
import TandemLoop
import TandemWebSocket
import Logging

/// Settings the HTTP side needs, derived from the configuration.
public struct HTTPServerOptions: Sendable {
    public var parserLimits = HTTPRequestParser.Limits()
    public var headerTimeoutNanos: UInt64 = 10_000_000_000
    public var idleTimeoutNanos: UInt64 = 30_000_000_000
    public var webSocket = WebSocketOptions()
    /// Allowed `Origin` values; empty means same origin as the `Host` header.
    public var allowedOrigins: [String] = []
    public init() {}
}

final class HTTPServerConnection: ConnectionHandler {
    let connection: Connection
    let routes: Routes
    let options: HTTPServerOptions
    let isTLS: Bool
    let logger: Logger
    let onClose: () -> Void
    private var parser: HTTPRequestParser
    private var current: HTTPRequestHead?
    private var body: [UInt8] = []
    /// A response is outstanding; further requests wait in the parser.
    private var busy = false
    private var upgraded = false
    private var closeAfterResponse = false

    init(connection: Connection, routes: Routes, options: HTTPServerOptions, isTLS: Bool, logger: Logger, onClose: @escaping () -> Void) {
        self.connection = connection
        self.routes = routes
        self.options = options
        self.isTLS = isTLS
        self.logger = logger
        self.onClose = onClose
        parser = HTTPRequestParser(limits: options.parserLimits)
        connection.setDeadline(afterNanos: options.headerTimeoutNanos)
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        if parser.isIdle && !busy { connection.setDeadline(afterNanos: options.headerTimeoutNanos) }
        parser.append(bytes)
        process()
    }

    private func process() {
        while !busy && !upgraded && connection.state == .active {
            let event: HTTPParserEvent?
            do {
                event = try parser.next()
            } catch {
                logger.debug("bad request", metadata: ["peer": "\(connection.peerAddress)", "reason": "\(error.reason)"])
                closeAfterResponse = true
                busy = true
                send(HTTPResponse.error(error.status, code: "bad_request", message: error.reason))
                return
            }
            guard let event else { return }
            switch event {
            case .head(let head):
                current = head
                body = []
                if WebSocketServerHandshake.isUpgradeRequest(head) {
                    upgrade(head)
                    return
                }
            case .body(let chunk):
                body.append(contentsOf: chunk)
            case .end:
                guard let head = current else { continue }
                current = nil
                dispatch(HTTPRequest(head: head, body: body, peerAddress: connection.peerAddress, isTLS: isTLS))
                body = []
            }
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        busy = true
        connection.clearDeadline()
        if !request.head.keepAlive { closeAfterResponse = true }
        guard let route = routes.match(request.path) else {
            return send(.error(.notFound, code: "not_found", message: "no such resource"))
        }
        guard route.methods.contains(request.method) else {
            var h = HTTPHeaders()
            h.add("Allow", route.methods.joined(separator: ", "))
            return send(.error(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method) is not allowed here", headers: h))
        }
        let isHead = request.method == "HEAD"
        let responder = HTTPResponder { [weak self] response in
            self?.send(response, headOnly: isHead)
        }
        route.handler(request, connection.loop, responder)
    }

    private func send(_ response: HTTPResponse, headOnly: Bool = false) {
        guard !connection.isClosed else { return }
        var head = response.head
        addSecurityHeaders(&head.headers, isTLS: isTLS)
        if head.headers["Content-Length"] == nil && head.status.code != 304 && head.status.code != 204 {
            head.headers.add("Content-Length", String(response.body.count))
        }
        if closeAfterResponse { head.headers.set("Connection", "close") }
        var bytes = head.serialized()
        if !headOnly { bytes.append(contentsOf: response.body) }
        connection.write(bytes)
        busy = false
        if closeAfterResponse {
            connection.close()
            return
        }
        connection.setDeadline(afterNanos: options.idleTimeoutNanos)
        process()
    }

    private func upgrade(_ head: HTTPRequestHead) {
        busy = true
        let request = HTTPRequest(head: head, body: [], peerAddress: connection.peerAddress, isTLS: isTLS)
        guard let route = routes.webSockets[String(head.path)] else {
            closeAfterResponse = true
            return send(.error(.notFound, code: "not_found", message: "no WebSocket endpoint at this path"))
        }
        let origins = options.allowedOrigins
        let hostHeader = head.headers["Host"]
        let tls = isTLS
        let result = WebSocketServerHandshake.accept(head, configuration: route.handshake) { origin in
            guard route.checkOrigin, let origin else { return true }
            return originAllowed(origin, host: hostHeader, allowed: origins, isTLS: tls)
        }
        switch result {
        case .failure(let refusal):
            closeAfterResponse = true
            logger.debug("WebSocket handshake refused", metadata: ["peer": "\(connection.peerAddress)", "reason": "\(refusal.reason)"])
            send(.error(refusal.status, code: "handshake_refused", message: refusal.reason, headers: refusal.headers))
        case .success(let accepted):
            guard let endpoint = route.makeEndpoint(request, connection.loop) else {
                closeAfterResponse = true
                return send(.error(.forbidden, code: "forbidden", message: "not allowed"))
            }
            upgraded = true
            var response = accepted.response
            addSecurityHeaders(&response.headers, isTLS: isTLS)
            connection.write(response.serialized())
            var wsOptions = options.webSocket
            if accepted.deflate != nil { wsOptions.deflate = route.handshake.deflate }
            let ws = WebSocketConnection(
                connection: connection, isClient: false, subprotocol: accepted.subprotocol, deflate: accepted.deflate,
                options: wsOptions, endpoint: endpoint)
            let leftover = parser.takeRemainingBytes()
            let onClose = self.onClose
            ws.onTransportClosed = onClose
            ws.start(leftover: leftover)
        }
    }

    func connectionClosed(_ connection: Connection, error: (any Error)?) {
        onClose()
    }
}

@available(*, unavailable)
extension HTTPServerConnection: Sendable {}

/// The default origin policy: same origin as `Host` unless an allowlist is configured.
func originAllowed(_ origin: String, host: String?, allowed: [String], isTLS: Bool) -> Bool {
    if !allowed.isEmpty { return allowed.contains(origin) || allowed.contains("*") }
    guard let host else { return false }
    return origin == (isTLS ? "https://" : "http://") + host
}
