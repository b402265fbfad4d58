// The kernel of one workspace as its users see it: a queue of executions run one at a time,
// output and stats fanned out to every attached observer, a replay buffer for late joiners,
// and a process (container) that can die, be interrupted or be replaced. Loop-confined; the
// only owner of this state is the kernel loop.
import TandemLoop

/// What an execution reports back to whoever asked for it (besides the events everybody sees).
public struct ExecutionTranscript: Sendable, Equatable {
    public var outcome: ExecutionOutcome
    /// The execution's own stdout and stderr (kept only when requested, up to 1 MiB each).
    public var stdout: String
    public var stderr: String
}

/// The state a newly attached observer starts from.
public struct KernelSnapshot: Sendable {
    public var workspace: String
    public var kernel: String
    public var state: KernelState
    /// The sequence number of the last event (the next one is `seq + 1`).
    public var seq: UInt64
    /// Recent events (output, executions, state changes), oldest first, for replay.
    public var replay: [KernelEventRecord]
    public var queued: Int
    public var running: Int?
    /// Set when the caller asked to resume after a sequence number older than the buffer.
    public var gap: ReplayGap?
}

final class WorkspaceKernel {
    struct Pending {
        var id: Int
        var code: String
        var requester: String
        var timeout: Double?
        var collect: Bool
        var completion: ((ExecutionTranscript) -> Void)?
    }
    struct Running {
        var pending: Pending
        var startedAt: UInt64
        var cpuAtStart: Int64
        var timer: UInt64?
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
    }

    let workspaceID: String
    let directory: String
    let spec: KernelSpec
    private unowned let host: KernelHost
    private unowned let loop: Loop
    private(set) var state: KernelState = .stopped
    private var process: KernelProcess?
    private var queue: [Pending] = []
    private var running: Running?
    private var completions: [Int: ([String], Int) -> Void] = [:]
    private var observers: [ObjectIdentifier: any KernelObserver] = [:]
    private var seq: UInt64 = 0
    private var replay: ReplayBuffer
    private(set) var lastActivity = monotonicNanos()
    private var statsTimer: UInt64?
    private var lastPidsHits: Int64 = 0
    /// Set by the host's disk accounting.
    var overQuota = false
    private var starting = false

    init(workspaceID: String, directory: String, spec: KernelSpec, host: KernelHost, loop: Loop) {
        self.workspaceID = workspaceID
        self.directory = directory
        self.spec = spec
        self.host = host
        self.loop = loop
        replay = ReplayBuffer(limit: host.settings.replayBytes)
    }

    var isIdle: Bool { running == nil && queue.isEmpty && !starting }
    var hasProcess: Bool { process != nil }
    var observerCount: Int { observers.count }

    // MARK: Observers

    func attach(_ o: any KernelObserver, afterSeq: UInt64? = nil) -> KernelSnapshot {
        observers[ObjectIdentifier(o)] = o
        startStatsIfNeeded()
        return snapshot(afterSeq: afterSeq)
    }

    func detach(_ o: any KernelObserver) {
        observers[ObjectIdentifier(o)] = nil
        if observers.isEmpty, let t = statsTimer {
            loop.cancelTimer(t)
            statsTimer = nil
        }
    }

    /// The current state and the replay buffer; with `afterSeq`, only the events after it (and
    /// a gap when some of them are no longer held).
    func snapshot(afterSeq: UInt64? = nil) -> KernelSnapshot {
        var records = Array(replay.heldRecords)
        var gap: ReplayGap?
        if var after = afterSeq {
            if after > seq {
                // A sequence number from an earlier stream (the server restarted): start over,
                // and say that everything before the buffer is unknown.
                after = 0
                gap = ReplayGap(fromSeq: 1, toSeq: (replay.heldRecords.first?.seq ?? (seq + 1)) - 1, bytes: 0, atLeast: true)
            }
            records = records.filter { $0.seq > after }
            let firstHeld = replay.heldRecords.first?.seq ?? (seq + 1)
            if gap == nil && after + 1 < firstHeld && after < seq {
                let (bytes, atLeast) = replay.outputBytesEvicted(after: after)
                gap = ReplayGap(fromSeq: after + 1, toSeq: firstHeld - 1, bytes: bytes, atLeast: atLeast)
            }
        }
        return KernelSnapshot(workspace: workspaceID, kernel: spec.name, state: state, seq: seq, replay: Array(records),
                              queued: queue.count, running: running?.pending.id, gap: gap)
    }

