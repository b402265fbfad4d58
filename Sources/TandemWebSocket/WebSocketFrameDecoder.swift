// RFC 6455 §5.2 incremental frame decoder: bytes in, unmasked frames out. No I/O.

/// Decodes frames from a byte stream, checking every header rule as soon as the header is known,
/// before any payload is buffered.
///
/// Bytes are parsed straight from the caller's buffer; only an incomplete tail is copied and
/// kept (and its storage released once consumed), so an idle connection holds no buffer.
public struct WebSocketFrameDecoder: Sendable {
    /// What one call to ``decode(_:into:)`` found, in wire order.
    public enum Output: Sendable, Equatable {
        case frame(WebSocketFrame)
        /// Newly arrived, unmasked payload bytes of an incomplete uncompressed text frame, so
        /// UTF-8 can be checked before the frame completes (Autobahn 6.4.*: "fail fast").
        case partialText([UInt8])
    }

    /// Largest frame payload accepted; a larger one fails with 1009.
    public var maxFrameSize: Int
    /// Set once permessage-deflate is negotiated: RSV1 then marks compressed messages.
    public var allowRSV1 = false
    /// Whether frames from the peer must be masked (a server's view) or unmasked (a client's).
    public let expectMasked: Bool

    private var pending: [UInt8] = []
    private var partialReported = 0
    /// Whether the message being received is uncompressed text (continuations inherit it).
    private var inPlainTextMessage = false

    public init(expectMasked: Bool, maxFrameSize: Int) {
        self.expectMasked = expectMasked
        self.maxFrameSize = maxFrameSize
    }

    /// Bytes held for an incomplete frame.
    public var bufferedByteCount: Int { pending.count }

    private struct Header {
        var fin: Bool
        var rsv1: Bool
        var opcode: WebSocketOpcode
        var headerLength: Int
        var payloadLength: Int
        var maskKey: UInt32
    }

    private enum Step {
        case frame(WebSocketFrame, consumed: Int)
        case needMore(Header?)
    }

