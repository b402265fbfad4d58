// RFC 7692 permessage-deflate: parameter negotiation (pure) and the per-connection codec.

/// What this endpoint is willing to do with permessage-deflate.
public struct PerMessageDeflateConfiguration: Sendable, Equatable {
    public var enabled = true
    /// Largest LZ77 window this endpoint uses when compressing (9...15; 8 is honoured as a
    /// Huffman-only stream because zlib refuses raw 8-bit windows).
    public var maxWindowBits = 15
    /// Window the peer is asked to stay within, when it offers `client_max_window_bits`.
    public var peerMaxWindowBits = 15
    /// zlib memLevel (1...9): deflate state is about `2^(window+2) + 2^(memLevel+9)` bytes.
    public var memLevel = 8
    /// zlib compression level (1 fastest ... 9 smallest).
    public var level = 6
    /// Always drop the compression context after each message (saves the window's memory
    /// between messages at some cost in ratio).
    public var noContextTakeover = false
    /// Messages shorter than this are sent uncompressed (RSV1 clear).
    public var minSizeToCompress = 32

    public init() {}
    public static let disabled: Self = { var c = Self(); c.enabled = false; return c }()
}

/// The agreed parameters, as seen from one endpoint.
public struct PerMessageDeflateParameters: Sendable, Equatable {
    /// This endpoint resets its compressor after each message.
    public var localNoContextTakeover = false
    /// The peer resets its compressor after each message (so we reset our decompressor).
    public var peerNoContextTakeover = false
    /// Window this endpoint compresses with (8...15).
    public var localMaxWindowBits = 15
    public init() {}
}

/// One parsed `Sec-WebSocket-Extensions` element: a name and its parameters.
public struct WebSocketExtensionOffer: Sendable, Equatable {
    public var name: String
    public var parameters: [(name: String, value: String?)]
    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.parameters.count == b.parameters.count
            && zip(a.parameters, b.parameters).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses a full header value (`a; x=1, b`) into extensions, handling quoted values. Returns
    /// nil when the syntax is broken.
    public static func parse(_ headerValues: [String]) -> [WebSocketExtensionOffer]? {
        var result: [WebSocketExtensionOffer] = []
        for value in headerValues {
            var elements: [[String]] = [[]]
            var current = ""
            var inQuotes = false
            var escaped = false
            for c in value {
                if inQuotes {
                    if escaped { current.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inQuotes = false } else { current.append(c) }
                    continue
                }
                switch c {
                case "\"": inQuotes = true
                case ";": elements[elements.count - 1].append(current); current = ""
                case ",": elements[elements.count - 1].append(current); current = ""; elements.append([])
                default: current.append(c)
                }
            }
            if inQuotes { return nil }
            elements[elements.count - 1].append(current)
            for parts in elements {
                let trimmed = parts.map { String($0.trimmingOWS()) }
                if trimmed.count == 1 && trimmed[0].isEmpty { continue }  // empty list element
                guard let name = trimmed.first, !name.isEmpty, isToken(name) else { return nil }
                var params: [(name: String, value: String?)] = []
                for p in trimmed.dropFirst() {
                    if let eq = p.firstIndex(of: "=") {
                        let n = String(p[..<eq].trimmingOWS()), v = String(p[p.index(after: eq)...].trimmingOWS())
                        guard isToken(n), !v.isEmpty, isToken(v) else { return nil }
                        params.append((name: n, value: v))
                    } else {
                        guard isToken(p) else { return nil }
                        params.append((name: p, value: nil))
                    }
                }
                result.append(WebSocketExtensionOffer(name: name, parameters: params))
            }
        }
        return result
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }
}

public enum PerMessageDeflateNegotiation {
    static let name = "permessage-deflate"

    private static func windowBits(_ v: String?) -> Int? {
        guard let v, v.utf8.count <= 2, v.first != "0", let n = Int(v), (8...15).contains(n) else { return nil }
        return n
    }

    /// Server side (RFC 7692 §5, §7.1): picks the first acceptable `permessage-deflate` offer.
    /// Returns the response extension value and the parameters, or nil to decline all.
    public static func negotiateAsServer(
        offers: [WebSocketExtensionOffer], configuration: PerMessageDeflateConfiguration
    ) -> (response: String, parameters: PerMessageDeflateParameters)? {
        guard configuration.enabled else { return nil }
        offerLoop: for offer in offers where offer.name.lowercased() == name {
            var seen = Set<String>()
            var serverNoContext = false, clientNoContext = false
            var serverMax: Int? = nil
            var clientMaxOffered = false
            var clientMax: Int? = nil
            for p in offer.parameters {
                let key = p.name.lowercased()
                guard seen.insert(key).inserted else { continue offerLoop }  // duplicate parameter
                switch key {
                case "server_no_context_takeover":
                    guard p.value == nil else { continue offerLoop }
                    serverNoContext = true
                case "client_no_context_takeover":
                    guard p.value == nil else { continue offerLoop }
                    clientNoContext = true
                case "server_max_window_bits":
                    guard let n = windowBits(p.value) else { continue offerLoop }
                    serverMax = n
                case "client_max_window_bits":
                    clientMaxOffered = true
                    if p.value != nil {
                        guard let n = windowBits(p.value) else { continue offerLoop }
                        clientMax = n
                    }
                default:
                    continue offerLoop
                }
            }
            var params = PerMessageDeflateParameters()
            var response = name
            params.localNoContextTakeover = serverNoContext || configuration.noContextTakeover
            if params.localNoContextTakeover { response += "; server_no_context_takeover" }
            params.peerNoContextTakeover = clientNoContext
            if clientNoContext { response += "; client_no_context_takeover" }
            let ourMax = max(8, min(15, configuration.maxWindowBits))
            let serverBits = min(serverMax ?? 15, ourMax)
            params.localMaxWindowBits = serverBits
            if serverMax != nil || serverBits < 15 { response += "; server_max_window_bits=\(serverBits)" }
            if clientMaxOffered {
                let limit = min(clientMax ?? 15, max(8, min(15, configuration.peerMaxWindowBits)))
                if limit < 15 || clientMax != nil { response += "; client_max_window_bits=\(limit)" }
            }
            return (response, params)
        }
        return nil
    }

