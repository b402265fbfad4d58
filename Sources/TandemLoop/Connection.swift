// A TCP connection (optionally TLS) on a loop: reads into the loop's shared buffer, queues
// output, flushes it with writev once per loop iteration, applies backpressure with watermarks,
// and closes gracefully (flush, half-close, drain, close).
import CTandemSystem
#if canImport(Glibc)
import Glibc
#endif

/// Receives a connection's events, on its loop.
public protocol ConnectionHandler: AnyObject {
    /// The connection is established (for TLS: the handshake finished).
    func connectionActive(_ connection: Connection)
    /// Bytes arrived. They are valid only during the call.
    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer)
    /// The peer finished sending (EOF). The default closes the connection once output is flushed.
    func connectionReadEOF(_ connection: Connection)
    /// ``Connection/isWritable`` changed (output crossed a watermark).
    func connectionWritabilityChanged(_ connection: Connection)
    /// The deadline set with ``Connection/setDeadline(afterNanos:)`` passed.
    func connectionDeadlinePassed(_ connection: Connection)
    /// The connection is closed and its fd released; `error` says why when it was not orderly.
    func connectionClosed(_ connection: Connection, error: (any Error)?)
}

extension ConnectionHandler {
    public func connectionActive(_ connection: Connection) {}
    public func connectionReadEOF(_ connection: Connection) { connection.close() }
    public func connectionWritabilityChanged(_ connection: Connection) {}
    public func connectionDeadlinePassed(_ connection: Connection) { connection.close(graceful: false) }
}

/// Per-connection limits, shared by all connections of a listener.
public struct ConnectionOptions: Sendable {
    /// Above this many queued output bytes the connection is not writable and reading pauses.
    public var writeHighWatermark = 1024 * 1024
    /// Below this many queued bytes it becomes writable again.
    public var writeLowWatermark = 256 * 1024
    /// Stop reading from a peer that does not read its replies (while above the high mark).
    public var pauseReadingWhenBlocked = true
    /// How long a graceful close waits for the peer's EOF after our half-close.
    public var lingerNanos: UInt64 = 2_000_000_000
    public init() {}
}

public final class Connection: Selectable {
    public enum State: Equatable {
        case connecting
        case tlsHandshake
        case active
        /// Flushing output before half-closing.
        case closing
        /// Half-closed; discarding input until EOF or the linger timer.
        case draining
        case closed
    }

    public let loop: Loop
    public let fd: Int32
    public let peerAddress: String
    public let options: ConnectionOptions
    public var handler: (any ConnectionHandler)?
    public private(set) var state: State
    /// Whether queued output is below the high watermark.
    public private(set) var isWritable = true
    public private(set) var bytesRead = 0
    public private(set) var bytesWritten = 0

    private var registrationID: UInt64 = 0
    private var outbound = OutboundQueue()
    private var tls: TLSSession?
    private var tlsPlain = OutboundQueue()
    private var interest: UInt32 = Epoll.readable
    private var inFlushList = false
    private var readPaused = false
    private var deadline: UInt64 = 0
    private var deadlineTimer: UInt64 = 0
    private var timerDeadline: UInt64 = 0
    private var lingerTimer: UInt64 = 0
    private var closeError: (any Error)?
    private var notifyingClosed = false

    /// Wraps an accepted or connecting fd and registers it with `loop`.
    public init(
        loop: Loop, fd: Int32, peerAddress: String, options: ConnectionOptions, tls: TLSContext? = nil,
        serverName: String? = nil, connecting: Bool = false
    ) throws {
        self.loop = loop
        self.fd = fd
        self.peerAddress = peerAddress
        self.options = options
        if let tls { self.tls = try TLSSession(context: tls, serverName: serverName) }
        state = connecting ? .connecting : (tls != nil ? .tlsHandshake : .active)
        _ = ctandem_set_nodelay(fd)
        interest = connecting ? Epoll.writable : Epoll.readable
        do {
            registrationID = try loop.register(fd: fd, events: interest, self)
        } catch {
            _ = ctandem_close(fd)
            throw error
        }
    }

    /// Call once the handler is set: reports `connectionActive` (or starts TLS).
    public func start() {
        switch state {
        case .active: handler?.connectionActive(self)
        case .tlsHandshake:
            // A client speaks first in TLS.
            if tls.map({ !SSLIsServer($0) }) == true { advanceHandshake() }
        default: break
        }
    }

    public var isClosed: Bool { state == .closed }
    /// Bytes queued and not yet written.
    public var pendingOutputBytes: Int { outbound.byteCount + tlsPlain.byteCount }

    // MARK: Output

