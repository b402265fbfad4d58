// Listening sockets: one per loop with SO_REUSEPORT, so the kernel spreads accepts over loops
// and every connection lives its whole life on the loop that accepted it.
import CTandemSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Counts open connections across all loops and enforces the maximum.
public final class ConnectionCounter: Sendable {
    public let limit: Int
    private let count = Atomic<Int>(0)
    public init(limit: Int) { self.limit = limit }

    /// Takes a slot; false when the limit is reached.
    public func acquire() -> Bool {
        let now = count.add(1, ordering: .relaxed).newValue
        if now > limit {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }
    public func release() { count.subtract(1, ordering: .relaxed) }
    public var current: Int { count.load(ordering: .relaxed) }
}

/// Accepts connections on one loop.
public final class Listener: Selectable {
    public let loop: Loop
    public let fd: Int32
    public let port: Int
    private var registrationID: UInt64 = 0
    private let counter: ConnectionCounter
    private let onAccept: (Int32, String) -> Void
    private var closed = false

    /// Starts accepting on a socket from ``bindListeningSocket(host:port:backlog:)``.
    /// `onAccept` receives each accepted fd (non-blocking, close-on-exec) and the peer address;
    /// it owns the fd and must release the counter slot when the connection ends.
    public init(loop: Loop, fd: Int32, port: Int, counter: ConnectionCounter,
                onAccept: @escaping (Int32, String) -> Void) throws(IOError) {
        self.loop = loop
        self.counter = counter
        self.onAccept = onAccept
        self.fd = fd
        self.port = port
        registrationID = try loop.register(fd: fd, events: Epoll.readable, self)
    }

    public func ready(events: UInt32) {
        var peer = [CChar](repeating: 0, count: 64)
        // Accept a bounded batch so one busy listener cannot starve the loop's connections.
        for _ in 0..<64 {
            let c = ctandem_accept(fd, &peer, 64)
            if c < 0 {
                if c == -EAGAIN || c == -ECONNABORTED { return }
                if c == -EMFILE || c == -ENFILE {
                    loop.logger.warning("accept: out of file descriptors")
                    return
                }
                loop.logger.warning("accept failed", metadata: ["errno": "\(-c)"])
                return
            }
            guard counter.acquire() else {
                // Over the connection limit: refuse at once rather than queue unboundedly.
                _ = ctandem_close(c)
                continue
            }
            let address = String(decoding: peer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            onAccept(c, address)
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(fd: fd, id: registrationID)
        _ = ctandem_close(fd)
    }
}

@available(*, unavailable)
extension Listener: Sendable {}

/// Starts a non-blocking TCP connect; the fd is ready for ``Connection/init(loop:fd:peerAddress:options:tls:serverName:connecting:)``
/// with `connecting` set to the returned flag.
public func tcpConnect(host: String, port: Int) throws(IOError) -> (fd: Int32, inProgress: Bool) {
    var numeric = host
    if host == "localhost" { numeric = "127.0.0.1" }
    var inProgress: Int32 = 0
    var fd = ctandem_connect(numeric, Int32(port), &inProgress)
    if fd == -EINVAL {
        var buf = [CChar](repeating: 0, count: 64)
        guard ctandem_resolve(host, &buf, 64) == 0 else { throw IOError(errno: EHOSTUNREACH, function: "resolve(\(host))") }
        numeric = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        fd = ctandem_connect(numeric, Int32(port), &inProgress)
    }
    if fd < 0 { throw IOError(errno: -fd, function: "connect(\(host):\(port))") }
    return (fd, inProgress != 0)
}

/// Raises the open-file limit to its hard maximum (for many connections).
public func raiseFileDescriptorLimit() -> Int { Int(ctandem_raise_nofile()) }

/// Blocks the shutdown signals in this thread and the threads it creates afterwards.
public func blockShutdownSignals() { ctandem_block_signals() }
/// Waits for SIGINT, SIGTERM or SIGHUP; returns the signal number.
public func waitForShutdownSignal() -> Int32 { ctandem_wait_signal() }

/// Binds a listening socket on the calling thread (errors surface at once); returns the fd and
/// the bound port.
public func bindListeningSocket(host: String, port: Int, backlog: Int = 1024) throws(IOError) -> (fd: Int32, port: Int) {
    var bound: Int32 = 0
    let fd = ctandem_listen(host, Int32(port), Int32(backlog), 1, &bound)
    if fd < 0 { throw IOError(errno: -fd, function: "listen(\(host):\(port))") }
    return (fd, Int(bound))
}
