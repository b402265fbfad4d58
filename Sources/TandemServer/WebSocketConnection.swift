// A WebSocket on a loop: the connection handler that runs the decoder and the protocol state
// machine, and the API an endpoint uses to send and close.
public import TandemLoop
public import TandemWebSocket
import TandemCrypto

/// What an endpoint does with a WebSocket. Called on the connection's loop.
public protocol WebSocketEndpoint: AnyObject {
    func webSocketOpened(_ ws: WebSocketConnection)
    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage)
    /// The socket is gone. `code` is the peer's close code when there was a close handshake.
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String)
    /// Output fell below the low watermark again after having been above the high one.
    func webSocketWritable(_ ws: WebSocketConnection)
}

extension WebSocketEndpoint {
    public func webSocketOpened(_ ws: WebSocketConnection) {}
    public func webSocketWritable(_ ws: WebSocketConnection) {}
}

/// Timing and size settings for one WebSocket.
public struct WebSocketOptions: Sendable {
    public var maxFrameSize = 16 * 1024 * 1024
    public var maxMessageSize = 16 * 1024 * 1024
    /// Nanoseconds between keepalive pings on a quiet connection; 0 disables.
    public var pingIntervalNanos: UInt64 = 30_000_000_000
    public var pingTimeoutNanos: UInt64 = 20_000_000_000
    /// Nothing received for this long closes the connection (1001).
    public var idleTimeoutNanos: UInt64 = 300_000_000_000
    /// After our close frame, how long to wait for the peer's.
    public var closeTimeoutNanos: UInt64 = 5_000_000_000
    public var deflate = PerMessageDeflateConfiguration()
    public init() {}
}

/// One WebSocket connection (server or client side). Loop-confined.
public final class WebSocketConnection: ConnectionHandler {
    public let connection: Connection
    public let isClient: Bool
    public let subprotocol: String?
    public let options: WebSocketOptions
    public var endpoint: (any WebSocketEndpoint)?
    /// Free for the endpoint's use (e.g. a session object).
    public var userData: AnyObject?
    /// Called once when the transport is released (the server uses it for its connection count).
    public var onTransportClosed: (() -> Void)?

    private var decoder: WebSocketFrameDecoder
    private var machine: WebSocketConnectionMachine
    private let codec: PerMessageDeflateCodec?
    private var outputs: [WebSocketFrameDecoder.Output] = []
    private var lastReceived: UInt64
    private var pingSentAt: UInt64 = 0
    private var pingTimer: UInt64 = 0
    private var closeCode: WebSocketCloseCode?
    private var closeReason = ""
    private var notifiedClosed = false
    private var maskPool = MaskKeyPool()

    public private(set) var messagesReceived = 0
    public private(set) var messagesSent = 0

    public init(
        connection: Connection, isClient: Bool, subprotocol: String?, deflate: PerMessageDeflateParameters?,
        options: WebSocketOptions, endpoint: any WebSocketEndpoint
    ) {
        self.connection = connection
        self.isClient = isClient
        self.subprotocol = subprotocol
        self.options = options
        self.endpoint = endpoint
        let codec = deflate.map { PerMessageDeflateCodec(parameters: $0, configuration: options.deflate) }
        self.codec = codec
        decoder = WebSocketFrameDecoder(expectMasked: !isClient, maxFrameSize: options.maxFrameSize)
        decoder.allowRSV1 = codec != nil
        machine = WebSocketConnectionMachine(maxMessageSize: options.maxMessageSize, codec: codec)
        lastReceived = monotonicNanos()
    }

    /// Takes over the connection: installs itself as handler, feeds bytes that arrived with the
    /// handshake, starts keepalive.
    public func start(leftover: [UInt8]) {
        connection.handler = self
        connection.clearDeadline()
        LiveWebSockets.on(connection.loop).add(self)
        endpoint?.webSocketOpened(self)
        schedulePing()
        if !leftover.isEmpty { leftover.withUnsafeBytes { connection(connection, read: $0) } }
    }