    /// Queues bytes; they go out at the end of the loop iteration.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .active || state == .closing else { return }
        if tls != nil { tlsPlain.append(bytes, pool: loop.chunkPool) } else { outbound.append(bytes, pool: loop.chunkPool) }
        didQueue()
    }

    public func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { write($0) } }

    /// Lets the caller encode straight into the output queue: `body` gets room for up to
    /// `maxCount` bytes and returns how many it wrote.
    public func withOutputBuffer(maxCount: Int, _ body: (UnsafeMutableRawPointer) -> Int) {
        guard state == .active || state == .closing else { return }
        if tls != nil {
            let p = tlsPlain.reserve(maxCount, pool: loop.chunkPool)
            tlsPlain.commit(body(p))
        } else {
            let p = outbound.reserve(maxCount, pool: loop.chunkPool)
            outbound.commit(body(p))
        }
        didQueue()
    }

    private func didQueue() {
        if !inFlushList {
            inFlushList = true
            loop.scheduleFlush(self)
        }
        if isWritable && pendingOutputBytes > options.writeHighWatermark {
            isWritable = false
            if options.pauseReadingWhenBlocked { pauseReading() }
            handler?.connectionWritabilityChanged(self)
        }
    }

    /// Writes what is queued (called by the loop once per iteration).
    func flushNow() {
        inFlushList = false
        guard state != .closed && state != .connecting else { return }
        if let tls {
            if tls.handshakeDone && !tlsPlain.isEmpty {
                var failure: TLSError? = nil
                tlsPlain.drain(pool: loop.chunkPool) { chunk in
                    guard failure == nil else { return }
                    do throws(TLSError) { try tls.write(chunk) } catch { failure = error }
                }
                if let failure { return fail(failure) }
            }
            moveCiphertext()
        }
        while !outbound.isEmpty {
            let n = outbound.fill(loop.iovecs, max: loop.iovMax)
            let w = ctandem_writev(fd, loop.iovecs, Int32(n))
            if w >= 0 {
                outbound.consume(w, pool: loop.chunkPool)
                bytesWritten += w
                continue
            }
            if w == -Int(EAGAIN) {
                setInterest(interest | Epoll.writable)
                break
            }
            return fail(IOError(errno: Int32(-w), function: "writev"))
        }
        if outbound.isEmpty {
            if interest & Epoll.writable != 0 { setInterest(interest & ~Epoll.writable) }
            if state == .closing { halfClose() }
        }
        if !isWritable && pendingOutputBytes <= options.writeLowWatermark {
            isWritable = true
            if readPaused { resumeReading() }
            handler?.connectionWritabilityChanged(self)
        }
    }

    private func moveCiphertext() {
        guard let tls else { return }
        tls.drainCiphertext({ outbound.append($0, pool: loop.chunkPool) }, scratch: loop.plainBuffer)
    }

    private func scheduleFlushIfNeeded() {
        if !inFlushList && (!outbound.isEmpty || (tls?.pendingCiphertext ?? 0) > 0) {
            inFlushList = true
            loop.scheduleFlush(self)
        }
    }

    // MARK: Input

    public func ready(events: UInt32) {
        if state == .connecting {
            finishConnect(events)
            return
        }
        if events & Epoll.writable != 0 { flushNow() }
        if state == .closed { return }
        if events & (Epoll.readable | Epoll.hangup | Epoll.error | Epoll.readHangup) != 0 && !readPaused { readAvailable() }
    }

    private func readAvailable() {
        let buf = loop.readBuffer
        var rounds = 0
        while state != .closed && !readPaused {
            let n = ctandem_read(fd, buf.baseAddress, buf.count)
            if n > 0 {
                bytesRead += n
                let bytes = UnsafeRawBufferPointer(rebasing: buf[0..<n])
                if tls != nil { receivedCiphertext(bytes) } else if state == .active { handler?.connection(self, read: bytes) }
                rounds += 1
                if n < buf.count || rounds >= 4 { break }
                continue
            }
            if n == 0 {
                readEOF()
                return
            }
            if n == -Int(EAGAIN) { break }
            fail(IOError(errno: Int32(-n), function: "read"))
            return
        }
    }

    private func receivedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let tls else { return }
        tls.feed(bytes)
        if state == .tlsHandshake {
            advanceHandshake()
            if state != .active { return }
        }
        while state == .active || state == .closing || state == .draining {
            switch tls.read(into: loop.plainBuffer) {
            case .data(let n):
                if state == .active { handler?.connection(self, read: UnsafeRawBufferPointer(rebasing: loop.plainBuffer[0..<n])) }
            case .wantMore:
                scheduleFlushIfNeeded()
                return
            case .closed:
                scheduleFlushIfNeeded()
                readEOF()
                return
            case .failed(let e):
                fail(e)
                return
            }
        }
    }

    private func advanceHandshake() {
        guard let tls else { return }
        do {
            let done = try tls.handshake()
            scheduleFlushIfNeeded()
            if done {
                state = .active
                handler?.connectionActive(self)
            }
        } catch {
            // Send any alert OpenSSL produced, then drop the connection.
            moveCiphertext()
            flushNow()
            fail(error)
        }
    }

    private func readEOF() {
        switch state {
        case .draining, .closing:
            finalClose()
        case .active:
            if let handler { handler.connectionReadEOF(self) } else { close() }
            if state == .active {
                // The handler keeps the connection half-open; stop polling for input.
                setInterest(interest & ~Epoll.readable)
            }
        default:
            finalClose()
        }
    }

    private func pauseReading() {
        readPaused = true
        setInterest(interest & ~Epoll.readable)
    }

    private func resumeReading() {
        readPaused = false
        setInterest(interest | Epoll.readable)
    }

    private func setInterest(_ new: UInt32) {
        guard new != interest, state != .closed else { return }
        interest = new
        loop.modify(fd: fd, id: registrationID, events: new)
    }

    private func finishConnect(_ events: UInt32) {
        let err = ctandem_socket_error(fd)
        if err != 0 {
            state = .active  // so fail() runs the full close path
            fail(IOError(errno: err, function: "connect"))
            return
        }
        state = tls != nil ? .tlsHandshake : .active
        setInterest(Epoll.readable)
        if state == .active { handler?.connectionActive(self) } else { advanceHandshake() }
    }

    // MARK: Deadlines

    /// Calls ``ConnectionHandler/connectionDeadlinePassed(_:)`` after `nanos` unless moved or
    /// cleared first. Moving a deadline later is a store, not a timer operation.
    public func setDeadline(afterNanos nanos: UInt64) {
        deadline = monotonicNanos() &+ nanos
        if deadlineTimer == 0 || timerDeadline > deadline { armDeadlineTimer() }
    }

    public func clearDeadline() { deadline = 0 }

    private func armDeadlineTimer() {
        if deadlineTimer != 0 { loop.cancelTimer(deadlineTimer) }
        timerDeadline = deadline
        let now = monotonicNanos()
        deadlineTimer = loop.schedule(afterNanos: deadline > now ? deadline - now : 0) { [weak self] in
            self?.deadlineTimerFired()
        }
    }

    private func deadlineTimerFired() {
        deadlineTimer = 0
        guard state != .closed, deadline != 0 else { return }
        if deadline > monotonicNanos() {
            armDeadlineTimer()
            return
        }
        deadline = 0
        handler?.connectionDeadlinePassed(self)
    }

    // MARK: Closing

    /// Closes the connection. Graceful: flush queued output, half-close (TLS close_notify), wait
    /// for the peer's EOF up to the linger time, then release the fd. Otherwise: at once.
    public func close(graceful: Bool = true) {
        switch state {
        case .closed, .draining: if !graceful { finalClose() }
        case .closing: if !graceful { finalClose() }
        case .connecting, .tlsHandshake: finalClose()
        case .active:
            guard graceful else { return finalClose() }
            state = .closing
            if let tls, tls.handshakeDone {
                if !tlsPlain.isEmpty { flushNow() }
                tls.shutdown()
            }
            if !inFlushList {
                inFlushList = true
                loop.scheduleFlush(self)
            }
        }
    }

    private func halfClose() {
        guard state == .closing else { return }
        state = .draining
        _ = ctandem_shutdown_write(fd)
        if readPaused { resumeReading() }
        lingerTimer = loop.schedule(afterNanos: options.lingerNanos) { [weak self] in self?.finalClose() }
    }

    private func fail(_ error: any Error) {
        closeError = error
        finalClose()
    }

    private func finalClose() {
        guard state != .closed else { return }
        state = .closed
        if deadlineTimer != 0 { loop.cancelTimer(deadlineTimer) }
        if lingerTimer != 0 { loop.cancelTimer(lingerTimer) }
        loop.deregister(fd: fd, id: registrationID)
        _ = ctandem_close(fd)
        outbound.removeAll()
        tlsPlain.removeAll()
        tls = nil
        let h = handler
        handler = nil
        h?.connectionClosed(self, error: closeError)
    }
}

@available(*, unavailable)
extension Connection: Sendable {}

private func SSLIsServer(_ s: TLSSession) -> Bool { s.isServerSide }