    /// Tells everyone attached that `by` did `name` (interrupt, restart).
    func announce(_ name: String, by: String) { emit(.action(name: name, by: by)) }

    private func emit(_ event: KernelEvent) {
        seq += 1
        let record = KernelEventRecord(workspace: workspaceID, seq: seq, event: event)
        switch event {
        case .stats: break
        default: replay.append(record)
        }
        for o in observers.values { o.kernelEvent(record) }
    }

    private func setState(_ s: KernelState, _ reason: String? = nil) {
        guard s != state || reason != nil else { return }
        state = s
        emit(.state(s, reason: reason))
    }

    // MARK: Requests

    /// Queues an execution; returns its id. The completion (if any) gets the outcome.
    func execute(_ p: Pending) throws(KernelError) {
        guard p.code.utf8.count <= host.settings.maxCodeBytes else {
            throw KernelError(.codeTooLarge, "code is \(p.code.utf8.count) bytes; the limit is \(host.settings.maxCodeBytes)")
        }
        guard queue.count < host.settings.maxQueue else {
            throw KernelError(.queueFull, "\(queue.count) executions are already waiting for this kernel")
        }
        guard !overQuota else {
            throw KernelError(.diskQuota, "workspace uses more than \(host.settings.diskQuotaMB) MB; delete files to run code again")
        }
        if process == nil && !starting { try host.checkCapacity() }
        queue.append(p)
        lastActivity = monotonicNanos()
        ensureProcess()
        pump()
    }

    func complete(code: String, cursor: Int, reply: @escaping ([String], Int) -> Void) {
        guard let process, process.ready else { return reply([], cursor) }
        let id = host.nextID()
        completions[id] = reply
        process.send(.complete(id: id, code: code, cursor: cursor))
    }

    func interrupt() {
        guard running != nil else { return }
        process?.interrupt()
    }

    /// Replaces the process: the running execution ends as `died`, queued ones are cancelled.
    func restart(reason: String, completion: @escaping (Result<Void, KernelError>) -> Void) {
        stopProcess(reason: reason, final: .starting) { [self] in
            starting = false
            ensureProcess { result in completion(result) }
        }
    }

    func shutdown(reason: String, completion: @escaping () -> Void) {
        stopProcess(reason: reason, final: .stopped, completion: completion)
    }

    private func stopProcess(reason: String, final: KernelState, completion: @escaping () -> Void) {
        let p = process
        process = nil
        failAll(running: .died, queued: .cancelled, why: reason)
        setState(final, reason)
        if let p {
            p.destroy(completion: completion)
        } else {
            completion()
        }
    }

    // MARK: Process

    private func ensureProcess(_ done: ((Result<Void, KernelError>) -> Void)? = nil) {
        if process != nil && !starting { done?(.success(())); return }
        if starting { done.map { startWaiters.append($0) }; return }
        starting = true
        if let done { startWaiters.append(done) }
        setState(.starting)
        host.obtainProcess(for: self) { [self] result in
            starting = false
            switch result {
            case .success(let p):
                process = p
                p.delegate = KernelProcess.Delegate(
                    output: { [unowned self] stream, text in output(stream, text) },
                    event: { [unowned self] ev in driverEvent(ev) },
                    exited: { [unowned self, unowned p] cause in processExited(p, cause) })
                setState(.idle)
                // Measure the workspace soon, off the path of the first execution.
                loop.schedule(afterNanos: 500_000_000) { [weak self] in
                    guard let self, self.process != nil else { return }
                    self.host.checkDisk(self)
                }
                finishStart(.success(()))
                pump()
            case .failure(let e):
                failAll(running: .died, queued: .cancelled, why: e.message)
                setState(.dead, e.message)
                finishStart(.failure(e))
            }
        }
    }

    private var startWaiters: [(Result<Void, KernelError>) -> Void] = []
    private func finishStart(_ r: Result<Void, KernelError>) {
        let w = startWaiters
        startWaiters = []
        for f in w { f(r) }
    }

    private func processExited(_ p: KernelProcess, _ cause: KernelExitCause) {
        guard p === process else { return }
        process = nil
        failAll(running: .died, queued: .cancelled, why: "kernel \(cause)")
        if case .stopped = cause {
            setState(.stopped, "stopped")
        } else {
            setState(.dead, cause.description)
        }
    }

