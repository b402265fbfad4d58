// RFC 6455 §4 opening handshake, both sides, as pure functions over HTTP heads.
public import TandemHTTP
import TandemCrypto

/// Server-side handshake validation and response.
public enum WebSocketServerHandshake {
    public struct Configuration: Sendable {
        /// Subprotocols this endpoint speaks, in preference order.
        public var subprotocols: [String] = []
        /// Refuse clients that offer none of ``subprotocols`` (when that list is non-empty).
        public var requireSubprotocol = false
        public var deflate = PerMessageDeflateConfiguration()
        public init() {}
    }

    /// A successful handshake: the 101 response to send and what was agreed.
    public struct Accepted: Sendable {
        public var response: HTTPResponseHead
        public var subprotocol: String?
        public var deflate: PerMessageDeflateParameters?
    }

    /// A refused handshake: the status and headers to answer with.
    public struct Refusal: Error, Sendable, Equatable {
        public var status: HTTPStatus
        public var headers: HTTPHeaders
        public var reason: String
        init(_ status: HTTPStatus, _ reason: String, headers: HTTPHeaders = HTTPHeaders()) {
            self.status = status
            self.reason = reason
            self.headers = headers
        }
    }

    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2 step 5.4).
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(Digest.sha1(Array((key + guid).utf8)))
    }

    /// Whether the request asks for a WebSocket upgrade at all (`Upgrade: websocket`).
    public static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        head.headers.containsToken("Upgrade", "websocket")
    }

    /// Checks an upgrade request and builds the response (RFC 6455 §4.2.1–4.2.2).
    /// - Parameter originAllowed: the `Origin` allowlist hook (nil when the header is absent).
    public static func accept(
        _ head: HTTPRequestHead, configuration: Configuration, originAllowed: (String?) -> Bool = { _ in true }
    ) -> Result<Accepted, Refusal> {
        guard head.method == "GET" else { return .failure(Refusal(.methodNotAllowed, "WebSocket upgrade must use GET", headers: ["Allow": "GET"])) }
        guard head.versionMinor >= 1 else { return .failure(Refusal(.badRequest, "WebSocket upgrade needs HTTP/1.1")) }
        guard head.headers.containsToken("Upgrade", "websocket") else { return .failure(Refusal(.badRequest, "missing Upgrade: websocket")) }
        guard head.headers.containsToken("Connection", "upgrade") else { return .failure(Refusal(.badRequest, "missing Connection: Upgrade")) }
        let versions = head.headers.values("Sec-WebSocket-Version")
        guard versions.count == 1, versions[0].trimmingOWS() == "13" else {
            return .failure(Refusal(.upgradeRequired, "unsupported WebSocket version", headers: ["Sec-WebSocket-Version": "13"]))
        }
        let keys = head.headers.values("Sec-WebSocket-Key")
        guard keys.count == 1 else { return .failure(Refusal(.badRequest, "missing or repeated Sec-WebSocket-Key")) }
        let key = String(keys[0].trimmingOWS())
        guard let decoded = Base64.decode(key), decoded.count == 16 else {
            return .failure(Refusal(.badRequest, "Sec-WebSocket-Key is not 16 base64-encoded bytes"))
        }
        let origins = head.headers.values("Origin")
        guard origins.count <= 1, originAllowed(origins.first) else { return .failure(Refusal(.forbidden, "origin not allowed")) }

        var headers = HTTPHeaders()
        headers.add("Upgrade", "websocket")
        headers.add("Connection", "Upgrade")
        headers.add("Sec-WebSocket-Accept", acceptValue(forKey: key))

        var chosenProtocol: String? = nil
        let offered = head.headers.listElements("Sec-WebSocket-Protocol").map(String.init)
        if !configuration.subprotocols.isEmpty {
            chosenProtocol = offered.first { configuration.subprotocols.contains($0) }
            if chosenProtocol == nil && configuration.requireSubprotocol {
                return .failure(Refusal(.badRequest, "no supported subprotocol (expected \(configuration.subprotocols.joined(separator: ", ")))"))
            }
        }
        if let p = chosenProtocol { headers.add("Sec-WebSocket-Protocol", p) }

        var deflate: PerMessageDeflateParameters? = nil
        let extValues = head.headers.values("Sec-WebSocket-Extensions")
        if !extValues.isEmpty, let offers = WebSocketExtensionOffer.parse(extValues),
           let (value, params) = PerMessageDeflateNegotiation.negotiateAsServer(offers: offers, configuration: configuration.deflate)
        {
            headers.add("Sec-WebSocket-Extensions", value)
            deflate = params
        }
        return .success(Accepted(response: HTTPResponseHead(status: .switchingProtocols, headers: headers), subprotocol: chosenProtocol, deflate: deflate))
    }
}

/// Client-side handshake: the request to send and the check of the answer.
public struct WebSocketClientHandshake: Sendable {
    public let key: String
    public let subprotocols: [String]
    public let deflate: PerMessageDeflateConfiguration

    public init(subprotocols: [String] = [], deflate: PerMessageDeflateConfiguration = .disabled, key: String? = nil) {
        self.key = key ?? Base64.encode(SecureRandom.bytes(16))
        self.subprotocols = subprotocols
        self.deflate = deflate
    }

    /// The GET request bytes for `host` (with port when not default) and `target` (`/path?query`).
    public func requestBytes(host: String, target: String, extraHeaders: HTTPHeaders = HTTPHeaders()) -> [UInt8] {
        var s = "GET \(target) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        s += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if !subprotocols.isEmpty { s += "Sec-WebSocket-Protocol: \(subprotocols.joined(separator: ", "))\r\n" }
        if let offer = PerMessageDeflateNegotiation.clientOffer(deflate) { s += "Sec-WebSocket-Extensions: \(offer)\r\n" }
        for (n, v) in extraHeaders { s += "\(n): \(v)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    public struct Agreement: Sendable, Equatable {
        public var subprotocol: String?
        public var deflate: PerMessageDeflateParameters?
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Validates the server's response head (RFC 6455 §4.1, client steps 1–6).
    public func validate(status: Int, headers: HTTPHeaders) throws(Failure) -> Agreement {
        guard status == 101 else { throw Failure(reason: "server answered \(status) instead of 101") }
        guard headers.containsToken("Upgrade", "websocket") else { throw Failure(reason: "missing Upgrade: websocket") }
        guard headers.containsToken("Connection", "upgrade") else { throw Failure(reason: "missing Connection: Upgrade") }
        guard headers["Sec-WebSocket-Accept"]?.trimmingOWS() == WebSocketServerHandshake.acceptValue(forKey: key)[...] else {
            throw Failure(reason: "wrong Sec-WebSocket-Accept")
        }
        var agreement = Agreement()
        if let p = headers["Sec-WebSocket-Protocol"] {
            guard subprotocols.contains(p) else { throw Failure(reason: "server chose a subprotocol that was not offered") }
            agreement.subprotocol = p
        }
        let ext = headers.values("Sec-WebSocket-Extensions")
        if !ext.isEmpty {
            do {
                agreement.deflate = try PerMessageDeflateNegotiation.acceptAsClient(responseValues: ext, configuration: deflate)
            } catch {
                throw Failure(reason: error.reason)
            }
        }
        return agreement
    }
}
