// Real sockets on 127.0.0.1: Tandem's server and client talking to each other and to raw bytes.
import Testing
import TandemConfig
import TandemLoop
import TandemServer
import TandemWebSocket
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct WebSocketIntegrationTests {
    @Test func echoTextAndBinaryWithAndWithoutCompression() throws {
        let server = try TestServer()
        defer { server.stop() }
        for compress in [false, true] {
            var options = WebSocketOptions()
            options.deflate.enabled = compress
            options.deflate.minSizeToCompress = 0
            let client = try TestClient(url: "ws://127.0.0.1:\(server.port)/echo", options: options)
            defer { client.stop() }
            #expect(client.recorder.wait { $0.opened })
            client.send(text: "hello ☃")
            let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
            client.send(binary: big)
            let text = String(repeating: "compressible text ", count: 5000)
            client.send(text: text)
            #expect(client.recorder.wait { $0.messages.count == 3 })
            let got = client.recorder.state.withLock { $0.messages }
            #expect(got.first == WebSocketMessage(text: "hello ☃"))
            #expect(got.dropFirst().first?.payload == big)
            #expect(got.last?.text == text)
            client.close()
            #expect(client.recorder.wait { $0.closed != nil })
            #expect(client.recorder.state.withLock { $0.closed?.0 } == .normal)
        }
    }

    @Test func compressionIsNegotiatedOnTheWire() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send(upgradeRequest(extra: "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        let response = s.receiveHTTP()
        #expect(response.hasPrefix("HTTP/1.1 101"))
        #expect(response.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    }

    @Test func serverAnswersPingsAndValidatesClose() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send(upgradeRequest())
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        s.send(clientFrame(0x9, [1, 2, 3]))
        #expect(s.receive(until: { $0.count >= 5 }) == [0x8A, 0x03, 1, 2, 3])
        s.send(clientFrame(0x8, [0x03, 0xEC]))  // invalid close code 1004
        let close = s.receive(until: { $0.count >= 4 })
        #expect(close.first == 0x88 && Array(close.dropFirst(2).prefix(2)) == [0x03, 0xEA])  // 1002 with a reason
        #expect(s.waitForEOF())
    }

    @Test func oversizedMessageGets1009() throws {
        let server = try TestServer { $0.limits.maxMessageSize = 1000; $0.limits.maxFrameSize = 600 }
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send(upgradeRequest())
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        s.send(clientFrame(0x2, [UInt8](repeating: 1, count: 500), fin: false))
        s.send(clientFrame(0x0, [UInt8](repeating: 1, count: 600)))
        let close = s.receive(until: { $0.count >= 4 })
        #expect(Array(close.prefix(4)) == [0x88, close.count >= 2 ? close[1] : 0, 0x03, 0xF1])  // 1009
        #expect(s.waitForEOF())
    }

    @Test func invalidUTF8IsRefusedBeforeTheFrameCompletes() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send(upgradeRequest())
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        let frame = clientFrame(0x1, Array("valid then".utf8) + [0xC0, 0x80] + [UInt8](repeating: 0x41, count: 100))
        s.send(Array(frame.prefix(20)))  // header, mask and the first bytes including the bad sequence
        let close = s.receive(until: { $0.count >= 4 })
        #expect(Array(close.prefix(4)) == [0x88, close.count >= 2 ? close[1] : 0, 0x03, 0xEF])  // 1007
    }

    @Test func handshakeErrorsGetHTTPStatuses() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s1 = try RawSocket(port: server.port)
        s1.send(upgradeRequest().replacingVersion("8"))
        let r1 = s1.receiveHTTP()
        #expect(r1.hasPrefix("HTTP/1.1 426"))
        #expect(r1.contains("Sec-WebSocket-Version: 13"))
        let s2 = try RawSocket(port: server.port)
        s2.send(upgradeRequest(path: "/nowhere"))
        #expect(s2.receiveHTTP().hasPrefix("HTTP/1.1 404"))
    }

    @Test func crossOriginUpgradeIsRefusedWhereOriginsAreChecked() throws {
        let server = try TestServer(routes: { c in
            var r = TandemServerBuilder.baseRoutes(c)
            r.webSockets["/app"] = WebSocketRoute(handshake: .init(), checkOrigin: true) { _, _ in EchoEndpoint() }
            return r
        })
        defer { server.stop() }
        let evil = try RawSocket(port: server.port)
        evil.send(upgradeRequest(path: "/app", extra: "Origin: http://evil.example\r\n"))
        #expect(evil.receiveHTTP().hasPrefix("HTTP/1.1 403"))
        let same = try RawSocket(port: server.port)
        same.send(upgradeRequest(path: "/app", extra: "Origin: http://127.0.0.1\r\n"))
        #expect(same.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        let tool = try RawSocket(port: server.port)
        tool.send(upgradeRequest(path: "/app"))  // no Origin: not a browser
        #expect(tool.receiveHTTP().hasPrefix("HTTP/1.1 101"))
    }

    @Test func aPeerThatNeverReadsIsPausedNotBuffered() throws {
        let server = try TestServer { $0.limits.writeHighWatermark = 256 * 1024; $0.limits.writeLowWatermark = 64 * 1024 }
        defer { server.stop() }
        let s = try RawSocket(port: server.port, timeoutMillis: 1500)
        s.send(upgradeRequest())
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        // Send echo requests without ever reading the replies. Once the server's output passes
        // its high watermark it stops reading, the kernel buffers fill, and our send times out.
        let frame = clientFrame(0x2, [UInt8](repeating: 7, count: 64 * 1024))
        var sent = 0
        while sent < 4000, s.send(frame) { sent += 1 }
        #expect(sent < 4000, "the server kept reading from a peer that never reads")
        // Another client is still served meanwhile.
        let c = try TestClient(url: "ws://127.0.0.1:\(server.port)/echo")
        defer { c.stop() }
        #expect(c.recorder.wait { $0.opened })
        c.send(text: "still here")
        #expect(c.recorder.wait { $0.messages.count == 1 })
    }

    @Test func connectionLimitRefusesExtraConnections() throws {
        let server = try TestServer { $0.server.maxConnections = 2 }
        defer { server.stop() }
        let a = try RawSocket(port: server.port), b = try RawSocket(port: server.port)
        a.send(upgradeRequest()); b.send(upgradeRequest())
        #expect(a.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        #expect(b.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        let c = try RawSocket(port: server.port)
        #expect(c.waitForEOF())
    }

    @Test func serverClosesIdleWebSocketsAndAnswersPings() throws {
        let server = try TestServer { $0.limits.idleTimeout = 0.4; $0.websocket.pingInterval = 0.15; $0.websocket.pingTimeout = 0.2 }
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send(upgradeRequest())
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 101"))
        let got = s.receive(until: { $0.count >= 2 })
        #expect(got.first == 0x89)  // the server pings a quiet peer
        let close = s.receive(until: { $0.contains(0x88) })
        #expect(close.contains(0x88))  // then closes it (1001) when nothing comes back
    }

    @Test func tlsEchoWithASelfSignedCertificate() throws {
        let dir = makeTempDir()
        let status = shell("openssl req -x509 -newkey rsa:2048 -nodes -keyout \(dir)/key.pem -out \(dir)/cert.pem -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1")
        try #require(status == 0, "openssl could not create a certificate")
        let server = try TestServer { $0.tls.certificate = dir + "/cert.pem"; $0.tls.privateKey = dir + "/key.pem" }
        defer { server.stop() }
        let tls = try TLSContext(clientVerifying: true, caFile: dir + "/cert.pem")
        var options = WebSocketOptions()
        options.deflate.enabled = true
        let client = try TestClient(url: "wss://localhost:\(server.port)/echo", options: options, tls: tls)
        defer { client.stop() }
        #expect(client.recorder.wait { $0.opened })
        let payload = String(repeating: "secret ", count: 20000)
        client.send(text: payload)
        #expect(client.recorder.wait { $0.messages.count == 1 })
        #expect(client.recorder.state.withLock { $0.messages.first?.text } == payload)
        // An unverifiable certificate is refused by a verifying client.
        let strict = try TestClient(url: "wss://localhost:\(server.port)/echo", tls: try TLSContext(clientVerifying: true))
        defer { strict.stop() }
        #expect(strict.recorder.wait { $0.failure != nil })
        // And HTTPS serves the same routes.
        #expect(shell("curl -sf --cacert \(dir)/cert.pem https://localhost:\(server.port)/healthz >/dev/null") == 0)
    }

    @Test func clientRefusesAServerThatBreaksTheHandshake() throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = try TestClient(url: "ws://127.0.0.1:\(server.port)/healthz")
        defer { client.stop() }
        #expect(client.recorder.wait { $0.failure != nil })
    }
}

extension String {
    func replacingVersion(_ v: String) -> String {
        var out = ""
        for line in self.split(separator: "\r\n", omittingEmptySubsequences: false) {
            out += line.hasPrefix("Sec-WebSocket-Version:") ? "Sec-WebSocket-Version: \(v)" : String(line)
            out += "\r\n"
        }
        return String(out.dropLast(1))  // "\r\n" is one Character
    }
}
