// Requests, responses and routes as the server's handlers see them.
public import TandemHTTP
public import TandemLoop
public import TandemWebSocket
import TandemCrypto

/// A complete request with its body.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var peerAddress: String
    public var isTLS: Bool

    public var method: String { head.method }
    public var path: Substring { head.path }
}

/// A complete response.
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]

    public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.head = HTTPResponseHead(status: status, headers: headers)
        self.body = body
    }

    /// A small JSON body: `{"error": code, "message": ...}` or any preformatted JSON text.
    public static func json(_ status: HTTPStatus, _ json: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var h = headers
        h.set("Content-Type", "application/json; charset=utf-8")
        return HTTPResponse(status: status, headers: h, body: Array(json.utf8))
    }

    /// A JSON error with a stable machine-readable code.
    public static func error(_ status: HTTPStatus, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        .json(status, "{\"error\":\(jsonString(code)),\"message\":\(jsonString(message))}", headers: headers)
    }
}

/// Escapes a string as a JSON string literal.
public func jsonString(_ s: String) -> String { JSONText.quote(s) }

/// Answers one request, now or later, on the connection's loop. Calling it more than once, or
/// after the connection closed, does nothing.
public final class HTTPResponder {
    private var callback: ((HTTPResponse) -> Void)?
    init(_ callback: @escaping (HTTPResponse) -> Void) { self.callback = callback }
    public func respond(_ response: HTTPResponse) {
        let cb = callback
        callback = nil
        cb?(response)
    }
}

@available(*, unavailable)
extension HTTPResponder: Sendable {}

/// A route's handler: runs on the connection's loop.
public typealias HTTPHandler = @Sendable (HTTPRequest, Loop, HTTPResponder) -> Void

/// A WebSocket route: handshake settings and a factory for the endpoint (nil refuses with 403).
public struct WebSocketRoute: Sendable {
    public var handshake: WebSocketServerHandshake.Configuration
    /// Check the `Origin` header against the server's allowlist.
    public var checkOrigin: Bool
    public var makeEndpoint: @Sendable (HTTPRequest, Loop) -> (any WebSocketEndpoint)?

    public init(
        handshake: WebSocketServerHandshake.Configuration, checkOrigin: Bool = true,
        makeEndpoint: @escaping @Sendable (HTTPRequest, Loop) -> (any WebSocketEndpoint)?
    ) {
        self.handshake = handshake
        self.checkOrigin = checkOrigin
        self.makeEndpoint = makeEndpoint
    }
}

/// The routing table, built at start-up and then frozen (shared by every loop).
public struct Routes: Sendable {
    public struct Route: Sendable {
        public var methods: [String]
        public var handler: HTTPHandler
    }
    /// Exact paths.
    public var exact: [String: Route] = [:]
    /// Path prefixes (longest first when matching).
    public var prefixes: [(prefix: String, route: Route)] = []
    public var webSockets: [String: WebSocketRoute] = [:]
    /// Everything else (static files); nil answers 404.
    public var fallback: Route?

    public init() {}

    public mutating func add(_ path: String, methods: [String] = ["GET", "HEAD"], _ handler: @escaping HTTPHandler) {
        exact[path] = Route(methods: methods, handler: handler)
    }

    public mutating func addPrefix(_ prefix: String, methods: [String], _ handler: @escaping HTTPHandler) {
        prefixes.append((prefix, Route(methods: methods, handler: handler)))
        prefixes.sort { $0.prefix.count > $1.prefix.count }
    }

    func match(_ path: Substring) -> Route? {
        if let r = exact[String(path)] { return r }
        for p in prefixes where path.hasPrefix(p.prefix) { return p.route }
        return fallback
    }
}

/// Security headers on every response (the HTML client adds its CSP).
func addSecurityHeaders(_ h: inout HTTPHeaders, isTLS: Bool) {
    h.add("X-Content-Type-Options", "nosniff")
    h.add("Referrer-Policy", "no-referrer")
    h.add("X-Frame-Options", "DENY")
    h.add("Cross-Origin-Opener-Policy", "same-origin")
    h.add("Cross-Origin-Resource-Policy", "same-origin")
    if isTLS { h.add("Strict-Transport-Security", "max-age=31536000") }
}