    // MARK: Executions

    private func pump() {
        guard running == nil, !starting, let process, process.ready, !queue.isEmpty else { return }
        let p = queue.removeFirst()
        let cpu = process.stats?.sample(now: monotonicNanos()).cpuNanos ?? 0
        process.stats?.resetPeak()
        var r = Running(pending: p, startedAt: monotonicNanos(), cpuAtStart: cpu)
        if let t = p.timeout {
            r.timer = loop.schedule(afterNanos: UInt64(t * 1e9)) { [weak self] in self?.timedOut(p.id) }
        }
        running = r
        setState(.busy)
        emit(.started(executionID: p.id, requester: p.requester))
        process.send(.execute(id: p.id, code: p.code))
    }

    private func timedOut(_ id: Int) {
        guard let r = running, r.pending.id == id else { return }
        running?.timer = nil
        finish(status: .timeout, result: nil, error: ExecutionError(name: "Timeout", message: "stopped after \(r.pending.timeout ?? 0) s"))
        let p = process
        process = nil
        failAll(running: .died, queued: .cancelled, why: "timeout")
        setState(.stopped, "timeout")
        p?.destroy {}
    }

    private func driverEvent(_ ev: DriverEvent) {
        guard case .done(let id, let status, let result, let error, let matches, let cursorStart) = ev, let id else { return }
        if let reply = completions.removeValue(forKey: id) {
            reply(matches ?? [], cursorStart ?? 0)
            return
        }
        guard running?.pending.id == id else { return }
        finish(status: status, result: result, error: error)
        pump()
    }

    private func finish(status: ExecutionStatus, result: String?, error: ExecutionError?) {
        guard var r = running else { return }
        running = nil
        if let t = r.timer { loop.cancelTimer(t) }
        let now = monotonicNanos()
        let s = process?.stats?.sample(now: now)
        let outcome = ExecutionOutcome(
            executionID: r.pending.id, status: status, result: result, error: error, wallNanos: now - r.startedAt,
            cpuNanos: max(0, (s?.cpuNanos ?? 0) - r.cpuAtStart), peakMemoryBytes: s?.memoryPeakBytes ?? 0)
        lastActivity = now
        emit(.finished(outcome))
        if process != nil, queue.isEmpty { setState(.idle) }
        let stdout = String(decoding: r.stdout, as: UTF8.self)
        let stderr = String(decoding: r.stderr, as: UTF8.self)
        r.stdout = []
        r.stderr = []
        r.pending.completion?(ExecutionTranscript(outcome: outcome, stdout: stdout, stderr: stderr))
        if process != nil { host.checkDisk(self) }
    }

    private func failAll(running runningStatus: ExecutionStatus, queued: ExecutionStatus, why: String) {
        if running != nil {
            finish(status: runningStatus, result: nil, error: ExecutionError(name: "KernelDied", message: why))
        }
        let q = queue
        queue = []
        for p in q {
            let outcome = ExecutionOutcome(executionID: p.id, status: queued, result: nil,
                                           error: ExecutionError(name: "Cancelled", message: why), wallNanos: 0, cpuNanos: 0, peakMemoryBytes: 0)
            emit(.finished(outcome))
            p.completion?(ExecutionTranscript(outcome: outcome, stdout: "", stderr: ""))
        }
        let c = completions
        completions = [:]
        for (_, reply) in c { reply([], 0) }
    }

    // MARK: Output

    private func output(_ stream: OutputStream, _ text: String) {
        let id = running?.pending.id
        if running?.pending.collect == true {
            let limit = 1 << 20
            if stream == .stdout, running!.stdout.count < limit { running!.stdout.append(contentsOf: text.utf8.prefix(limit - running!.stdout.count)) }
            if stream == .stderr, running!.stderr.count < limit { running!.stderr.append(contentsOf: text.utf8.prefix(limit - running!.stderr.count)) }
        }
        emit(.output(executionID: id, stream: stream, text: text))
    }

    // MARK: Stats

    private func startStatsIfNeeded() {
        guard statsTimer == nil, !observers.isEmpty else { return }
        let interval = UInt64(1e9 / host.settings.statsHz)
        func tick() {
            statsTimer = loop.schedule(afterNanos: interval) { [weak self] in
                guard let self else { return }
                self.statsTimer = nil
                guard !self.observers.isEmpty else { return }
                self.sampleStats()
                tick()
            }
        }
        tick()
    }