    /// The offer a client sends.
    public static func clientOffer(_ configuration: PerMessageDeflateConfiguration) -> String? {
        guard configuration.enabled else { return nil }
        var s = name + "; client_max_window_bits"
        if configuration.noContextTakeover { s += "; client_no_context_takeover" }
        if configuration.peerMaxWindowBits < 15 { s += "; server_max_window_bits=\(max(8, configuration.peerMaxWindowBits))" }
        return s
    }

    public struct ResponseError: Error, Equatable, Sendable { public let reason: String }

    /// Client side: checks the server's answer to ``clientOffer(_:)``. nil parameters means the
    /// server declined compression.
    public static func acceptAsClient(
        responseValues: [String], configuration: PerMessageDeflateConfiguration
    ) throws(ResponseError) -> PerMessageDeflateParameters? {
        guard let exts = WebSocketExtensionOffer.parse(responseValues) else { throw ResponseError(reason: "malformed Sec-WebSocket-Extensions") }
        if exts.isEmpty { return nil }
        guard configuration.enabled, exts.count == 1, exts[0].name.lowercased() == name else {
            throw ResponseError(reason: "server accepted an extension that was not offered")
        }
        var params = PerMessageDeflateParameters()
        params.localNoContextTakeover = configuration.noContextTakeover
        var seen = Set<String>()
        for p in exts[0].parameters {
            let key = p.name.lowercased()
            guard seen.insert(key).inserted else { throw ResponseError(reason: "duplicate parameter \(key)") }
            switch key {
            case "server_no_context_takeover":
                guard p.value == nil else { throw ResponseError(reason: "server_no_context_takeover with a value") }
                params.peerNoContextTakeover = true
            case "client_no_context_takeover":
                guard p.value == nil else { throw ResponseError(reason: "client_no_context_takeover with a value") }
                params.localNoContextTakeover = true
            case "server_max_window_bits":
                guard windowBits(p.value) != nil else { throw ResponseError(reason: "invalid server_max_window_bits") }
            case "client_max_window_bits":
                guard let n = windowBits(p.value) else { throw ResponseError(reason: "invalid client_max_window_bits") }
                params.localMaxWindowBits = n
            default:
                throw ResponseError(reason: "unknown parameter \(key)")
            }
        }
        params.localMaxWindowBits = min(params.localMaxWindowBits, max(8, configuration.maxWindowBits))
        return params
    }
}

/// The compression state of one connection: created after negotiation, zlib streams made lazily
/// (an idle connection holds none) and dropped between messages without context takeover.
public final class PerMessageDeflateCodec {

    public let parameters: PerMessageDeflateParameters
    public let configuration: PerMessageDeflateConfiguration
    private var deflater: Deflater?
    private var inflater: Inflater?

    public init(parameters: PerMessageDeflateParameters, configuration: PerMessageDeflateConfiguration) {
        self.parameters = parameters
        self.configuration = configuration
    }

    /// zlib memory currently held by this connection.
    public var memoryInUse: Int {
        (deflater?.approximateMemory ?? 0) + (inflater == nil ? 0 : Inflater.approximateMemory)
    }

    /// Frees the zlib streams when no context has to survive (both directions reset after each
    /// message). Called when a connection goes idle.
    public func releaseMemoryIfStateless() {
        if parameters.localNoContextTakeover { deflater = nil }
        if parameters.peerNoContextTakeover { inflater = nil }
    }

    /// Compresses one message; nil when it should go uncompressed.
    public func compress(_ payload: UnsafeRawBufferPointer) throws(ZlibError) -> [UInt8]? {
        guard payload.count >= configuration.minSizeToCompress else { return nil }
        if deflater == nil {
            let bits = parameters.localMaxWindowBits
            deflater = try Deflater(windowBits: max(9, bits), memLevel: configuration.memLevel, level: configuration.level, huffmanOnly: bits < 9)
        }
        var out: [UInt8] = []
        out.reserveCapacity(payload.count / 2 + 16)
        try deflater!.compressMessage(payload, into: &out)
        if parameters.localNoContextTakeover { deflater!.reset() }
        // An empty deflate output still needs one byte (RFC 7692 §7.2.3.6).
        if out.isEmpty { out = [0x00] }
        return out
    }

    /// Inflates one fragment of a compressed message into `out`. On the final fragment the
    /// `00 00 FF FF` tail is re-added. Returns false when `out` would exceed `limit`.
    public func decompress(_ fragment: UnsafeRawBufferPointer, isFinal: Bool, into out: inout [UInt8], limit: Int) throws(ZlibError) -> Bool {
        if inflater == nil { inflater = try Inflater() }
        let inf = inflater!
        if try inf.inflate(fragment, into: &out, limit: limit) == .limitExceeded { return false }
        if isFinal {
            // Re-add the empty stored block the sender removed (RFC 7692 §7.2.2).
            let tail: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0xFF, 0xFF)
            let r = withUnsafeBytes(of: tail) { t in
                Result { () throws(ZlibError) -> Inflater.Result in try inf.inflate(t, into: &out, limit: limit) }
            }
            if try r.get() == .limitExceeded { return false }
            if parameters.peerNoContextTakeover { inf.reset() }
        }
        return true
    }
}

@available(*, unavailable)
extension PerMessageDeflateCodec: Sendable {}
