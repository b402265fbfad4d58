// RFC 6455 §5.2 base framing: opcodes and frames as plain values.

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes are refused by the decoder.
public enum WebSocketOpcode: UInt8, Sendable, Hashable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// One frame with its payload already unmasked.
public struct WebSocketFrame: Sendable, Equatable {
    public var fin: Bool
    /// RSV1: on the first frame of a message, "this message is compressed" under permessage-deflate.
    public var rsv1: Bool
    public var opcode: WebSocketOpcode
    public var payload: [UInt8]
    /// How many leading payload bytes the decoder already reported through a partial-payload
    /// event (only for text frames arriving in pieces; see ``WebSocketFrameDecoder``).
    public var reportedPrefix: Int = 0

    public init(fin: Bool = true, rsv1: Bool = false, opcode: WebSocketOpcode, payload: [UInt8] = []) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.payload = payload
    }

    public static func == (a: WebSocketFrame, b: WebSocketFrame) -> Bool {
        a.fin == b.fin && a.rsv1 == b.rsv1 && a.opcode == b.opcode && a.payload == b.payload
    }
}

/// Close status codes (RFC 6455 §7.4 and the IANA registry).
public struct WebSocketCloseCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ v: UInt16) { self.rawValue = v }

    public static let normal = WebSocketCloseCode(1000)
    public static let goingAway = WebSocketCloseCode(1001)
    public static let protocolError = WebSocketCloseCode(1002)
    public static let unsupportedData = WebSocketCloseCode(1003)
    /// Never sent on the wire: "no status code was present".
    public static let noStatus = WebSocketCloseCode(1005)
    /// Never sent on the wire: "the connection closed abnormally".
    public static let abnormal = WebSocketCloseCode(1006)
    public static let invalidPayload = WebSocketCloseCode(1007)
    public static let policyViolation = WebSocketCloseCode(1008)
    public static let messageTooBig = WebSocketCloseCode(1009)
    public static let mandatoryExtension = WebSocketCloseCode(1010)
    public static let internalError = WebSocketCloseCode(1011)
    public static let serviceRestart = WebSocketCloseCode(1012)
    public static let tryAgainLater = WebSocketCloseCode(1013)

    /// Whether a peer may send this code in a close frame (RFC 6455 §7.4.1–7.4.2): the
    /// registered codes except 1004–1006 and 1015, and the 3000–4999 ranges.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014: true
        case 3000...4999: true
        default: false
        }
    }

    public var description: String { String(rawValue) }
}

/// Why the peer's bytes broke the protocol; maps onto a close code.
public struct WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public let closeCode: WebSocketCloseCode
    public let reason: String
    public init(_ closeCode: WebSocketCloseCode, _ reason: String) {
        self.closeCode = closeCode
        self.reason = reason
    }
    public var description: String { "\(closeCode.rawValue): \(reason)" }

    static func protocolError(_ r: String) -> Self { .init(.protocolError, r) }
}