    private func sampleStats() {
        guard let reader = process?.stats, reader.isAvailable else { return }
        let s = reader.sample(now: monotonicNanos())
        if s.pidsLimitHits > lastPidsHits {
            emit(.notice(code: "pids_limit", message: "\(s.pidsLimitHits - lastPidsHits) process or thread creations refused: the kernel is at its limit of \(s.pidsLimit)"))
            lastPidsHits = s.pidsLimitHits
        }
        emit(.stats(s))
    }

    func notice(_ code: String, _ message: String) { emit(.notice(code: code, message: message)) }
}

@available(*, unavailable)
extension WorkspaceKernel: Sendable {}

/// Recent events kept for replay, bounded by an estimate of their size. For evicted events
/// it keeps a compact index (sequence number → output bytes so far), so a late joiner can be
/// told how many output bytes it lost.
struct ReplayBuffer {
    private(set) var records: [KernelEventRecord] = []
    private var head = 0
    private var bytes = 0
    let limit: Int
    /// Output bytes in every event ever appended.
    private var outputTotal = 0
    /// Output bytes before each held record (parallel to `records`).
    private var outputBefore: [Int] = []
    /// (seq, output bytes before and through it) of evicted records, the newest 65,536.
    private var evicted: [(seq: UInt64, before: Int, through: Int)] = []

    init(limit: Int) { self.limit = limit }

    var heldRecords: ArraySlice<KernelEventRecord> { records[head...] }

    mutating func append(_ r: KernelEventRecord) {
        let size = Self.size(r)
        outputBefore.append(outputTotal)
        outputTotal += Self.outputBytes(r)
        records.append(r)
        bytes += size
        while bytes > limit, head < records.count {
            let old = records[head]
            bytes -= Self.size(old)
            evicted.append((old.seq, outputBefore[head], outputBefore[head] + Self.outputBytes(old)))
            head += 1
        }
        if evicted.count > 70_000 { evicted.removeFirst(evicted.count - 65_536) }
        // Compact now and then so the arrays do not grow without bound.
        if head > 4096 && head * 2 > records.count {
            records.removeFirst(head)
            outputBefore.removeFirst(head)
            head = 0
        }
        if limit == 0 {
            records = []
            outputBefore = []
            head = 0
        }
    }

    /// Output bytes in evicted events after `seq`.
    func outputBytesEvicted(after seq: UInt64) -> (bytes: Int, atLeast: Bool) {
        let firstHeldBefore = head < outputBefore.count ? outputBefore[head] : outputTotal
        guard let oldest = evicted.first else { return (0, false) }
        if seq < oldest.seq {
            // Before the index starts: everything from its first entry on, and possibly more.
            return (max(0, firstHeldBefore - oldest.before), seq + 1 < oldest.seq)
        }
        // The last evicted record at or before `seq`.
        var lo = 0, hi = evicted.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if evicted[mid].seq <= seq { lo = mid } else { hi = mid - 1 }
        }
        return (max(0, firstHeldBefore - evicted[lo].through), false)
    }

    static func outputBytes(_ r: KernelEventRecord) -> Int {
        if case .output(_, _, let text) = r.event { return text.utf8.count }
        return 0
    }

    static func size(_ r: KernelEventRecord) -> Int { 64 + outputBytes(r) }
}

/// Bytes per second with a one-second burst; consumption may overdraw it (a read is taken
/// whole), and the reader waits until it is positive again.
struct TokenBucket {
    let rate: Double
    private var tokens: Double
    private var last: UInt64 = 0

    init(rate: Double) {
        self.rate = rate
        tokens = rate
    }

    private mutating func refill(now: UInt64) {
        if last != 0, now > last { tokens = min(rate, tokens + rate * Double(now - last) / 1e9) }
        last = now
    }

    mutating func hasTokens(now: UInt64) -> Bool {
        refill(now: now)
        return tokens > 0
    }

    mutating func consume(_ n: Int, now: UInt64) {
        refill(now: now)
        tokens -= Double(n)
    }

    /// Time until the bucket is positive again (0 when it is).
    mutating func nanosUntilTokens(now: UInt64) -> UInt64 {
        refill(now: now)
        return tokens > 0 ? 0 : UInt64((-tokens + 1) / rate * 1e9)
    }
}
