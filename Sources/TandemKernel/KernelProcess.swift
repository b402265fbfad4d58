// One running container with its driver, seen through its pipes: requests go to stdin, output
// comes from stdout/stderr, protocol events from fd 3, death from the init's pidfd. It knows
// nothing of workspaces, queues or subscribers; WorkspaceKernel drives it. Loop-confined.
import CTandemSystem
import TandemLoop
#if canImport(Glibc)
import Glibc
#endif

/// Why a kernel process ended.
public enum KernelExitCause: Sendable, Equatable, CustomStringConvertible {
    /// The memory cgroup's OOM killer killed it.
    case outOfMemory
    case exited(ProcessExit)
    /// We stopped it (shutdown, restart, idle, timeout).
    case stopped
    /// It broke the driver protocol and was removed.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .outOfMemory: "killed: out of memory (the kernel's memory limit)"
        case .exited(let e): e.description
        case .stopped: "stopped"
        case .protocolViolation(let why): "removed: protocol violation (\(why))"
        }
    }
}

final class KernelProcess {
    /// Callbacks to the owner, all on the loop.
    struct Delegate {
        var output: (OutputStream, String) -> Void
        var event: (DriverEvent) -> Void
        var exited: (KernelExitCause) -> Void
    }

    let containerID: String
    let spec: KernelSpec
    private unowned let loop: Loop
    private let backend: any ContainerBackend
    private(set) var handle: ContainerHandle?
    var delegate: Delegate?
    /// Called once the container is gone (for the host's bookkeeping).
    var onGone: (() -> Void)?
    private(set) var ready = false
    private var readyWaiters: [(Result<Void, KernelError>) -> Void] = []
    private var watches: [FileDescriptorWatch] = []
    private var outputWatches: [OutputStream: FileDescriptorWatch] = [:]
    private var outputClosed: Set<OutputStream> = []
    private var bucket: TokenBucket
    private var resumeTimer: UInt64?
    private var exitWatch: ExitWatch?
    private var stdinWatch: FileDescriptorWatch?
    private var pendingInput: [UInt8] = []
    private var events = LineSplitter(maxLine: 8 << 20)
    /// Output read but not yet delivered (coalescing, and incomplete UTF-8 sequences).
    private var pendingOutput: [OutputStream: [UInt8]] = [:]
    private var flushTimer: UInt64?
    private var lastDelivery: UInt64 = 0
    private(set) var stats: CgroupStatsReader?
    private var destroyed = false
    private(set) var exitCause: KernelExitCause?
    let startedAt = monotonicNanos()
    private(set) var readyAt: UInt64 = 0
    /// When the backend reported the container running (start-up timing, for logs and benchmarks).
    private(set) var launchedAt: UInt64 = 0

    init(containerID: String, spec: KernelSpec, loop: Loop, backend: any ContainerBackend, outputRate: Int) {
        bucket = TokenBucket(rate: Double(outputRate))
        self.containerID = containerID
        self.spec = spec
        self.loop = loop
        self.backend = backend
    }

    /// Launches the container; `whenReady` runs once the driver has said `ready` (or failed).
    func start(workspace: String?, limits: KernelLimits, whenReady: @escaping (Result<Void, KernelError>) -> Void) {
        readyWaiters.append(whenReady)
        launching = true
        let request = LaunchRequest(containerID: containerID, spec: spec, workspace: workspace, limits: limits)
        backend.launch(request) { [self] result in
            switch result {
            case .failure(let e):
                launching = false
                exitCause = .exited(ProcessExit(code: nil, signal: nil))
                finishReady(.failure(e))
                releaseWaiters()
            case .success(let h):
                launching = false
                launchedAt = monotonicNanos()
                attachPipes(h)
                if destroyed {
                    // Shut down while starting: remove it (the exit watch from attachPipes reaps
                    // its init, which is our child now).
                    teardown(cause: .stopped) {}
                }
            }
        }
    }

    private func attachPipes(_ h: ContainerHandle) {
        handle = h
        if let cg = h.cgroup { stats = CgroupStatsReader(cg) }
        // First, and strong: the process object lives until its init has been reaped (no zombies).
        exitWatch = ExitWatch(loop: loop, pid: h.pid, pidfd: h.pidfd) { [self] exit in processExited(exit) }
        do {
            try watchOutput(h)
            watches.append(try loop.watch(fd: h.events, events: Epoll.readable) { [unowned self] _ in readEvents() })
        } catch {
            finishReady(.failure(KernelError(.startFailed, "cannot watch the kernel's pipes: \(error)")))
            teardown(cause: .stopped) {}
            return
        }
    }

    private func finishReady(_ r: Result<Void, KernelError>) {
        let waiters = readyWaiters
        readyWaiters = []
        for w in waiters { w(r) }
    }

    // MARK: Input

    func send(_ request: DriverRequest) {
        guard let h = handle, !destroyed else { return }
        pendingInput.append(contentsOf: request.line)
        flushInput(h)
    }

