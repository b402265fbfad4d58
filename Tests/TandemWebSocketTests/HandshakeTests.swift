import Testing
import TandemHTTP
import TandemWebSocket

private func request(_ extra: [(String, String)] = [], drop: Set<String> = [], method: String = "GET", minor: Int = 1) -> HTTPRequestHead {
    var h = HTTPHeaders()
    let base: [(String, String)] = [
        ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ]
    for (n, v) in base where !drop.contains(n) { h.add(n, v) }
    for (n, v) in extra { h.add(n, v) }
    return HTTPRequestHead(method: method, target: "/chat", versionMinor: minor, headers: h)
}

@Suite struct HandshakeTests {
    @Test func rfcAcceptKey() {
        #expect(WebSocketServerHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func acceptsAValidRequest() throws {
        let r = try WebSocketServerHandshake.accept(request(), configuration: .init()).get()
        #expect(r.response.status.code == 101)
        #expect(r.response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(r.deflate == nil && r.subprotocol == nil)
    }

    @Test func tokensAreCaseInsensitiveCommaLists() throws {
        var h = HTTPHeaders()
        h.add("Host", "x"); h.add("upgrade", "WebSocket"); h.add("connection", "keep-alive, UPGRADE")
        h.add("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="); h.add("sec-websocket-version", "13")
        #expect((try? WebSocketServerHandshake.accept(HTTPRequestHead(method: "GET", target: "/", headers: h), configuration: .init()).get()) != nil)
    }

    @Test func refusals() {
        func status(_ r: HTTPRequestHead) -> Int? {
            if case .failure(let f) = WebSocketServerHandshake.accept(r, configuration: .init()) { return f.status.code }
            return nil
        }
        #expect(status(request(method: "POST")) == 405)
        #expect(status(request(minor: 0)) == 400)
        #expect(status(request(drop: ["Upgrade"])) == 400)
        #expect(status(request(drop: ["Connection"])) == 400)
        #expect(status(request(drop: ["Sec-WebSocket-Key"])) == 400)
        #expect(status(request([("Sec-WebSocket-Key", "AAAA")], drop: ["Sec-WebSocket-Key"])) == 400)  // not 16 bytes
        #expect(status(request([("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])) == 400)  // repeated
        #expect(status(request([("Sec-WebSocket-Version", "8")], drop: ["Sec-WebSocket-Version"])) == 426)
        if case .failure(let f) = WebSocketServerHandshake.accept(request([("Sec-WebSocket-Version", "8")], drop: ["Sec-WebSocket-Version"]), configuration: .init()) {
            #expect(f.headers["Sec-WebSocket-Version"] == "13")
        }
    }

    @Test func originHook() {
        let r = WebSocketServerHandshake.accept(request([("Origin", "https://evil.example")]), configuration: .init()) { $0 == "https://good.example" }
        guard case .failure(let f) = r else { Issue.record("accepted"); return }
        #expect(f.status.code == 403)
    }

    @Test func subprotocolNegotiation() throws {
        var c = WebSocketServerHandshake.Configuration()
        c.subprotocols = ["tandem.v1"]
        let r = try WebSocketServerHandshake.accept(request([("Sec-WebSocket-Protocol", "chat, tandem.v1")]), configuration: c).get()
        #expect(r.subprotocol == "tandem.v1")
        #expect(r.response.headers["Sec-WebSocket-Protocol"] == "tandem.v1")
        c.requireSubprotocol = true
        if case .success = WebSocketServerHandshake.accept(request([("Sec-WebSocket-Protocol", "chat")]), configuration: c) { Issue.record("should refuse") }
    }

    @Test func clientRequestAndValidation() throws {
        let hs = WebSocketClientHandshake(subprotocols: ["tandem.v1"], deflate: PerMessageDeflateConfiguration(), key: "dGhlIHNhbXBsZSBub25jZQ==")
        let text = String(decoding: hs.requestBytes(host: "h:1", target: "/x"), as: UTF8.self)
        #expect(text.hasPrefix("GET /x HTTP/1.1\r\nHost: h:1\r\n"))
        #expect(text.contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        var h = HTTPHeaders()
        h.add("Upgrade", "websocket"); h.add("Connection", "Upgrade"); h.add("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        h.add("Sec-WebSocket-Protocol", "tandem.v1"); h.add("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")
        let a = try hs.validate(status: 101, headers: h)
        #expect(a.subprotocol == "tandem.v1")
        #expect(a.deflate?.peerNoContextTakeover == true)
        var bad = h
        bad.set("Sec-WebSocket-Accept", "wrong")
        #expect(throws: WebSocketClientHandshake.Failure.self) { try hs.validate(status: 101, headers: bad) }
        #expect(throws: WebSocketClientHandshake.Failure.self) { try hs.validate(status: 200, headers: h) }
        var unoffered = h
        unoffered.set("Sec-WebSocket-Protocol", "other")
        #expect(throws: WebSocketClientHandshake.Failure.self) { try hs.validate(status: 101, headers: unoffered) }
    }
}
