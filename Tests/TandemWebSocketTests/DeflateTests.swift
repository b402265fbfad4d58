import Testing
import TandemWebSocket

private func negotiate(_ offer: String, _ config: PerMessageDeflateConfiguration = .init()) -> (String, PerMessageDeflateParameters)? {
    guard let offers = WebSocketExtensionOffer.parse([offer]) else { return nil }
    return PerMessageDeflateNegotiation.negotiateAsServer(offers: offers, configuration: config).map { ($0.response, $0.parameters) }
}

@Suite struct DeflateTests {
    @Test func rfc7692HelloVectorInflates() throws {
        let codec = PerMessageDeflateCodec(parameters: .init(), configuration: .init())
        var out: [UInt8] = []
        let ok = try [UInt8]([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]).withUnsafeBytes { try codec.decompress($0, isFinal: true, into: &out, limit: 100) }
        #expect(ok)
        #expect(out == Array("Hello".utf8))
    }

    @Test func rfc7692SharedWindowVector() throws {
        // §7.2.3.2: the second "Hello" refers back into the first message's window.
        let codec = PerMessageDeflateCodec(parameters: .init(), configuration: .init())
        var a: [UInt8] = [], b: [UInt8] = []
        _ = try [UInt8]([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]).withUnsafeBytes { try codec.decompress($0, isFinal: true, into: &a, limit: 100) }
        _ = try [UInt8]([0xF2, 0x00, 0x11, 0x00, 0x00]).withUnsafeBytes { try codec.decompress($0, isFinal: true, into: &b, limit: 100) }
        #expect(a == Array("Hello".utf8) && b == Array("Hello".utf8))
    }

    @Test(arguments: [(15, false), (15, true), (9, false), (8, false), (8, true)])
    func roundTripsManyMessages(bits: Int, noContext: Bool) throws {
        var params = PerMessageDeflateParameters()
        params.localMaxWindowBits = bits
        params.localNoContextTakeover = noContext
        params.peerNoContextTakeover = noContext
        var config = PerMessageDeflateConfiguration()
        config.minSizeToCompress = 0
        let sender = PerMessageDeflateCodec(parameters: params, configuration: config)
        let receiver = PerMessageDeflateCodec(parameters: params, configuration: config)
        for i in 0..<50 {
            let text = Array(String(repeating: "message \(i) lorem ipsum dolor sit amet ", count: i % 7 + 1).utf8)
            let compressed = try text.withUnsafeBytes { try sender.compress($0) }!
            var out: [UInt8] = []
            // Feed it as two fragments.
            let mid = compressed.count / 2
            _ = try Array(compressed[..<mid]).withUnsafeBytes { try receiver.decompress($0, isFinal: false, into: &out, limit: 1 << 20) }
            _ = try Array(compressed[mid...]).withUnsafeBytes { try receiver.decompress($0, isFinal: true, into: &out, limit: 1 << 20) }
            #expect(out == text)
        }
    }

    @Test func decompressionIsBounded() throws {
        var config = PerMessageDeflateConfiguration()
        config.minSizeToCompress = 0
        let sender = PerMessageDeflateCodec(parameters: .init(), configuration: config)
        let bomb = [UInt8](repeating: 0, count: 1 << 20)
        let compressed = try bomb.withUnsafeBytes { try sender.compress($0) }!
        #expect(compressed.count < 5000)
        let receiver = PerMessageDeflateCodec(parameters: .init(), configuration: config)
        var out: [UInt8] = []
        let ok = try compressed.withUnsafeBytes { try receiver.decompress($0, isFinal: true, into: &out, limit: 64 * 1024) }
        #expect(!ok)
        #expect(out.count <= 64 * 1024 + 1)
    }

    @Test func garbageIsAnError() {
        let receiver = PerMessageDeflateCodec(parameters: .init(), configuration: .init())
        var out: [UInt8] = []
        #expect(throws: ZlibError.self) { _ = try [UInt8]([0xFF, 0xFF, 0xFF, 0x01]).withUnsafeBytes { try receiver.decompress($0, isFinal: true, into: &out, limit: 1000) } }
    }