    private func flushInput(_ h: ContainerHandle) {
        while !pendingInput.isEmpty {
            let n = pendingInput.withUnsafeBytes { ctandem_write(h.stdin, $0.baseAddress, $0.count) }
            if n > 0 {
                pendingInput.removeFirst(n)
            } else if n == -Int(EAGAIN) {
                if stdinWatch == nil {
                    stdinWatch = try? loop.watch(fd: h.stdin, events: Epoll.writable) { [unowned self] _ in
                        if let h = handle { flushInput(h) }
                    }
                }
                return
            } else {
                pendingInput = []  // EPIPE: the driver is gone; its exit is reported separately.
                break
            }
        }
        stdinWatch?.cancel()
        stdinWatch = nil
    }

    // MARK: Output

    private func watchOutput(_ h: ContainerHandle) throws(IOError) {
        for (stream, fd) in [(OutputStream.stdout, h.stdout), (.stderr, h.stderr)] where !outputClosed.contains(stream) {
            let w = try loop.watch(fd: fd, events: Epoll.readable) { [unowned self] _ in readOutput(stream) }
            outputWatches[stream] = w
        }
    }

    private func readOutput(_ stream: OutputStream, ignoringBudget: Bool = false) {
        guard let h = handle else { return }
        let fd = stream == .stdout ? h.stdout : h.stderr
        let buf = loop.scratchBuffer
        while true {
            if !ignoringBudget && !bucket.hasTokens(now: monotonicNanos()) { return pauseOutput() }
            let n = ctandem_read(fd, buf.baseAddress, buf.count)
            if n > 0 {
                bucket.consume(n, now: monotonicNanos())
                emitOutput(stream, UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                if n < buf.count { return }
            } else {
                if n != -Int(EAGAIN) {
                    outputClosed.insert(stream)
                    outputWatches.removeValue(forKey: stream)?.cancel()
                }
                return
            }
        }
    }

    /// Over the output budget: stop reading stdout and stderr until it has refilled. The
    /// kernel's writes then block once the pipes are full: a tight print loop is slowed down to
    /// the rate, nothing is dropped, and the server spends no more CPU on it than the rate costs.
    private func pauseOutput() {
        guard resumeTimer == nil else { return }
        for w in outputWatches.values { w.cancel() }
        outputWatches = [:]
        let wait = bucket.nanosUntilTokens(now: monotonicNanos())
        resumeTimer = loop.schedule(afterNanos: max(wait, 1_000_000)) { [weak self] in
            guard let self else { return }
            self.resumeTimer = nil
            guard let h = self.handle, !self.destroyed else { return }
            try? self.watchOutput(h)
        }
    }

    /// Reads whatever output is already in the pipes and delivers it (before an execution's
    /// `done` is reported; at most a pipe's worth each, since the driver wrote `done` after its
    /// output).
    func drainOutput() {
        readOutput(.stdout, ignoringBudget: true)
        readOutput(.stderr, ignoringBudget: true)
        flushOutput()
    }

    /// Output is coalesced: a read is delivered at once when nothing was delivered in the last
    /// 2 ms (a lone print reaches observers in well under a millisecond), otherwise it joins
    /// the pending chunk, flushed 2 ms after the previous delivery or at 32 KiB. A tight print
    /// loop thus costs at most 500 events a second per stream, not one per line.
    private func emitOutput(_ stream: OutputStream, _ bytes: UnsafeRawBufferPointer) {
        pendingOutput[stream, default: []].append(contentsOf: bytes)
        let now = monotonicNanos()
        let pendingBytes = (pendingOutput[.stdout]?.count ?? 0) + (pendingOutput[.stderr]?.count ?? 0)
        if pendingBytes >= 32 * 1024 || (flushTimer == nil && now &- lastDelivery >= Self.coalesceNanos) {
            flushOutput()
        } else if flushTimer == nil {
            flushTimer = loop.schedule(afterNanos: lastDelivery &+ Self.coalesceNanos &- now) { [weak self] in
                guard let self else { return }
                self.flushTimer = nil
                self.flushOutput()
            }
        }
    }

    static let coalesceNanos: UInt64 = 2_000_000

    private func flushOutput() {
        if let t = flushTimer {
            loop.cancelTimer(t)
            flushTimer = nil
        }
        for stream in [OutputStream.stdout, .stderr] {
            guard var data = pendingOutput[stream], !data.isEmpty else { continue }
            // Hold back an incomplete UTF-8 sequence at the end until its rest arrives.
            let cut = utf8CompletePrefix(data)
            pendingOutput[stream] = cut < data.count ? Array(data[cut...]) : []
            data.removeLast(data.count - cut)
            if !data.isEmpty { delegate?.output(stream, String(decoding: data, as: UTF8.self)) }
        }
        lastDelivery = monotonicNanos()
    }

    private func readEvents() {
        guard let h = handle else { return }
        let buf = loop.scratchBuffer
        while true {
            let n = ctandem_read(h.events, buf.baseAddress, buf.count)
            if n > 0 {
                for line in events.append(UnsafeRawBufferPointer(rebasing: buf[0..<n])) {
                    guard let ev = DriverEvent.decode(line) else { continue }
                    handleEvent(ev)
                }
                if events.overflowed {
                    // A protocol violation (a line of megabytes on fd 3): the kernel cannot be
                    // trusted any more; it is removed and reported dead.
                    stopWatching(h.events)
                    teardown(cause: .protocolViolation("an event line longer than \(events.maxLine) bytes")) {}
                    return
                }
            } else {
                if n != -Int(EAGAIN) { stopWatching(h.events) }
                return
            }
        }
    }

    private func handleEvent(_ ev: DriverEvent) {
        if case .ready = ev, !ready {
            ready = true
            readyAt = monotonicNanos()
            finishReady(.success(()))
            return
        }
        guard ready else { return }
        drainOutput()
        delegate?.event(ev)
    }

    private func stopWatching(_ fd: Int32) {
        for w in watches where w.fd == fd { w.cancel() }
    }

    // MARK: Control

    func interrupt() {
        if let h = handle, !destroyed { backend.interrupt(h) }
    }

    func attach(workspace: String) throws(KernelError) {
        guard let h = handle else { throw KernelError(.startFailed, "kernel not running") }
        try backend.attach(h, workspace: workspace)
    }

    private func processExited(_ exit: ProcessExit) {
        exitWatch = nil
        if let w = reapWaiter {
            // The teardown was waiting for this.
            reapWaiter = nil
            return w()
        }
        drainOutput()
        var cause = KernelExitCause.exited(exit)
        if destroyed {
            cause = .stopped
        } else if let s = stats?.sample(now: monotonicNanos()), s.oomKills > 0 {
            cause = .outOfMemory
        }
        teardown(cause: cause) {}
    }

    /// Kills and removes the container; `completion` runs once it is gone. Idempotent.
    func destroy(completion: @escaping () -> Void) {
        destroyed = true
        guard handle != nil else {
            if launching {
                // Still launching: `start`'s completion tears it down, then calls this.
                teardownWaiters.append(completion)
            } else {
                completion()
            }
            return
        }
        teardown(cause: .stopped, completion: completion)
    }

    private var tearingDown = false
    /// Between `start` and the backend's answer.
    private var launching = false
    private var teardownWaiters: [() -> Void] = []

    private func teardown(cause: KernelExitCause, completion: @escaping () -> Void) {
        teardownWaiters.append(completion)
        guard !tearingDown else { return }
        tearingDown = true
        if exitCause == nil { exitCause = cause }
        if !ready { finishReady(.failure(KernelError(.startFailed, "kernel \(cause) before it was ready"))) }
        let reported = exitCause ?? cause
        guard let h = handle else { return }
        backend.destroy(h) { [self] in
            // The container's init is our child (subreaper): finish only once it is reaped, so a
            // server that stops right after leaves no zombie. Its exit follows the runtime's
            // SIGKILL at once; two seconds is a safety net.
            if exitWatch == nil { return finishTeardown(h, reported) }
            reapWaiter = { [self] in finishTeardown(h, reported) }
            loop.schedule(afterNanos: 2_000_000_000) { [weak self] in
                guard let self, let w = self.reapWaiter else { return }
                self.reapWaiter = nil
                w()
            }
        }
    }

    private var reapWaiter: (() -> Void)?

    private func finishTeardown(_ h: ContainerHandle, _ reported: KernelExitCause) {
        for w in watches { w.cancel() }
        watches = []
        for w in outputWatches.values { w.cancel() }
        outputWatches = [:]
        if let t = resumeTimer { loop.cancelTimer(t) }
        resumeTimer = nil
        if let t = flushTimer { loop.cancelTimer(t) }
        flushTimer = nil
        stdinWatch?.cancel()
        stdinWatch = nil
        stats?.close()
        for fd in [h.stdin, h.stdout, h.stderr, h.events] { _ = ctandem_close(fd) }
        let d = delegate
        delegate = nil
        d?.exited(reported)
        releaseWaiters()
    }

    /// The process is gone (or never started): tell whoever waited for its removal, then the host.
    private func releaseWaiters() {
        let waiters = teardownWaiters
        teardownWaiters = []
        for w in waiters { w() }
        let gone = onGone
        onGone = nil
        gone?()
    }
}

@available(*, unavailable)
extension KernelProcess: Sendable {}

/// Output streams of a kernel.
public enum OutputStream: String, Sendable {
    case stdout, stderr
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence.
func utf8CompletePrefix(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var i = n - 1
    var back = 0
    while i >= 0 && back < 4 {
        let b = bytes[i]
        if b & 0xC0 != 0x80 {
            let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            return back + 1 >= need ? n : i
        }
        i -= 1
        back += 1
    }
    return n
}
