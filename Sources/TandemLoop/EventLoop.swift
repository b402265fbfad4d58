// The event loop: one thread, one epoll instance, an eventfd for cross-thread wake-ups and a
// timer heap. Everything a loop owns is touched only on its thread.
import CTandemSystem
import Synchronization
public import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Something registered with a loop that wants readiness events.
public protocol Selectable: AnyObject {
    /// Called on the loop thread with the epoll event bits (`Epoll.readable`, …).
    func ready(events: UInt32)
}

/// epoll event bits.
public enum Epoll {
    public static let readable = CTANDEM_EPOLLIN
    public static let writable = CTANDEM_EPOLLOUT
    public static let readHangup = CTANDEM_EPOLLRDHUP
    public static let error = CTANDEM_EPOLLERR
    public static let hangup = CTANDEM_EPOLLHUP
}

/// A handle to an event loop that any thread may hold: it submits work and wakes the loop.
/// All mutable state lives in ``Loop``, which only the loop thread sees.
public final class EventLoop: Sendable {
    public let index: Int
    let wakeFD: Int32
    /// Tasks from other threads; the only state shared across threads (guarded by the mutex).
    private let inbox = Mutex<Inbox>(Inbox())
    private let threadID = Atomic<UInt>(0)

    struct Inbox: ~Copyable {
        var tasks: [@Sendable (Loop) -> Void] = []
        var wakePending = false
        var stopped = false
    }

    init(index: Int, wakeFD: Int32) {
        self.index = index
        self.wakeFD = wakeFD
    }

    /// Whether the caller runs on this loop's thread.
    public var inLoop: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// Runs `task` on the loop thread, soon. Safe from any thread. Returns false when the loop has
    /// stopped (the task is dropped).
    @discardableResult
    public func execute(_ task: @escaping @Sendable (Loop) -> Void) -> Bool {
        let needWake: Bool? = inbox.withLock { inbox in
            if inbox.stopped { return nil }
            inbox.tasks.append(task)
            if inbox.wakePending { return false }
            inbox.wakePending = true
            return true
        }
        guard let needWake else { return false }
        // Skip the syscall when a wake-up is already on its way.
        if needWake { _ = ctandem_eventfd_signal(wakeFD) }
        return true
    }

    func takeTasks() -> [@Sendable (Loop) -> Void] {
        inbox.withLock { inbox in
            inbox.wakePending = false
            let t = inbox.tasks
            inbox.tasks = []
            return t
        }
    }

    func markStopped() -> [@Sendable (Loop) -> Void] {
        inbox.withLock { inbox in
            inbox.stopped = true
            let t = inbox.tasks
            inbox.tasks = []
            return t
        }
    }

    func setThread() { threadID.store(UInt(pthread_self()), ordering: .relaxed) }
}

/// The loop's own state, confined to its thread: epoll, registrations, timers, flush list.
public final class Loop {
    public let handle: EventLoop
    public let logger: Logger
    let epfd: Int32
    /// Registrations by id; the id travels in `epoll_event.data` so a stale event for a
    /// closed-and-reused fd finds nothing.
    private var registrations: [UInt64: any Selectable] = [:]
    private var nextRegistrationID: UInt64 = 1
    private var timers = TimerHeap()
    private var running = true
    /// Connections with buffered output, flushed once per loop iteration (one writev each).
    var flushList: [Connection] = []
    /// Shared read buffer: every read lands here first, so idle connections hold no buffer.
    let readBuffer: UnsafeMutableRawBufferPointer
    /// The shared read buffer for other readers on this loop (pipes): its contents are valid until
    /// the reader returns to the loop, and nothing may keep a pointer into it.
    public var scratchBuffer: UnsafeMutableRawBufferPointer { readBuffer }
    /// Second buffer for TLS plaintext.
    let plainBuffer: UnsafeMutableRawBufferPointer
    let iovecs: UnsafeMutablePointer<iovec>
    /// Output chunks reused across connections of this loop.
    let chunkPool = ChunkPool()
    let iovMax: Int
    private var stopCallbacks: [() -> Void] = []
    /// Loop-local objects by name (per-loop services such as a broadcast hub).
    public var storage: [String: AnyObject] = [:]

    init(handle: EventLoop, epfd: Int32, logger: Logger) {
        self.handle = handle
        self.epfd = epfd
        self.logger = logger
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        plainBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        iovMax = Int(min(ctandem_iov_max(), 256))
        iovecs = .allocate(capacity: iovMax)
    }

    deinit {
        readBuffer.deallocate()
        plainBuffer.deallocate()
        iovecs.deallocate()
        _ = ctandem_close(epfd)
    }

    /// Registers `fd` for `events`; returns the registration id.
    public func register(fd: Int32, events: UInt32, _ target: any Selectable) throws(IOError) -> UInt64 {
        let id = nextRegistrationID
        nextRegistrationID += 1
        let r = ctandem_epoll_add(epfd, fd, events, id)
        if r < 0 { throw IOError(errno: -r, function: "epoll_ctl(ADD)") }
        registrations[id] = target
        return id
    }

    public func modify(fd: Int32, id: UInt64, events: UInt32) {
        let r = ctandem_epoll_mod(epfd, fd, events, id)
        if r < 0 { logger.debug("epoll_ctl(MOD) failed", metadata: ["errno": "\(-r)"]) }
    }

    public func deregister(fd: Int32, id: UInt64) {
        _ = ctandem_epoll_del(epfd, fd)
        registrations[id] = nil
    }