    @Test func serverNegotiation() {
        #expect(negotiate("permessage-deflate")?.0 == "permessage-deflate")
        let a = negotiate("permessage-deflate; client_max_window_bits")
        #expect(a?.0 == "permessage-deflate")
        let b = negotiate("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        #expect(b?.0 == "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        #expect(b?.1.localNoContextTakeover == true && b?.1.peerNoContextTakeover == true)
        let c = negotiate("permessage-deflate; server_max_window_bits=10")
        #expect(c?.0 == "permessage-deflate; server_max_window_bits=10")
        #expect(c?.1.localMaxWindowBits == 10)
        let d = negotiate("permessage-deflate; client_max_window_bits=9")
        #expect(d?.0 == "permessage-deflate; client_max_window_bits=9")
        let q = negotiate("permessage-deflate; server_max_window_bits=\"12\"")
        #expect(q?.1.localMaxWindowBits == 12)
    }

    @Test func invalidOffersAreDeclinedAndTheNextOneTaken() {
        #expect(negotiate("permessage-deflate; server_max_window_bits=7") == nil)
        #expect(negotiate("permessage-deflate; server_max_window_bits=16") == nil)
        #expect(negotiate("permessage-deflate; server_max_window_bits") == nil)
        #expect(negotiate("permessage-deflate; server_no_context_takeover=1") == nil)
        #expect(negotiate("permessage-deflate; unknown_param") == nil)
        #expect(negotiate("permessage-deflate; server_no_context_takeover; server_no_context_takeover") == nil)
        #expect(negotiate("x-webkit-deflate-frame") == nil)
        let r = negotiate("permessage-deflate; server_max_window_bits=7, permessage-deflate; client_no_context_takeover")
        #expect(r?.0 == "permessage-deflate; client_no_context_takeover")
        var off = PerMessageDeflateConfiguration()
        off.enabled = false
        #expect(negotiate("permessage-deflate", off) == nil)
    }

    @Test func configuredLimitsAppearInTheResponse() {
        var config = PerMessageDeflateConfiguration()
        config.maxWindowBits = 11
        config.noContextTakeover = true
        config.peerMaxWindowBits = 10
        let r = negotiate("permessage-deflate; client_max_window_bits", config)
        #expect(r?.0 == "permessage-deflate; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10")
    }

    @Test func clientAcceptance() throws {
        let cfg = PerMessageDeflateConfiguration()
        let p = try PerMessageDeflateNegotiation.acceptAsClient(responseValues: ["permessage-deflate; client_max_window_bits=10; server_no_context_takeover"], configuration: cfg)
        #expect(p?.localMaxWindowBits == 10 && p?.peerNoContextTakeover == true)
        #expect(throws: PerMessageDeflateNegotiation.ResponseError.self) { try PerMessageDeflateNegotiation.acceptAsClient(responseValues: ["permessage-deflate; bogus"], configuration: cfg) }
        #expect(throws: PerMessageDeflateNegotiation.ResponseError.self) { try PerMessageDeflateNegotiation.acceptAsClient(responseValues: ["foo"], configuration: cfg) }
        #expect(throws: PerMessageDeflateNegotiation.ResponseError.self) { try PerMessageDeflateNegotiation.acceptAsClient(responseValues: ["permessage-deflate; client_max_window_bits=99"], configuration: cfg) }
    }

    @Test func extensionHeaderParsing() {
        let p = WebSocketExtensionOffer.parse(["a; x=1; y, b", "c;z=\"q\""])
        #expect(p?.map(\.name) == ["a", "b", "c"])
        #expect(p?[0].parameters.map(\.name) == ["x", "y"])
        #expect(p?[2].parameters.first?.value == "q")
        #expect(WebSocketExtensionOffer.parse(["a; x=\"unterminated"]) == nil)
        #expect(WebSocketExtensionOffer.parse(["a; =1"]) == nil)
    }
}