    public var loop: Loop { connection.loop }
    public var isOpen: Bool { machine.state == .open && !connection.isClosed }
    /// Whether output is below the high watermark (see ``WebSocketEndpoint/webSocketWritable(_:)``).
    public var isWritable: Bool { connection.isWritable }
    /// zlib memory this connection holds right now.
    public var compressionMemory: Int { codec?.memoryInUse ?? 0 }
    public var compressionNegotiated: Bool { codec != nil }

    // MARK: Sending

    /// Sends a message (compressed when negotiated and large enough).
    public func send(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        guard machine.state == .open else { return }
        messagesSent += 1
        if let codec {
            do {
                if let compressed = try codec.compress(payload) {
                    compressed.withUnsafeBytes { writeFrame(opcode, rsv1: true, $0) }
                    return
                }
            } catch {
                return fail(WebSocketProtocolError(.internalError, "compression failed"))
            }
        }
        writeFrame(opcode, rsv1: false, payload)
    }

    public func send(_ opcode: WebSocketOpcode, _ payload: [UInt8]) { payload.withUnsafeBytes { send(opcode, $0) } }
    public func send(text: String) {
        var s = text
        s.withUTF8 { send(.text, UnsafeRawBufferPointer($0)) }
    }

    public func ping(_ payload: [UInt8] = []) {
        guard machine.state == .open else { return }
        payload.withUnsafeBytes { writeFrame(.ping, rsv1: false, $0) }
    }

    private func writeFrame(_ opcode: WebSocketOpcode, rsv1: Bool, _ payload: UnsafeRawBufferPointer) {
        let key: UInt32? = isClient ? maskPool.next() : nil
        let header = WebSocketFrameEncoder.headerSize(payloadLength: payload.count, masked: key != nil)
        connection.withOutputBuffer(maxCount: header + payload.count) { p in
            let h = writeHeader(p, opcode: opcode, rsv1: rsv1, length: payload.count, key: key)
            if payload.count > 0 {
                if let key {
                    webSocketMaskCopy(from: payload.baseAddress!, to: p + h, count: payload.count, key: key)
                } else {
                    (p + h).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
                }
            }
            return h + payload.count
        }
    }

