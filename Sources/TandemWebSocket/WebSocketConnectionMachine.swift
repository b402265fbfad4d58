// The per-connection protocol state machine (RFC 6455 §5.4–§5.5, §7; RFC 7692 §6): decoded frames
// in, actions out. It reassembles fragments, validates UTF-8 incrementally, inflates compressed
// messages within a size bound, answers pings and runs the close handshake. No I/O.

/// A complete data message.
public struct WebSocketMessage: Sendable, Equatable {
    /// `.text` or `.binary`.
    public var opcode: WebSocketOpcode
    public var payload: [UInt8]
    public init(opcode: WebSocketOpcode, payload: [UInt8]) {
        self.opcode = opcode
        self.payload = payload
    }
    public init(text: String) { self.init(opcode: .text, payload: Array(text.utf8)) }
    public var text: String? { opcode == .text ? String(decoding: payload, as: UTF8.self) : nil }
}

public struct WebSocketConnectionMachine {
    public enum State: Sendable, Equatable {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        case closed
    }

    /// What the connection must do after an input.
    public enum Action: Equatable {
        case none
        case deliver(WebSocketMessage)
        case sendPong([UInt8])
        case receivedPong([UInt8])
        /// The peer started the close handshake: send this close frame back, then close.
        case replyClose(code: WebSocketCloseCode?, reason: String)
        /// The peer answered our close frame: close the transport.
        case closeHandshakeComplete(code: WebSocketCloseCode?, reason: String)
        /// The peer broke the protocol: send a close frame with this code, then close.
        case fail(WebSocketProtocolError)
    }

    public private(set) var state: State = .open
    public let maxMessageSize: Int
    public let codec: PerMessageDeflateCodec?

    private var messageOpcode: WebSocketOpcode? = nil
    private var messageCompressed = false
    private var buffer: [UInt8] = []
    private var validator = UTF8Validator()

    public init(maxMessageSize: Int, codec: PerMessageDeflateCodec? = nil) {
        self.maxMessageSize = maxMessageSize
        self.codec = codec
    }

    /// Whether a message is being reassembled.
    public var isReceivingMessage: Bool { messageOpcode != nil }

    public mutating func received(_ output: WebSocketFrameDecoder.Output) -> Action {
        switch output {
        case .frame(let f): return received(frame: f)
        case .partialText(let bytes): return receivedPartialText(bytes)
        }
    }

    /// The decoder found a protocol error.
    public mutating func decoderFailed(_ error: WebSocketProtocolError) -> Action {
        fail(error)
    }

    /// We want to close: returns true when a close frame must be sent now.
    public mutating func startClose() -> Bool {
        guard state == .open else { return false }
        state = .closeSent
        return true
    }

    /// The transport is gone.
    public mutating func transportClosed() {
        state = .closed
        buffer = []
    }

    private mutating func fail(_ e: WebSocketProtocolError) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        buffer = []
        messageOpcode = nil
        return .fail(e)
    }

    private mutating func receivedPartialText(_ bytes: [UInt8]) -> Action {
        guard state == .open else { return .none }
        if !validator.validate(bytes) { return fail(WebSocketProtocolError(.invalidPayload, "invalid UTF-8 in text message")) }
        return .none
    }

    public mutating func received(frame: WebSocketFrame) -> Action {
        if state == .closed { return .none }
        switch frame.opcode {
        case .ping:
            return state == .open ? .sendPong(frame.payload) : .none
        case .pong:
            return .receivedPong(frame.payload)
        case .close:
            return receivedClose(frame.payload)
        case .text, .binary:
            if messageOpcode != nil { return fail(.protocolError("new data frame while a fragmented message is in progress")) }
            if state != .open { return .none }
            messageOpcode = frame.opcode
            messageCompressed = frame.rsv1
            return receivedData(frame)
        case .continuation:
            if messageOpcode == nil { return fail(.protocolError("continuation frame without a message in progress")) }
            if state != .open { return .none }
            return receivedData(frame)
        }
    }

    private mutating func receivedData(_ frame: WebSocketFrame) -> Action {
        let isText = messageOpcode == .text
        if messageCompressed {
            guard let codec else { return fail(.protocolError("compressed message without permessage-deflate")) }
            let before = buffer.count
            let ok: Bool
            do {
                ok = try frame.payload.withUnsafeBytes { (p) throws(ZlibError) -> Bool in
                    try codec.decompress(p, isFinal: frame.fin, into: &buffer, limit: maxMessageSize)
                }
            } catch {
                return fail(WebSocketProtocolError(.invalidPayload, "invalid compressed data"))
            }
            if !ok { return fail(WebSocketProtocolError(.messageTooBig, "message exceeds \(maxMessageSize) bytes")) }
            if isText {
                let valid = buffer.withUnsafeBytes { validator.validate(UnsafeRawBufferPointer(rebasing: $0[before...])) }
                if !valid { return fail(WebSocketProtocolError(.invalidPayload, "invalid UTF-8 in text message")) }
            }
        } else {
            if buffer.count + frame.payload.count > maxMessageSize {
                return fail(WebSocketProtocolError(.messageTooBig, "message exceeds \(maxMessageSize) bytes"))
            }
            if isText && frame.payload.count > frame.reportedPrefix {
                let valid = frame.payload.withUnsafeBytes { validator.validate(UnsafeRawBufferPointer(rebasing: $0[frame.reportedPrefix...])) }
                if !valid { return fail(WebSocketProtocolError(.invalidPayload, "invalid UTF-8 in text message")) }
            }
            if frame.fin && buffer.isEmpty {
                // Single-frame message: hand the payload over without copying.
                return finish(payload: frame.payload)
            }
            buffer.append(contentsOf: frame.payload)
        }
        guard frame.fin else { return .none }
        let payload = buffer
        buffer = []
        return finish(payload: payload)
    }

    private mutating func finish(payload: [UInt8]) -> Action {
        let opcode = messageOpcode!
        messageOpcode = nil
        messageCompressed = false
        if opcode == .text {
            let complete = validator.isComplete
            validator = UTF8Validator()
            if !complete { return fail(WebSocketProtocolError(.invalidPayload, "text message ends inside a UTF-8 sequence")) }
        }
        return .deliver(WebSocketMessage(opcode: opcode, payload: payload))
    }

    private mutating func receivedClose(_ payload: [UInt8]) -> Action {
        var code: WebSocketCloseCode? = nil
        var reason = ""
        if payload.count == 1 { return fail(.protocolError("close frame with a 1-byte payload")) }
        if payload.count >= 2 {
            let c = WebSocketCloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard c.isValidOnWire else { return fail(.protocolError("invalid close code \(c.rawValue)")) }
            let r = Array(payload[2...])
            guard UTF8Validator.isValid(r) else { return fail(WebSocketProtocolError(.invalidPayload, "close reason is not UTF-8")) }
            code = c
            reason = String(decoding: r, as: UTF8.self)
        }
        switch state {
        case .open:
            state = .closed
            buffer = []
            return .replyClose(code: code ?? .normal, reason: "")
        case .closeSent:
            state = .closed
            return .closeHandshakeComplete(code: code, reason: reason)
        case .closed:
            return .none
        }
    }
}

@available(*, unavailable)
extension WebSocketConnectionMachine: Sendable {}
