// The server: listening sockets on every loop, TLS, the connection limit, and orderly stop.
public import TandemLoop
import TandemHTTP
import TandemWebSocket
public import Logging
import Dispatch

public final class HTTPServer: Sendable {
    public let group: EventLoopGroup
    public let routes: Routes
    public let options: HTTPServerOptions
    public let connectionOptions: ConnectionOptions
    public let tls: TLSContext?
    public let counter: ConnectionCounter
    public let logger: Logger
    public let host: String
    private let requestedPort: Int
    private let state = ServerState()

    public init(
        group: EventLoopGroup, host: String, port: Int, routes: Routes, options: HTTPServerOptions,
        connectionOptions: ConnectionOptions = ConnectionOptions(), tls: TLSContext? = nil, maxConnections: Int = 10_000,
        logger: Logger
    ) {
        self.group = group
        self.host = host
        self.requestedPort = port
        self.routes = routes
        self.options = options
        self.connectionOptions = connectionOptions
        self.tls = tls
        self.counter = ConnectionCounter(limit: maxConnections)
        self.logger = logger
    }

    /// The bound port (after ``start()``).
    public var port: Int { state.port }

    /// Binds one SO_REUSEPORT socket per loop and starts accepting. Throws if binding fails.
    @discardableResult
    public func start() throws(IOError) -> Int {
        var port = requestedPort
        var sockets: [(Int32, Int)] = []
        for _ in group.loops {
            let s = try bindListeningSocket(host: host, port: port)
            port = s.port
            sockets.append((s.fd, s.port))
        }
        state.setPort(port)
        let done = DispatchSemaphore(value: 0)
        for (loop, sock) in zip(group.loops, sockets) {
            let server = self
            loop.execute { l in
                do {
                    let listener = try Listener(loop: l, fd: sock.0, port: sock.1, counter: server.counter) { fd, peer in
                        server.accepted(fd: fd, peer: peer, loop: l)
                    }
                    l.storage["tandem.listener"] = listener
                } catch {
                    server.logger.error("cannot register listener: \(error)")
                }
                done.signal()
            }
        }
        for _ in group.loops { done.wait() }
        logger.info("listening", metadata: ["address": "\(host):\(port)", "tls": "\(tls != nil)", "loops": "\(group.loops.count)"])
        return port
    }

    private func accepted(fd: Int32, peer: String, loop: Loop) {
        let counter = self.counter
        do {
            let c = try Connection(loop: loop, fd: fd, peerAddress: peer, options: connectionOptions, tls: tls)
            var released = false
            let h = HTTPServerConnection(connection: c, routes: routes, options: options, isTLS: tls != nil, logger: logger) {
                if !released {
                    released = true
                    counter.release()
                }
            }
            c.handler = h
            c.start()
        } catch {
            counter.release()
            logger.warning("cannot set up connection: \(error)")
        }
    }

    /// Stops accepting, closes open WebSockets with 1001 and waits up to `graceNanos` for
    /// connections to finish, then stops the loops.
    public func shutdown(graceNanos: UInt64 = 5_000_000_000) {
        let done = DispatchSemaphore(value: 0)
        for loop in group.loops {
            loop.execute { l in
                (l.storage["tandem.listener"] as? Listener)?.close()
                l.storage["tandem.listener"] = nil
                for ws in LiveWebSockets.on(l).all { ws.close(code: .goingAway, reason: "server shutting down") }
                done.signal()
            }
        }
        for _ in group.loops { done.wait() }
        let deadline = monotonicNanos() + graceNanos
        while counter.current > 0 && monotonicNanos() < deadline { usleepMillis(10) }
        group.shutdown()
    }
}

/// WebSockets open on one loop, for shutdown and broadcast. Loop-confined.
public final class LiveWebSockets {
    private var sockets: [ObjectIdentifier: WebSocketConnection] = [:]
    public static func on(_ loop: Loop) -> LiveWebSockets {
        loop.local("tandem.websockets") { LiveWebSockets() }
    }
    public var all: [WebSocketConnection] { Array(sockets.values) }
    public var count: Int { sockets.count }
    func add(_ ws: WebSocketConnection) { sockets[ObjectIdentifier(ws)] = ws }
    func remove(_ ws: WebSocketConnection) { sockets[ObjectIdentifier(ws)] = nil }
}

@available(*, unavailable)
extension LiveWebSockets: Sendable {}

import Synchronization
final class ServerState: Sendable {
    private let portValue = Atomic<Int>(0)
    var port: Int { portValue.load(ordering: .relaxed) }
    func setPort(_ p: Int) { portValue.store(p, ordering: .relaxed) }
}

#if canImport(Glibc)
import Glibc
#endif
func usleepMillis(_ ms: Int) { usleep(UInt32(ms * 1000)) }
