import Testing
import TandemWebSocket

private func frame(_ op: WebSocketOpcode, _ p: [UInt8], fin: Bool = true, rsv1: Bool = false) -> WebSocketFrame {
    WebSocketFrame(fin: fin, rsv1: rsv1, opcode: op, payload: p)
}
private func closePayload(_ code: UInt16, _ reason: String = "") -> [UInt8] { [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8) }

@Suite struct ConnectionMachineTests {
    @Test func reassemblesFragmentsAroundControlFrames() {
        var m = WebSocketConnectionMachine(maxMessageSize: 1000)
        #expect(m.received(frame: frame(.text, Array("Hel".utf8), fin: false)) == .none)
        #expect(m.received(frame: frame(.ping, [1])) == .sendPong([1]))
        #expect(m.received(frame: frame(.continuation, Array("lo".utf8))) == .deliver(WebSocketMessage(text: "Hello")))
        #expect(!m.isReceivingMessage)
    }

    @Test func fragmentationRulesAreEnforced() {
        var a = WebSocketConnectionMachine(maxMessageSize: 1000)
        guard case .fail(let e) = a.received(frame: frame(.continuation, [1])) else { Issue.record(); return }
        #expect(e.closeCode == .protocolError)
        var b = WebSocketConnectionMachine(maxMessageSize: 1000)
        _ = b.received(frame: frame(.binary, [1], fin: false))
        guard case .fail(let e2) = b.received(frame: frame(.text, [1])) else { Issue.record(); return }
        #expect(e2.closeCode == .protocolError)
    }

    @Test func invalidUTF8FailsFastAcrossFragments() {
        var m = WebSocketConnectionMachine(maxMessageSize: 1000)
        #expect(m.received(frame: frame(.text, [0xCE, 0xBA, 0xE1], fin: false)) == .none)  // valid so far
        guard case .fail(let e) = m.received(frame: frame(.continuation, [0x28], fin: false)) else { Issue.record(); return }
        #expect(e.closeCode == .invalidPayload)
    }

    @Test func textEndingMidSequenceFails() {
        var m = WebSocketConnectionMachine(maxMessageSize: 1000)
        guard case .fail(let e) = m.received(frame: frame(.text, [0x41, 0xE2, 0x82])) else { Issue.record(); return }
        #expect(e.closeCode == .invalidPayload)
    }

    @Test func messageSizeLimitIs1009() {
        var m = WebSocketConnectionMachine(maxMessageSize: 10)
        _ = m.received(frame: frame(.binary, [UInt8](repeating: 0, count: 8), fin: false))
        guard case .fail(let e) = m.received(frame: frame(.continuation, [UInt8](repeating: 0, count: 8))) else { Issue.record(); return }
        #expect(e.closeCode == .messageTooBig)
    }

    @Test func closeHandshakeAsResponder() {
        var m = WebSocketConnectionMachine(maxMessageSize: 100)
        #expect(m.received(frame: frame(.close, closePayload(1001, "bye"))) == .replyClose(code: .goingAway, reason: ""))
        #expect(m.state == .closed)
        #expect(m.received(frame: frame(.text, [0x41])) == .none)
    }

    @Test func emptyCloseIsAnsweredWith1000() {
        var m = WebSocketConnectionMachine(maxMessageSize: 100)
        #expect(m.received(frame: frame(.close, [])) == .replyClose(code: .normal, reason: ""))
    }

    @Test func closeHandshakeAsInitiator() {
        var m = WebSocketConnectionMachine(maxMessageSize: 100)
        let first = m.startClose(), second = m.startClose()
        #expect(first && !second)
        #expect(m.received(frame: frame(.text, [0x41])) == .none)  // data after our close is dropped
        #expect(m.received(frame: frame(.close, closePayload(1000))) == .closeHandshakeComplete(code: .normal, reason: ""))
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
    func invalidCloseCodesAre1002(code: UInt16) {
        var m = WebSocketConnectionMachine(maxMessageSize: 100)
        guard case .fail(let e) = m.received(frame: frame(.close, closePayload(code))) else { Issue.record("\(code)"); return }
        #expect(e.closeCode == .protocolError)
    }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    func validCloseCodesAreEchoed(code: UInt16) {
        var m = WebSocketConnectionMachine(maxMessageSize: 100)
        #expect(m.received(frame: frame(.close, closePayload(code))) == .replyClose(code: WebSocketCloseCode(code), reason: ""))
    }

    @Test func closeWithInvalidReasonIs1007AndOneByteIs1002() {
        var a = WebSocketConnectionMachine(maxMessageSize: 100)
        guard case .fail(let e) = a.received(frame: frame(.close, [0x03, 0xE8, 0xFF])) else { Issue.record(); return }
        #expect(e.closeCode == .invalidPayload)
        var b = WebSocketConnectionMachine(maxMessageSize: 100)
        guard case .fail(let e2) = b.received(frame: frame(.close, [0x03])) else { Issue.record(); return }
        #expect(e2.closeCode == .protocolError)
    }

    @Test func compressedMessagesInflateWithinTheLimit() throws {
        var cfg = PerMessageDeflateConfiguration()
        cfg.minSizeToCompress = 0
        let sender = PerMessageDeflateCodec(parameters: .init(), configuration: cfg)
        let text = Array(String(repeating: "abc", count: 100).utf8)
        let compressed = try text.withUnsafeBytes { try sender.compress($0) }!
        var m = WebSocketConnectionMachine(maxMessageSize: 1000, codec: PerMessageDeflateCodec(parameters: .init(), configuration: cfg))
        #expect(m.received(frame: frame(.text, compressed, rsv1: true)) == .deliver(WebSocketMessage(opcode: .text, payload: text)))
        var small = WebSocketConnectionMachine(maxMessageSize: 100, codec: PerMessageDeflateCodec(parameters: .init(), configuration: cfg))
        let compressed2 = try text.withUnsafeBytes { try PerMessageDeflateCodec(parameters: .init(), configuration: cfg).compress($0) }!
        guard case .fail(let e) = small.received(frame: frame(.text, compressed2, rsv1: true)) else { Issue.record(); return }
        #expect(e.closeCode == .messageTooBig)
    }
}
