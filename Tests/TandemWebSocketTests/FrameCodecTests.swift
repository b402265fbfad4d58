import Testing
import TandemWebSocket

/// Decodes `bytes` fed in pieces of `chunk` bytes; returns frames, partial texts and the error.
func decodeAll(_ bytes: [UInt8], server: Bool = true, chunk: Int? = nil, maxFrame: Int = 1 << 20, rsv1: Bool = false)
    -> (frames: [WebSocketFrame], partials: [[UInt8]], error: WebSocketProtocolError?)
{
    var d = WebSocketFrameDecoder(expectMasked: server, maxFrameSize: maxFrame)
    d.allowRSV1 = rsv1
    var out: [WebSocketFrameDecoder.Output] = []
    var error: WebSocketProtocolError?
    let step = chunk ?? max(1, bytes.count)
    var i = 0
    while i < bytes.count && error == nil {
        error = d.decode(Array(bytes[i..<min(bytes.count, i + step)]), into: &out)
        i += step
    }
    var frames: [WebSocketFrame] = []
    var partials: [[UInt8]] = []
    for o in out {
        switch o {
        case .frame(let f): frames.append(f)
        case .partialText(let p): partials.append(p)
        }
    }
    return (frames, partials, error)
}

func encode(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false, mask: UInt32? = 0x3D21_FA37) -> [UInt8] {
    var out: [UInt8] = []
    WebSocketFrameEncoder.appendFrame(&out, opcode: opcode, fin: fin, rsv1: rsv1, payload: payload, maskKey: mask)
    return out
}

@Suite struct FrameCodecTests {
    // RFC 6455 §5.7 examples.
    @Test func rfcUnmaskedHello() {
        let r = decodeAll([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F], server: false)
        #expect(r.error == nil)
        #expect(r.frames == [WebSocketFrame(opcode: .text, payload: Array("Hello".utf8))])
    }

    @Test func rfcMaskedHello() {
        let r = decodeAll([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        #expect(r.frames == [WebSocketFrame(opcode: .text, payload: Array("Hello".utf8))])
    }

    @Test func rfcFragmentedUnmaskedHello() {
        let r = decodeAll([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F], server: false)
        #expect(r.frames == [
            WebSocketFrame(fin: false, opcode: .text, payload: Array("Hel".utf8)),
            WebSocketFrame(opcode: .continuation, payload: Array("lo".utf8)),
        ])
    }

    @Test func rfcPingAndLengths() {
        #expect(decodeAll([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F], server: false).frames == [WebSocketFrame(opcode: .ping, payload: Array("Hello".utf8))])
        let p256 = [UInt8](repeating: 7, count: 256)
        #expect(decodeAll([0x82, 0x7E, 0x01, 0x00] + p256, server: false).frames.first?.payload == p256)
        let p64k = [UInt8](repeating: 9, count: 65536)
        #expect(decodeAll([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] + p64k, server: false).frames.first?.payload == p64k)
    }

