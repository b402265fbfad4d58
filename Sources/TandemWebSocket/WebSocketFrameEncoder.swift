// RFC 6455 §5.2 frame encoding into an output byte array. No I/O, no allocation beyond `out`.

public enum WebSocketFrameEncoder {
    /// Size of the header for a payload of `length` bytes.
    @inlinable
    public static func headerSize(payloadLength length: Int, masked: Bool) -> Int {
        (length < 126 ? 2 : length <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0)
    }

    /// Appends a frame's header to `out`. With `maskKey` the payload that follows must be masked
    /// by the caller (``appendFrame(_:opcode:fin:rsv1:payload:maskKey:)`` does both).
    @inlinable
    public static func appendHeader(
        _ out: inout [UInt8], opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false, payloadLength length: Int,
        maskKey: UInt32? = nil
    ) {
        var b0 = opcode.rawValue
        if fin { b0 |= 0x80 }
        if rsv1 { b0 |= 0x40 }
        out.append(b0)
        let m: UInt8 = maskKey == nil ? 0 : 0x80
        if length < 126 {
            out.append(m | UInt8(length))
        } else if length <= 0xFFFF {
            out.append(m | 126)
            out.append(UInt8(length >> 8))
            out.append(UInt8(length & 0xFF))
        } else {
            out.append(m | 127)
            let v = UInt64(length)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
        }
        if let k = maskKey {
            out.append(UInt8(truncatingIfNeeded: k))
            out.append(UInt8(truncatingIfNeeded: k >> 8))
            out.append(UInt8(truncatingIfNeeded: k >> 16))
            out.append(UInt8(truncatingIfNeeded: k >> 24))
        }
    }

    /// Appends a whole frame (header and payload, masked when `maskKey` is given) to `out`.
    @inlinable
    public static func appendFrame(
        _ out: inout [UInt8], opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false,
        payload: UnsafeRawBufferPointer, maskKey: UInt32? = nil
    ) {
        appendHeader(&out, opcode: opcode, fin: fin, rsv1: rsv1, payloadLength: payload.count, maskKey: maskKey)
        guard payload.count > 0 else { return }
        if let k = maskKey {
            let start = out.count
            out.append(contentsOf: payload)
            out.withUnsafeMutableBytes { o in
                let p = o.baseAddress! + start
                webSocketMaskCopy(from: p, to: p, count: payload.count, key: k)
            }
        } else {
            out.append(contentsOf: payload)
        }
    }

    @inlinable
    public static func appendFrame(
        _ out: inout [UInt8], opcode: WebSocketOpcode, fin: Bool = true, rsv1: Bool = false, payload: [UInt8],
        maskKey: UInt32? = nil
    ) {
        payload.withUnsafeBytes { appendFrame(&out, opcode: opcode, fin: fin, rsv1: rsv1, payload: $0, maskKey: maskKey) }
    }

    /// A close frame's payload: the code in network order followed by a UTF-8 reason, truncated
    /// (on a character boundary) so the payload stays within 125 bytes.
    public static func closePayload(code: WebSocketCloseCode?, reason: String = "") -> [UInt8] {
        guard let code else { return [] }
        var p: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        var r = Array(reason.utf8)
        if r.count > 123 {
            var cut = 123
            while cut > 0 && r[cut] & 0xC0 == 0x80 { cut -= 1 }
            r = Array(r[..<cut])
        }
        p.append(contentsOf: r)
        return p
    }
}
