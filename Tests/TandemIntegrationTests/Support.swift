// Test support: a server on 127.0.0.1 with an ephemeral port, a blocking raw socket, and a
// WebSocket client endpoint that records what it receives.
import Testing
import Dispatch
import Synchronization
import Logging
import TandemConfig
import TandemLoop
import TandemServer
import TandemWebSocket
#if canImport(Glibc)
import Glibc
#endif

/// A running server; stopped by `stop()`.
final class TestServer: Sendable {
    let server: HTTPServer
    var port: Int { server.port }

    init(configure: (inout TandemConfiguration) -> Void = { _ in }, routes: ((TandemConfiguration) -> Routes)? = nil) throws {
        var c = TandemConfiguration()
        c.server.port = 0
        c.server.loops = 1
        c.server.echo = true
        c.server.web = TestServer.webRoot
        configure(&c)
        try c.validate()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try TandemServerBuilder.start(c, routes: routes?(c) ?? TandemServerBuilder.baseRoutes(c), logger: logger)
    }

    func stop() { server.shutdown(graceNanos: 1_000_000_000) }

    /// A throwaway web root with two files.
    static let webRoot: String = {
        let dir = makeTempDir()
        writeFile(dir + "/index.html", "<!doctype html><title>t</title>")
        writeFile(dir + "/app.js", "console.log(1)")
        mkdir(dir + "/sub", 0o755)
        writeFile(dir + "/sub/style.css", "body{}")
        return dir
    }()
}

func makeTempDir() -> String {
    var template = Array("/tmp/tandem-test-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "cannot write \(path)")
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// Runs a shell command; returns its exit status.
@discardableResult
func shell(_ command: String) -> Int32 {
    let r = system(command)
    return r == -1 ? -1 : (r >> 8) & 0xFF
}

/// A blocking TCP socket with a receive timeout.
final class RawSocket {
    let fd: Int32

    init(port: Int, timeoutMillis: Int = 5000) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { close(fd); throw IOError(errno: errno, function: "connect") }
        var tv = timeval(tv_sec: timeoutMillis / 1000, tv_usec: (timeoutMillis % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends everything; returns false when the send timed out or failed.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }
    func send(_ text: String) { send(Array(text.utf8)) }

    /// Reads what is available (blocking up to the timeout); empty at EOF or timeout.
    func receive(max: Int = 65536) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        return n > 0 ? Array(buf[0..<n]) : []
    }

    /// Reads until `predicate` holds on everything read, or EOF/timeout.
    func receive(until predicate: ([UInt8]) -> Bool) -> [UInt8] {
        var all: [UInt8] = []
        while !predicate(all) {
            let chunk = receive()
            if chunk.isEmpty { break }
            all += chunk
        }
        return all
    }

    /// Reads an HTTP response head (and as much body as arrived with it).
    func receiveHTTP() -> String {
        String(decoding: receive(until: { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }), as: UTF8.self)
    }

    /// True when the peer closed (recv returns 0) within the timeout.
    func waitForEOF() -> Bool {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }
}

/// Records what a client WebSocket receives; waits with timeouts.
final class Recorder: WebSocketEndpoint, Sendable {
    struct State {
        var opened = false
        var messages: [WebSocketMessage] = []
        var closed: (WebSocketCloseCode?, String)? = nil
        var failure: String? = nil
    }
    let state = Mutex(State())
    let changed = DispatchSemaphore(value: 0)

    func webSocketOpened(_ ws: WebSocketConnection) { update { $0.opened = true } }
    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) { update { $0.messages.append(message) } }
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) { update { $0.closed = (code, reason) } }
    func failed(_ reason: String) { update { $0.failure = reason } }

    private func update(_ body: (inout State) -> Void) {
        state.withLock { body(&$0) }
        changed.signal()
    }

    /// Waits until `predicate` holds (true) or `seconds` pass (false).
    func wait(seconds: Double = 5, _ predicate: (State) -> Bool) -> Bool {
        let deadline = DispatchTime.now() + seconds
        while true {
            if state.withLock({ predicate($0) }) { return true }
            if changed.wait(timeout: deadline) == .timedOut { return state.withLock { predicate($0) } }
        }
    }
}

/// A client on its own loop group.
final class TestClient: Sendable {
    let group: EventLoopGroup
    let recorder = Recorder()
    let socket = SocketSlot()

    init(url: String, options: WebSocketOptions = WebSocketOptions(), subprotocols: [String] = [], tls: TLSContext? = nil,
         headers: [(String, String)] = []) throws {
        group = try EventLoopGroup(count: 1, logger: Logger(label: "client"))
        let u = WebSocketURL(url)!
        let recorder = self.recorder
        let box = self.socket
        group.loops[0].execute { loop in
            let ep = CapturingEndpoint(recorder: recorder, box: box)
            WebSocketClient.connect(url: u, loop: loop, options: options, subprotocols: subprotocols, extraHeaders: HTTPHeadersBuilder.make(headers),
                                    tls: tls, endpoint: ep) { recorder.failed($0.reason) }
        }
    }

    /// Runs `body` with the open socket on its loop.
    func withSocket(_ body: @escaping @Sendable (WebSocketConnection) -> Void) {
        let box = socket
        group.loops[0].execute { _ in
            if let ws = box.value.withLock({ $0 })?.value { body(ws) }
        }
    }

    func send(text: String) { withSocket { $0.send(text: text) } }
    func send(binary: [UInt8]) { withSocket { $0.send(.binary, binary) } }
    func close(_ code: WebSocketCloseCode = .normal) { withSocket { $0.close(code: code) } }

    func stop() { group.shutdown() }
}

import TandemHTTP
enum HTTPHeadersBuilder {
    static func make(_ pairs: [(String, String)]) -> HTTPHeaders { HTTPHeaders(pairs) }
}

/// Passes events to the recorder and keeps the socket reachable for sends from the test.
final class CapturingEndpoint: WebSocketEndpoint {
    let recorder: Recorder
    let box: SocketSlot
    init(recorder: Recorder, box: SocketSlot) {
        self.recorder = recorder
        self.box = box
    }
    func webSocketOpened(_ ws: WebSocketConnection) {
        box.value.withLock { $0 = WebSocketConnectionBox(ws) }
        recorder.webSocketOpened(ws)
    }
    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) { recorder.webSocket(ws, received: message) }
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) { recorder.webSocketClosed(ws, code: code, reason: reason) }
}

/// Carries a loop-confined WebSocket through a lock so the test thread can hand it back to its
/// loop. `@unchecked Sendable`: the connection is only ever used inside `loop.execute` on its
/// own loop (see `TestClient.withSocket`); the box itself is only moved, never dereferenced, on
/// other threads.
final class WebSocketConnectionBox: @unchecked Sendable {
    let value: WebSocketConnection
    init(_ v: WebSocketConnection) { value = v }
}

/// The upgrade request for a raw-socket WebSocket client.
func upgradeRequest(path: String = "/echo", extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n"
}

/// A masked client frame.
func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let n = payload.count
    if n < 126 { out.append(0x80 | UInt8(n)) } else if n <= 0xFFFF { out += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)] } else {
        out.append(0x80 | 127)
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: n >> s)) }
    }
    let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
    out += key
    out += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    return out
}

/// Where the test thread finds the client's socket once it is open.
final class SocketSlot: Sendable {
    let value = Mutex<WebSocketConnectionBox?>(nil)
}
