import Testing
import TandemHTTP

private func parseAll(_ text: String, limits: HTTPRequestParser.Limits = .init(), chunk: Int? = nil) throws -> [HTTPParserEvent] {
    var p = HTTPRequestParser(limits: limits)
    var events: [HTTPParserEvent] = []
    let bytes = Array(text.utf8)
    let step = chunk ?? max(bytes.count, 1)
    var i = 0
    while i < bytes.count {
        p.append(Array(bytes[i..<min(i + step, bytes.count)]))
        i += step
        while let e = try p.next() { events.append(e) }
    }
    return events
}

private func expectError(_ text: String, _ status: Int, limits: HTTPRequestParser.Limits = .init()) {
    do {
        _ = try parseAll(text, limits: limits)
        Issue.record("expected \(status) for \(text.debugDescription)")
    } catch let e as HTTPParseError {
        #expect(e.status.code == status, "\(text.debugDescription): \(e)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Suite struct HTTPRequestParserTests {
    @Test func parsesSimpleGET() throws {
        let events = try parseAll("GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nX-Thing:  spaced value \r\n\r\n")
        guard case .head(let head) = events.first else { Issue.record("no head"); return }
        #expect(head.method == "GET")
        #expect(head.target == "/a/b?x=1")
        #expect(head.path == "/a/b")
        #expect(head.query == "x=1")
        #expect(head.headers["x-thing"] == "spaced value")
        #expect(head.keepAlive)
        #expect(events.last == .end)
    }

    @Test func everySplitPointGivesTheSameResult() throws {
        let text = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
        let whole = try parseAll(text)
        for chunk in 1...text.utf8.count {
            let events = try parseAll(text, chunk: chunk)
            var body: [UInt8] = []
            for case .body(let b) in events { body += b }
            #expect(body == Array("hello world".utf8))
            #expect(events.first == whole.first)
            #expect(events.last == .end)
        }
    }

    @Test func chunkedBody() throws {
        let events = try parseAll("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n", chunk: 3)
        var body: [UInt8] = []
        for case .body(let b) in events { body += b }
        #expect(String(decoding: body, as: UTF8.self) == "hello world")
        #expect(events.last == .end)
    }

    @Test func pipelinedRequests() throws {
        let events = try parseAll("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        let heads = events.compactMap { if case .head(let h) = $0 { return h } else { return nil } }
        #expect(heads.map(\.target) == ["/1", "/2"])
        #expect(heads[1].keepAlive == false)
    }

    @Test func http10KeepAliveRules() throws {
        let e1 = try parseAll("GET / HTTP/1.0\r\n\r\n")
        guard case .head(let h1) = e1[0] else { return }
        #expect(!h1.keepAlive)
        let e2 = try parseAll("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        guard case .head(let h2) = e2[0] else { return }
        #expect(h2.keepAlive)
    }

    @Test func malformedRequestsAre400() {
        expectError("GET / HTTP/1.1\r\n\r\n", 400)  // no Host
        expectError("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
        expectError("GET /\r\nHost: a\r\n\r\n", 400)
        expectError("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400)
        expectError("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", 400)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)
    }

    @Test func unsupportedThingsGetTheirStatus() {
        expectError("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501)
    }

    @Test func limitsGive413And414And431() {
        var limits = HTTPRequestParser.Limits()
        limits.maxRequestLine = 64
        limits.maxHeaderBytes = 256
        limits.maxHeaderCount = 3
        limits.maxBodySize = 10
        expectError("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, limits: limits)
        expectError("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, limits: limits)
        expectError("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 300) + "\r\n\r\n", 431, limits: limits)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 413, limits: limits)
        expectError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nB\r\n", 413, limits: limits)
    }

    @Test func incompleteHeadOverLimitFailsBeforeTheEnd() {
        var limits = HTTPRequestParser.Limits()
        limits.maxHeaderBytes = 100
        var p = HTTPRequestParser(limits: limits)
        p.append(Array(("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 200)).utf8))
        #expect(throws: HTTPParseError.self) { _ = try p.next() }
    }

    @Test func upgradeLeavesTrailingBytes() throws {
        var p = HTTPRequestParser()
        p.append(Array("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\u{81}\u{05}".utf8))
        guard case .head = try p.next() else { Issue.record("no head"); return }
        #expect(p.takeRemainingBytes() == Array("\u{81}\u{05}".utf8))
    }

    @Test func headerListsAndTokens() {
        var h = HTTPHeaders()
        h.add("Connection", "keep-alive, Upgrade")
        h.add("connection", "  foo ,, bar")
        #expect(h.containsToken("CONNECTION", "upgrade"))
        #expect(h.listElements("Connection").map(String.init) == ["keep-alive", "Upgrade", "foo", "bar"])
        #expect(!h.containsToken("Connection", "upgrad"))
    }

    @Test func percentDecoding() {
        #expect(percentDecode("a%20b%2Fc") == "a b/c")
        #expect(percentDecode("%zz") == nil)
        #expect(percentDecode("%e2%82%ac") == "€")
        #expect(percentDecode("%ff") == nil)
    }

    @Test func responseSerialization() {
        var head = HTTPResponseHead(status: .notFound)
        head.headers.add("Content-Length", "0")
        #expect(String(decoding: head.serialized(), as: UTF8.self) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func responseHeadParser() throws {
        let bytes = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nrest".utf8)
        let p = try HTTPResponseHeadParser.parse(bytes)
        #expect(p?.status == 101)
        #expect(p?.headers["upgrade"] == "websocket")
        #expect(p?.consumed == bytes.count - 4)
        #expect(try HTTPResponseHeadParser.parse(Array("HTTP/1.1 200 OK\r\n".utf8)) == nil)
    }
}
