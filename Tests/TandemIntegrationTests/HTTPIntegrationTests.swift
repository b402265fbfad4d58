import Testing
import TandemServer
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct HTTPIntegrationTests {
    @Test func healthAndErrors() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = s.receive(until: { String(decoding: $0, as: UTF8.self).contains("\"ok\"") })
        let text = String(decoding: r, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.contains("X-Content-Type-Options: nosniff"))
        // Keep-alive: the same connection serves a second request.
        s.send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        let r2 = s.receiveHTTP()
        #expect(r2.hasPrefix("HTTP/1.1 405"))
        #expect(r2.contains("Allow: GET, HEAD"))
        s.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 200"))
        #expect(s.waitForEOF())
    }

    @Test func malformedRequestsGet4xxAndClose() throws {
        let server = try TestServer { $0.limits.maxRequestLine = 100; $0.limits.maxHeaderBytes = 400 }
        defer { server.stop() }
        let cases: [(String, String)] = [
            ("GARBAGE\r\n\r\n", "400"),
            ("GET /" + String(repeating: "x", count: 200) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "y", count: 500) + "\r\n\r\n", "431"),
            ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505"),
        ]
        for (request, status) in cases {
            let s = try RawSocket(port: server.port)
            s.send(request)
            let r = s.receiveHTTP()
            #expect(r.hasPrefix("HTTP/1.1 \(status)"), "\(request.prefix(30)): \(r.prefix(40))")
            #expect(s.waitForEOF())
        }
    }

    @Test func slowHeadersAreCutOff() throws {
        let server = try TestServer { $0.limits.headerTimeout = 0.3 }
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send("GET / HTTP/1.1\r\nHost: x\r\n")  // never finishes the head
        let start = monotonicNanosForTests()
        #expect(s.waitForEOF())
        #expect(monotonicNanosForTests() - start < 3_000_000_000)
    }

    @Test func staticFilesWithETagsAndSafePaths() throws {
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let index = s.receive(until: { String(decoding: $0, as: UTF8.self).contains("</title>") })
        let text = String(decoding: index, as: UTF8.self)
        #expect(text.contains("Content-Type: text/html; charset=utf-8"))
        #expect(text.contains("Content-Security-Policy: default-src 'self'"))
        let etag = text.split(separator: "\r\n").first { $0.hasPrefix("ETag: ") }.map { String($0.dropFirst(6)) }
        try #require(etag != nil)
        s.send("GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: \(etag!)\r\n\r\n")
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 304"))
        s.send("HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = s.receiveHTTP()
        #expect(head.contains("Content-Type: text/javascript"))
        #expect(head.contains("Content-Length: 14"))
        #expect(head.hasSuffix("\r\n\r\n"))  // no body after HEAD
        s.send("GET /sub/style.css HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(s.receiveHTTP().contains("text/css"))
        for evil in ["/../etc/passwd", "/%2e%2e/etc/passwd", "/sub/..%2f..%2fetc/passwd", "/.hidden", "/a%00b"] {
            let e = try RawSocket(port: server.port)
            e.send("GET \(evil) HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = e.receiveHTTP()
            #expect(r.hasPrefix("HTTP/1.1 400") || r.hasPrefix("HTTP/1.1 404"), "\(evil): \(r.prefix(20))")
        }
    }

    @Test func symlinkOutOfTheWebRootIsNotServed() throws {
        symlink("/etc/passwd", TestServer.webRoot + "/leak")
        let server = try TestServer()
        defer { server.stop() }
        let s = try RawSocket(port: server.port)
        s.send("GET /leak HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(s.receiveHTTP().hasPrefix("HTTP/1.1 404"))
    }
}

func monotonicNanosForTests() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