    private func writeHeader(_ p: UnsafeMutableRawPointer, opcode: WebSocketOpcode, rsv1: Bool, length: Int, key: UInt32?) -> Int {
        var b0 = opcode.rawValue | 0x80
        if rsv1 { b0 |= 0x40 }
        p.storeBytes(of: b0, as: UInt8.self)
        let m: UInt8 = key == nil ? 0 : 0x80
        var n: Int
        if length < 126 {
            p.storeBytes(of: m | UInt8(length), toByteOffset: 1, as: UInt8.self)
            n = 2
        } else if length <= 0xFFFF {
            p.storeBytes(of: m | 126, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            n = 4
        } else {
            p.storeBytes(of: m | 127, toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
            n = 10
        }
        if let key {
            p.storeBytes(of: key, toByteOffset: n, as: UInt32.self)
            n += 4
        }
        return n
    }

    /// Starts the close handshake with `code`; the transport closes when the peer answers or
    /// after the close timeout.
    public func close(code: WebSocketCloseCode = .normal, reason: String = "") {
        guard machine.startClose() else { return }
        sendCloseFrame(code: code, reason: reason)
        closeCode = code
        closeReason = reason
        connection.setDeadline(afterNanos: options.closeTimeoutNanos)
    }

    private func sendCloseFrame(code: WebSocketCloseCode?, reason: String) {
        let payload = WebSocketFrameEncoder.closePayload(code: code, reason: reason)
        payload.withUnsafeBytes { writeFrame(.close, rsv1: false, $0) }
    }

    private func fail(_ error: WebSocketProtocolError) {
        if case .fail(let e) = machine.decoderFailed(error) {
            sendCloseFrame(code: e.closeCode, reason: e.reason)
            closeCode = e.closeCode
            closeReason = e.reason
        }
        decoder.reset()
        connection.close()
    }

    // MARK: Receiving

    public func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        lastReceived = monotonicNanos()
        if machine.state == .closed { return }
        let error = decoder.decode(bytes, into: &outputs)
        var i = 0
        while i < outputs.count && machine.state != .closed {
            let out = outputs[i]
            i += 1
            handle(machine.received(out))
        }
        outputs.removeAll(keepingCapacity: outputs.capacity <= 64)
        if let error, machine.state != .closed { handle(machine.decoderFailed(error)) }
    }

    private func handle(_ action: WebSocketConnectionMachine.Action) {
        switch action {
        case .none:
            break
        case .deliver(let message):
            messagesReceived += 1
            endpoint?.webSocket(self, received: message)
        case .sendPong(let payload):
            payload.withUnsafeBytes { writeFrame(.pong, rsv1: false, $0) }
        case .receivedPong:
            pingSentAt = 0
        case .replyClose(let code, let reason):
            closeCode = code
            closeReason = reason
            sendCloseFrame(code: code, reason: "")
            decoder.reset()
            // RFC 6455 §7.1.1: the server closes the TCP connection first; a client waits.
            if isClient { connection.setDeadline(afterNanos: options.closeTimeoutNanos) } else { connection.close() }
        case .closeHandshakeComplete(let code, let reason):
            closeCode = code
            closeReason = reason
            decoder.reset()
            if isClient { connection.setDeadline(afterNanos: options.closeTimeoutNanos) } else { connection.close() }
        case .fail(let e):
            sendCloseFrame(code: e.closeCode, reason: e.reason)
            closeCode = e.closeCode
            closeReason = e.reason
            decoder.reset()
            connection.close()
        }
    }

    public func connectionReadEOF(_ connection: Connection) {
        machine.transportClosed()
        connection.close()
    }

    public func connectionWritabilityChanged(_ connection: Connection) {
        if connection.isWritable { endpoint?.webSocketWritable(self) }
    }

    public func connectionDeadlinePassed(_ connection: Connection) {
        // Close handshake timed out: drop the transport.
        connection.close(graceful: false)
    }

    public func connectionClosed(_ connection: Connection, error: (any Error)?) {
        machine.transportClosed()
        if pingTimer != 0 { connection.loop.cancelTimer(pingTimer) }
        guard !notifiedClosed else { return }
        notifiedClosed = true
        LiveWebSockets.on(connection.loop).remove(self)
        onTransportClosed?()
        onTransportClosed = nil
        let ep = endpoint
        endpoint = nil
        ep?.webSocketClosed(self, code: closeCode ?? .abnormal, reason: closeReason)
    }

    // MARK: Keepalive

    /// One timer per connection drives keepalive and the idle timeout. It fires every ping
    /// interval (or idle timeout, whichever is shorter), and a pong timeout after a ping.
    private func schedulePing(after override: UInt64? = nil) {
        let interval = options.pingIntervalNanos, idle = options.idleTimeoutNanos
        guard interval > 0 || idle > 0 else { return }
        let tick = override ?? (interval > 0 && idle > 0 ? min(interval, idle) : max(interval, idle))
        pingTimer = connection.loop.schedule(afterNanos: tick) { [weak self] in self?.pingTick() }
    }

    private func pingTick() {
        pingTimer = 0
        guard machine.state == .open, !connection.isClosed else { return }
        let now = monotonicNanos()
        if options.idleTimeoutNanos > 0 && now - lastReceived >= options.idleTimeoutNanos {
            close(code: .goingAway, reason: "idle timeout")
            return
        }
        if pingSentAt != 0 && now - pingSentAt >= options.pingTimeoutNanos {
            close(code: .goingAway, reason: "ping timeout")
            return
        }
        if options.pingIntervalNanos > 0 && pingSentAt == 0 && now - lastReceived >= options.pingIntervalNanos {
            pingSentAt = now
            ping()
            schedulePing(after: min(options.pingTimeoutNanos, options.pingIntervalNanos))
            return
        }
        schedulePing()
    }
}

@available(*, unavailable)
extension WebSocketConnection: Sendable {}

/// Client masking keys from OpenSSL's CSPRNG, fetched 64 at a time.
struct MaskKeyPool {
    private var keys: [UInt32] = []

    mutating func next() -> UInt32 {
        if keys.isEmpty {
            let bytes = SecureRandom.bytes(256)
            keys = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        }
        return keys.removeLast()
    }
}