    @Test func encoderMatchesRFCBytes() {
        #expect(encode(.text, Array("Hello".utf8), mask: nil) == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(encode(.text, Array("Hello".utf8), mask: 0x3D21_FA37) == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        #expect(Array(encode(.binary, [UInt8](repeating: 0, count: 256), mask: nil).prefix(4)) == [0x82, 0x7E, 0x01, 0x00])
        #expect(Array(encode(.binary, [UInt8](repeating: 0, count: 65536), mask: nil).prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    @Test(arguments: [0, 1, 5, 125, 126, 127, 1000, 65535, 65536, 70000])
    func roundTripAtEverySplit(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let bytes = encode(.binary, payload) + encode(.ping, [1, 2, 3]) + encode(.close, [3, 232])
        let chunks = length < 2000 ? Array(1...bytes.count).filter { $0 < 40 || $0 % 97 == 0 } : [1, 3, 1000, 4096, bytes.count]
        for chunk in chunks {
            let r = decodeAll(bytes, chunk: chunk)
            #expect(r.error == nil)
            #expect(r.frames.count == 3)
            #expect(r.frames.first?.payload == payload, "chunk \(chunk)")
            #expect(r.frames.last?.opcode == .close)
        }
    }

    @Test func randomFrameStreamsInRandomChunks() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            var expected: [[UInt8]] = []
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let n = [0, 1, 125, 126, 300, 65535, 65536, 70000][Int.random(in: 0..<8, using: &rng)]
                let seed = UInt8.random(in: 0...255, using: &rng)
                let p = [UInt8](unsafeUninitializedCapacity: n) { b, c in for k in 0..<n { b[k] = UInt8(truncatingIfNeeded: k) &* 7 &+ seed }; c = n }
                expected.append(p)
                bytes += encode(.binary, p, mask: UInt32.random(in: 0...UInt32.max, using: &rng))
            }
            var d = WebSocketFrameDecoder(expectMasked: true, maxFrameSize: 1 << 20)
            var out: [WebSocketFrameDecoder.Output] = []
            var i = 0
            while i < bytes.count {
                let n = min(bytes.count - i, Int.random(in: 1...20_000, using: &rng))
                #expect(d.decode(Array(bytes[i..<i + n]), into: &out) == nil)
                i += n
            }
            let got = out.compactMap { if case .frame(let f) = $0 { return f.payload } else { return nil } }
            #expect(got == expected)
            #expect(d.bufferedByteCount == 0)
        }
    }

    @Test func maskingMatchesByteWiseReference() {
        for offset in 0..<4 {
            for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 100] {
                let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 13 + 1) }
                let key: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
                let expected = data.enumerated().map { $0.element ^ key[($0.offset + offset) % 4] }
                var out = [UInt8](repeating: 0, count: length)
                let k = key.withUnsafeBytes { webSocketMaskKey($0.baseAddress!) }
                data.withUnsafeBytes { src in
                    out.withUnsafeMutableBytes { dst in
                        if length > 0 { webSocketMaskCopy(from: src.baseAddress!, to: dst.baseAddress!, count: length, key: k, offset: offset) }
                    }
                }
                #expect(out == expected, "offset \(offset) length \(length)")
            }
        }
    }

    @Test func protocolViolationsAre1002() {
        func code(_ bytes: [UInt8], server: Bool = true, rsv1: Bool = false) -> UInt16? { decodeAll(bytes, server: server, rsv1: rsv1).error?.closeCode.rawValue }
        #expect(code([0x81, 0x05] + Array("Hello".utf8)) == 1002)  // unmasked from a client
        #expect(code(encode(.text, [1], mask: 1), server: false) == 1002)  // masked from a server
        #expect(code([0x83, 0x80, 0, 0, 0, 0]) == 1002)  // reserved opcode 3
        #expect(code([0x8B, 0x80, 0, 0, 0, 0]) == 1002)  // reserved control opcode 0xB
        #expect(code([0xA1, 0x80, 0, 0, 0, 0]) == 1002)  // RSV2
        #expect(code([0xC1, 0x80, 0, 0, 0, 0]) == 1002)  // RSV1 without deflate
        #expect(code([0xC9, 0x80, 0, 0, 0, 0], rsv1: true) == 1002)  // RSV1 on a ping
        #expect(code([0xC0, 0x80, 0, 0, 0, 0], rsv1: true) == 1002)  // RSV1 on a continuation
        #expect(code([0x09, 0x80, 0, 0, 0, 0]) == 1002)  // fragmented ping
        #expect(code([0x89, 0xFE, 0, 126, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 126)) == 1002)  // control > 125
        #expect(code([0x82, 0xFE, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5]) == 1002)  // non-minimal 16-bit
        #expect(code([0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]) == 1002)  // non-minimal 64-bit
        #expect(code([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) == 1002)  // 64-bit length, high bit set
    }

    @Test func oversizedFrameIs1009BeforeThePayloadArrives() {
        let r = decodeAll([0x82, 0xFE, 0x10, 0x00], maxFrame: 1000)  // announces 4096 bytes, sends none
        #expect(r.error?.closeCode == .messageTooBig)
    }

    @Test func framesBeforeAnErrorAreStillDelivered() {
        let r = decodeAll(encode(.text, Array("ok".utf8)) + [0x83, 0x80, 0, 0, 0, 0])
        #expect(r.frames.count == 1)
        #expect(r.error?.closeCode == .protocolError)
    }

    @Test func partialTextIsReportedOnceInOrder() {
        let text = Array("κόσμε-hello-world".utf8)
        let bytes = encode(.text, text)
        let r = decodeAll(bytes, chunk: 4)
        let reported = r.partials.flatMap { $0 }
        #expect(r.frames.count == 1)
        let prefix = r.frames[0].reportedPrefix
        #expect(reported == Array(text.prefix(prefix)))
        #expect(prefix > 0 && prefix < text.count)
    }

    @Test func closePayloadTruncatesOnCharacterBoundary() {
        let p = WebSocketFrameEncoder.closePayload(code: .normal, reason: String(repeating: "é", count: 100))
        #expect(p.count <= 125)
        #expect(UTF8Validator.isValid(Array(p.dropFirst(2))))
    }
}