    /// Decodes every complete frame in `pending + input`, appending them to `out`. Returns the
    /// protocol error that stopped decoding, if any; frames before it are still in `out`.
    public mutating func decode(_ input: UnsafeRawBufferPointer, into out: inout [Output]) -> WebSocketProtocolError? {
        var input = input
        if !pending.isEmpty {
            // Complete the frame that straddles reads by moving over only the bytes it still
            // needs; everything after it is parsed in place, so large frames are copied once.
            while !pending.isEmpty && !input.isEmpty {
                let parsed = pending.withUnsafeBytes { p in Result { () throws(WebSocketProtocolError) -> Step in try parseFrame(p) } }
                guard case .success(let step) = parsed else {
                    if case .failure(let e) = parsed { return e }
                    return nil
                }
                let want: Int
                switch step {
                case .needMore(let h?): want = h.headerLength + h.payloadLength - pending.count
                case .needMore(nil): want = min(14, input.count)  // the header is still incomplete
                case .frame: want = 0
                }
                let take = min(want, input.count)
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[0..<take]))
                input = UnsafeRawBufferPointer(rebasing: input[take...])
                let (consumed, error) = pending.withUnsafeBytes { decodeFrames($0, into: &out) }
                if let error { return error }
                if consumed > 0 {
                    pending.removeSubrange(0..<consumed)
                    if pending.isEmpty { pending = [] }
                }
            }
            if !pending.isEmpty {
                reportPartial(into: &out)
                return nil
            }
        }
        let (consumed, error) = decodeFrames(input, into: &out)
        if error == nil && consumed < input.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[consumed...]))
            reportPartial(into: &out)
        }
        return error
    }

    public mutating func decode(_ input: [UInt8], into out: inout [Output]) -> WebSocketProtocolError? {
        input.withUnsafeBytes { decode($0, into: &out) }
    }

    /// Drops any buffered bytes (after the connection failed or closed).
    public mutating func reset() {
        pending = []
        partialReported = 0
        inPlainTextMessage = false
    }

    private mutating func decodeFrames(_ buf: UnsafeRawBufferPointer, into out: inout [Output]) -> (Int, WebSocketProtocolError?) {
        var offset = 0
        while offset < buf.count {
            do {
                switch try parseFrame(UnsafeRawBufferPointer(rebasing: buf[offset...])) {
                case .frame(var frame, let consumed):
                    frame.reportedPrefix = partialReported
                    partialReported = 0
                    track(frame)
                    out.append(.frame(frame))
                    offset += consumed
                case .needMore:
                    return (offset, nil)
                }
            } catch {
                return (offset, error)
            }
        }
        return (offset, nil)
    }

    private mutating func track(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .text: inPlainTextMessage = !frame.fin && !frame.rsv1
        case .binary: inPlainTextMessage = false
        case .continuation: if frame.fin { inPlainTextMessage = false }
        default: break
        }
    }

    /// Reports not-yet-reported payload bytes of the incomplete frame held in `pending`.
    private mutating func reportPartial(into out: inout [Output]) {
        guard !pending.isEmpty else { return }
        let step: Step? = pending.withUnsafeBytes { try? parseFrame($0) }
        guard case .needMore(let h?) = step else { return }
        let isPlainText = (h.opcode == .text && !h.rsv1) || (h.opcode == .continuation && inPlainTextMessage)
        guard isPlainText else { return }
        let available = pending.count - h.headerLength
        guard available > partialReported else { return }
        let n = available - partialReported
        var chunk = [UInt8](repeating: 0, count: n)
        pending.withUnsafeBytes { p in
            chunk.withUnsafeMutableBytes { c in
                let src = p.baseAddress! + h.headerLength + partialReported
                if expectMasked {
                    webSocketMaskCopy(from: src, to: c.baseAddress!, count: n, key: h.maskKey, offset: partialReported & 3)
                } else {
                    c.baseAddress!.copyMemory(from: src, byteCount: n)
                }
            }
        }
        partialReported = available
        out.append(.partialText(chunk))
    }

    private func parseFrame(_ p: UnsafeRawBufferPointer) throws(WebSocketProtocolError) -> Step {
        let n = p.count
        guard n >= 2 else { return .needMore(nil) }
        let b0 = p[0], b1 = p[1]
        let fin = b0 & 0x80 != 0
        let rsv1 = b0 & 0x40 != 0
        if b0 & 0x30 != 0 { throw .protocolError("RSV2/RSV3 set without a negotiated extension") }
        guard let opcode = WebSocketOpcode(rawValue: b0 & 0x0F) else { throw .protocolError("reserved opcode \(b0 & 0x0F)") }
        if rsv1 && (!allowRSV1 || opcode.isControl || opcode == .continuation) {
            throw .protocolError(allowRSV1 ? "RSV1 set on a control or continuation frame" : "RSV1 set without permessage-deflate")
        }
        let masked = b1 & 0x80 != 0
        if masked != expectMasked { throw .protocolError(expectMasked ? "client frame not masked" : "server frame masked") }
        var length = Int(b1 & 0x7F)
        var headerLength = 2
        if opcode.isControl {
            if !fin { throw .protocolError("fragmented control frame") }
            if length > 125 { throw .protocolError("control frame payload over 125 bytes") }
        }
        if length == 126 {
            guard n >= 4 else { return .needMore(nil) }
            length = Int(p[2]) << 8 | Int(p[3])
            if length < 126 { throw .protocolError("non-minimal 16-bit length") }
            headerLength = 4
        } else if length == 127 {
            guard n >= 10 else { return .needMore(nil) }
            var v: UInt64 = 0
            for i in 2..<10 { v = v << 8 | UInt64(p[i]) }
            if v >> 63 != 0 { throw .protocolError("64-bit length with the high bit set") }
            if v < 65536 { throw .protocolError("non-minimal 64-bit length") }
            if v > UInt64(maxFrameSize) { throw WebSocketProtocolError(.messageTooBig, "frame exceeds \(maxFrameSize) bytes") }
            length = Int(v)
            headerLength = 10
        }
        if length > maxFrameSize { throw WebSocketProtocolError(.messageTooBig, "frame exceeds \(maxFrameSize) bytes") }
        var key: UInt32 = 0
        if masked {
            guard n >= headerLength + 4 else { return .needMore(nil) }
            key = webSocketMaskKey(p.baseAddress! + headerLength)
            headerLength += 4
        }
        let header = Header(fin: fin, rsv1: rsv1, opcode: opcode, headerLength: headerLength, payloadLength: length, maskKey: key)
        guard n >= headerLength + length else { return .needMore(header) }
        var payload: [UInt8]
        if length == 0 {
            payload = []
        } else {
            // Copy, then unmask in place. (`init(unsafeUninitializedCapacity:)` looked up the
            // array's generic metadata at run time on every call: 5% of pipelined echo.)
            payload = Array(UnsafeRawBufferPointer(rebasing: p[headerLength..<headerLength + length]))
            if masked {
                payload.withUnsafeMutableBytes { b in
                    webSocketMaskCopy(from: b.baseAddress!, to: b.baseAddress!, count: length, key: key)
                }
            }
        }
        return .frame(WebSocketFrame(fin: fin, rsv1: rsv1, opcode: opcode, payload: payload), consumed: headerLength + length)
    }
}