    /// The loop-local object stored under `key`, made by `make` the first time (per-loop
    /// services: the open WebSockets, session registries, pending responders, …).
    public func local<T: AnyObject>(_ key: String, _ make: () -> T) -> T {
        if let existing = storage[key] as? T { return existing }
        let value = make()
        storage[key] = value
        return value
    }

    /// Runs `callback` on this loop after `delay` nanoseconds. Returns an id for ``cancelTimer(_:)``.
    @discardableResult
    public func schedule(afterNanos delay: UInt64, _ callback: @escaping () -> Void) -> UInt64 {
        timers.push(deadline: monotonicNanos() &+ delay, callback)
    }

    public func cancelTimer(_ id: UInt64) { timers.cancel(id) }

    /// Runs `callback` when the loop stops.
    public func onStop(_ callback: @escaping () -> Void) { stopCallbacks.append(callback) }

    func scheduleFlush(_ c: Connection) { flushList.append(c) }

    public func stop() { running = false }

    func run() {
        handle.setThread()
        let maxEvents: Int32 = 256
        let events = UnsafeMutablePointer<ctandem_event>.allocate(capacity: Int(maxEvents))
        defer { events.deallocate() }
        while running {
            runTasks()
            flushPending()
            if !running { break }
            var timeout: Int32 = -1
            if let next = timers.nextDeadline {
                let now = monotonicNanos()
                timeout = next <= now ? 0 : Int32(min((next - now + 999_999) / 1_000_000, 60_000))
            }
            let n = ctandem_epoll_wait(epfd, events, maxEvents, timeout)
            if n < 0 {
                logger.error("epoll_wait failed", metadata: ["errno": "\(-n)"])
                continue
            }
            for i in 0..<Int(n) {
                let ev = events[i]
                if ev.data == 0 {
                    _ = ctandem_eventfd_drain(handle.wakeFD)
                    continue
                }
                if let target = registrations[ev.data] { target.ready(events: ev.events) }
            }
            flushPending()
            for cb in timers.takeDue(now: monotonicNanos()) { cb() }
        }
        for t in handle.markStopped() { t(self) }
        for cb in stopCallbacks { cb() }
        stopCallbacks = []
        flushPending()
        registrations = [:]
    }

    private func runTasks() {
        let tasks = handle.takeTasks()
        for t in tasks { t(self) }
    }

    func flushPending() {
        // Flushing can queue more flushes (e.g. a failed write closing a connection that
        // notifies another); loop until the list stays empty.
        while !flushList.isEmpty {
            let list = flushList
            flushList = []
            for c in list { c.flushNow() }
        }
    }
}

@available(*, unavailable)
extension Loop: Sendable {}

/// A binary min-heap of timers with lazy cancellation.
struct TimerHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
    }
    private var heap: [Entry] = []
    private var callbacks: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 1

    var nextDeadline: UInt64? {
        mutating get {
            while let top = heap.first, callbacks[top.id] == nil { popTop() }
            return heap.first?.deadline
        }
    }

    mutating func push(deadline: UInt64, _ cb: @escaping () -> Void) -> UInt64 {
        let id = nextID
        nextID += 1
        callbacks[id] = cb
        heap.append(Entry(deadline: deadline, id: id))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].deadline <= heap[i].deadline { break }
            heap.swapAt(p, i)
            i = p
        }
        return id
    }

    mutating func cancel(_ id: UInt64) { callbacks[id] = nil }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].deadline < heap[m].deadline { m = l }
            if r < heap.count && heap[r].deadline < heap[m].deadline { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
    }

    /// Removes and returns the callbacks that are due; the caller runs them, so that a callback
    /// may schedule or cancel timers without overlapping access to the heap.
    mutating func takeDue(now: UInt64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let cb = callbacks.removeValue(forKey: top.id) { due.append(cb) }
        }
        return due
    }
}

/// A group of loops, one thread each.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let threads: Mutex<[pthread_t]>
    private let cursor = Atomic<Int>(0)

    /// Starts `count` loop threads.
    public init(count: Int, logger: Logger) throws(IOError) {
        ctandem_ignore_sigpipe()
        var handles: [EventLoop] = []
        var threads: [pthread_t] = []
        for i in 0..<max(1, count) {
            let ep = ctandem_epoll_create()
            if ep < 0 { throw IOError(errno: -ep, function: "epoll_create1") }
            let wake = ctandem_eventfd()
            if wake < 0 { throw IOError(errno: -wake, function: "eventfd") }
            if ctandem_epoll_add(ep, wake, CTANDEM_EPOLLIN, 0) < 0 { throw IOError(errno: errno, function: "epoll_ctl(eventfd)") }
            let handle = EventLoop(index: i, wakeFD: wake)
            handles.append(handle)
            var l = logger
            l[metadataKey: "loop"] = "\(i)"
            let lg = l
            let t = try spawnThread(name: "tandem-loop-\(i)") {
                ctandem_set_thread_name("tandem-loop-\(i)")
                let loop = Loop(handle: handle, epfd: ep, logger: lg)
                loop.run()
            }
            threads.append(t)
        }
        self.loops = handles
        self.threads = Mutex(threads)
    }

    /// The next loop, round robin.
    public func next() -> EventLoop {
        loops[cursor.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Stops every loop and waits for their threads.
    public func shutdown() {
        for l in loops { l.execute { $0.stop() } }
        let ts = threads.withLock { t in
            let copy = t
            t = []
            return copy
        }
        for t in ts { pthread_join(t, nil) }
    }
}

private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a detached-joinable POSIX thread running `body`.
func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) throws(IOError) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var t = pthread_t()
    let r = pthread_create(&t, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    if r != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        throw IOError(errno: r, function: "pthread_create")
    }
    return t
}
