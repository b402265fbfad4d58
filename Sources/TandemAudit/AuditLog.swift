// The audit log: a bounded queue that any thread appends to, and one writer thread that owns
// the SQLite connection, batches queued entries into transactions, extends the hash chain and
// the Merkle tree inside each transaction, and signs tree heads.

import TandemSQLite
import TandemCrypto
#if canImport(Glibc)
import Glibc
#endif

/// Settings of an ``AuditLog``.
public struct AuditLogConfiguration: Sendable {
    /// The SQLite file (created with its directory when missing).
    public var databasePath: String
    /// Where the keys live.
    public var keys: AuditKeyConfiguration
    /// How many entries may wait for the writer. At this bound ``AuditLog/append(_:)`` blocks
    /// its caller until the writer has taken a batch (backpressure on the audited action;
    /// entries are never dropped), and ``AuditLog/tryAppend(_:)`` returns nil. Default 65,536
    /// (a few MB of queued events; about a second of writing on a slow disk).
    public var queueCapacity: Int = 65_536
    /// The most entries written in one transaction. Default 8,192.
    public var maxBatch: Int = 8_192
    /// Sign a tree head once this many entries are not covered by one. Default 1,024.
    public var checkpointEntries: UInt64 = 1_024
    /// Sign a tree head at least this often while entries are not covered by one (seconds).
    /// Default 10.
    public var checkpointInterval: Double = 10
    /// Commit durability. Default `.full`.
    public var durability: AuditDurability = .full
    /// When set, the latest signed tree head is also written to this file (outside the
    /// database) after each checkpoint, so that truncating the database together with its tree
    /// heads is detected by `verify`.
    public var witnessPath: String?
    /// UTC microseconds since the epoch; tests inject a fixed clock.
    public var clock: @Sendable () -> Int64 = { wallClockMicros() }

    public init(databasePath: String, keys: AuditKeyConfiguration) {
        self.databasePath = databasePath
        self.keys = keys
    }

    /// The standard layout under a data directory: `<data>/audit/audit.sqlite`, the keys beside
    /// it (``AuditKeyConfiguration/standard(directory:contentKeyEnvironmentVariable:)``) and the
    /// witness `<data>/audit/latest.sth`.
    public static func standard(dataDirectory: String, contentKeyEnvironmentVariable: String? = nil) -> AuditLogConfiguration {
        let dir = dataDirectory + "/audit"
        var c = AuditLogConfiguration(
            databasePath: dir + "/audit.sqlite",
            keys: .standard(directory: dir, contentKeyEnvironmentVariable: contentKeyEnvironmentVariable))
        c.witnessPath = dir + "/latest.sth"
        return c
    }
}

/// Counters for health checks and benchmarks.
public struct AuditLogStatistics: Sendable, Equatable {
    /// The last sequence number handed out by `append`.
    public var lastAssigned: UInt64
    /// Every entry up to this one is committed.
    public var committedThrough: UInt64
    /// Entries waiting for the writer.
    public var queued: Int
    /// How many `append` calls had to wait for space (backpressure applied).
    public var blockedAppends: UInt64
    /// How many `tryAppend` calls found the queue full.
    public var refusedAppends: UInt64
    /// Transactions committed.
    public var batches: UInt64
    /// The size of the latest signed tree head.
    public var latestTreeSize: UInt64
    /// The last write error, while the writer is retrying; nil when writing works.
    public var writeError: String?
}

/// The audit log.
///
/// ```swift
/// let log = try AuditLog(.standard(dataDirectory: "workspaces"))
/// var e = AuditEvent(.fileWrite, actor: AuditActor(id: "u1", role: "editor"), workspace: "w1")
/// e.add("bytes", data.count)
/// e.addDigest("content", of: data, key: log.contentKey)
/// try log.appendAndWait(e)   // durable before the client is told "saved"
/// ```
///
/// ## Threads
/// `append`, `tryAppend`, `appendAndWait` and `flush` may be called from any thread. The
/// sequence number and time are assigned under a lock when the entry is queued, so sequence
/// order is queue order and times never decrease. One writer thread owns the database.
///
/// ## Backpressure
/// The queue holds at most ``AuditLogConfiguration/queueCapacity`` entries. At the bound,
/// `append` blocks until the writer drains a batch, slowing the audited action down to the
/// speed of the disk; nothing is ever dropped. Event-loop threads must not block: they use
/// ``tryAppend(_:)``, which returns nil when the queue is full, and then hold the action back
/// (stop reading from that connection, retry later) or refuse it.
///
/// ## Durability
/// `append` returns once the entry is queued. An action that must not be acknowledged before
/// its entry is durable uses ``appendAndWait(_:)`` (or ``flush()``). When a commit fails (disk
/// full, I/O error) the writer keeps the batch and retries with backoff; waiting callers keep
/// waiting (fail closed), and ``statistics`` reports the error.
public final class AuditLog: Sendable {
    public let configuration: AuditLogConfiguration
    /// The keys in use.
    public let keyring: AuditKeyring
    /// The key for content digests (``AuditEvent/addDigest(_:of:key:)``).
    public var contentKey: AuditContentKey { keyring.contentKey }

    private let shared: ConditionLock<WriterShared>
    private let thread: ConditionLock<pthread_t?>

    /// Opens (or creates) the log: loads or generates the keys, opens the database on a new
    /// writer thread, and verifies the tail of the log since the latest signed tree head.
    ///
    /// - Throws: ``AuditError`` — `.locked` if another process writes this log, `.tampered` if
    ///   the tail does not verify (the server should not start), `.database`, key errors.
    public init(_ configuration: AuditLogConfiguration) throws(AuditError) {
        precondition(configuration.queueCapacity > 0 && configuration.maxBatch > 0 && configuration.checkpointEntries > 0)
        self.configuration = configuration
        let keyring = try AuditKeyring.load(configuration.keys, create: true)
        guard keyring.signingKey != nil else { throw AuditError(.missingKey, "no signing key") }
        self.keyring = keyring
        let shared = ConditionLock(WriterShared())
        self.shared = shared
        self.thread = ConditionLock(nil)
        let writer = AuditWriterContext(configuration: configuration, keyring: keyring)
        let t = try startThread { runWriter(writer, shared) }
        thread.withLock { $0 = t }
        // Wait for the writer to open the database and check the tail.
        let failure: AuditError? = shared.wait(until: { $0.phase != .starting }) { s in s.startupError }
        if let failure {
            joinWriter()
            throw failure
        }
    }

    deinit {
        try? close()
    }

    /// Queues an entry, blocking while the queue is full. Returns its sequence number.
    ///
    /// - Throws: ``AuditError`` `.closed` after ``close()``.
    @discardableResult
    public func append(_ event: AuditEvent) throws(AuditError) -> UInt64 {
        // Encode on the caller's thread: the single writer thread only hashes and inserts.
        let event = PreparedEvent(event, defaultKeyID: keyring.contentKey.id)
        let clock = configuration.clock
        let capacity = configuration.queueCapacity, maxBatch = configuration.maxBatch
        let (seq, wake): (UInt64?, Bool) = shared.withLock { s in
            guard s.phase == .running else { return (nil, false) }
            if s.queued < capacity {
                return (s.enqueue(event, now: clock(), maxBatch: maxBatch), s.writerIdle)
            }
            return (nil, false)
        }
        if let seq {
            if wake { shared.broadcast() }
            return seq
        }
        // Full (or closed): wait for space.
        shared.withLock { s in
            s.blockedAppends += 1
            s.waiters += 1
        }
        let assigned: UInt64? = shared.wait(until: { $0.phase != .running || $0.queued < capacity }) { s in
            s.waiters -= 1
            guard s.phase == .running else { return nil }
            return s.enqueue(event, now: clock(), maxBatch: maxBatch)
        }
        guard let assigned else { throw AuditError(.closed, "the audit log is closed") }
        shared.broadcast()
        return assigned
    }

    /// Queues an entry if there is room; never blocks. Returns its sequence number, or nil when
    /// the queue is full (the caller applies backpressure: holds the action back or refuses it).
    ///
    /// - Throws: ``AuditError`` `.closed` after ``close()``.
    public func tryAppend(_ event: AuditEvent) throws(AuditError) -> UInt64? {
        let event = PreparedEvent(event, defaultKeyID: keyring.contentKey.id)
        let clock = configuration.clock
        let capacity = configuration.queueCapacity, maxBatch = configuration.maxBatch
        let (seq, wake, closed): (UInt64?, Bool, Bool) = shared.withLock { s in
            guard s.phase == .running else { return (nil, false, true) }
            guard s.queued < capacity else {
                s.refusedAppends += 1
                return (nil, false, false)
            }
            return (s.enqueue(event, now: clock(), maxBatch: maxBatch), s.writerIdle, false)
        }
        if closed { throw AuditError(.closed, "the audit log is closed") }
        if wake { shared.broadcast() }
        return seq
    }

    /// Queues an entry and waits until it is committed. Returns its sequence number.
    @discardableResult
    public func appendAndWait(_ event: AuditEvent) throws(AuditError) -> UInt64 {
        let seq = try append(event)
        try waitForCommit(through: seq)
        return seq
    }

    /// Waits until every entry queued before this call is committed.
    public func flush() throws(AuditError) {
        let last = shared.withLock { $0.nextSeq - 1 }
        try waitForCommit(through: last)
    }

    private func waitForCommit(through seq: UInt64) throws(AuditError) {
        let ok: Bool = shared.withLock { s in
            if s.committed >= seq { return true }
            s.waiters += 1
            return false
        }
        if ok { return }
        let done: Bool = shared.wait(until: { $0.committed >= seq || $0.phase == .stopped }) { s in
            s.waiters -= 1
            return s.committed >= seq
        }
        if !done { throw AuditError(.closed, "the audit log closed before entry \(seq) was written") }
    }

    /// Signs a tree head over everything committed so far (after writing what is queued), and
    /// returns it. Returns the latest tree head when nothing is new.
    @discardableResult
    public func checkpoint() throws(AuditError) -> AuditTreeHead? {
        let ticket: UInt64? = shared.withLock { s in
            guard s.phase == .running else { return nil }
            s.checkpointRequests += 1
            s.checkpointThrough = max(s.checkpointThrough, s.nextSeq - 1)
            s.waiters += 1
            return s.checkpointRequests
        }
        guard let ticket else { throw AuditError(.closed, "the audit log is closed") }
        shared.broadcast()
        return try shared.wait(until: { $0.checkpointsDone >= ticket || $0.phase == .stopped }) { s throws(AuditError) in
            s.waiters -= 1
            guard s.checkpointsDone >= ticket else { throw AuditError(.closed, "the audit log closed") }
            return s.latestTreeHead
        }
    }

    /// Runs a read on the writer thread's connection, between batches, and returns its result.
    /// For in-server queries (the WebSocket protocol); blocks the caller, so not on a loop.
    public func read<R: Sendable>(_ body: @escaping @Sendable (AuditReader) throws(AuditError) -> R) throws(AuditError) -> R {
        // The job must not capture `self`: if it held the last reference, the log's deinit
        // would run on the writer thread and try to join it.
        try perform { [keyring] store throws(AuditError) in try body(AuditReader(store: store, keyring: keyring)) }
    }

    /// Runs `body` on the writer thread with its store, between batches, and waits for it.
    func perform<R: Sendable>(_ body: @escaping @Sendable (AuditStore) throws(AuditError) -> R) throws(AuditError) -> R {
        let box = ResultBox<R>()
        let ticket: UInt64? = shared.withLock { s in
            guard s.phase == .running else { return nil }
            s.jobs.append { store in
                box.set(Result { () throws(AuditError) in try body(store) })
            }
            s.jobsQueued += 1
            s.waiters += 1
            return s.jobsQueued
        }
        guard let ticket else { throw AuditError(.closed, "the audit log is closed") }
        shared.broadcast()
        shared.wait(until: { $0.jobsDone >= ticket || $0.phase == .stopped }) { s in s.waiters -= 1 }
        guard let r = box.take() else { throw AuditError(.closed, "the audit log closed") }
        return try r.get()
    }

    /// Counters.
    public var statistics: AuditLogStatistics {
        shared.withLock { s in
            AuditLogStatistics(
                lastAssigned: s.nextSeq - 1, committedThrough: s.committed, queued: s.queued, blockedAppends: s.blockedAppends,
                refusedAppends: s.refusedAppends, batches: s.batches, latestTreeSize: s.latestTreeHead?.treeSize ?? 0,
                writeError: s.writeError)
        }
    }

    /// Writes what is queued, signs a final tree head, and stops the writer. Appends after this
    /// throw `.closed`. Idempotent.
    ///
    /// - Throws: `.io`/`.database` when entries could not be written before closing (they are
    ///   lost: the error says how many).
    public func close() throws(AuditError) {
        let alreadyStopping: Bool = shared.withLock { s in
            if s.phase == .running {
                s.phase = .closing
                return false
            }
            return true
        }
        shared.broadcast()
        joinWriter()
        if alreadyStopping { return }
        let (lost, err) = shared.withLock { ($0.nextSeq - 1 - $0.committed, $0.writeError) }
        if lost > 0 {
            throw AuditError(.io, "\(lost) audit entries were not written before close: \(err ?? "unknown error")")
        }
    }

    private func joinWriter() {
        let t: pthread_t? = thread.withLock { t in
            defer { t = nil }
            return t
        }
        if let t { pthread_join(t, nil) }
    }
}

/// Hands one result from the writer thread to the waiting caller.
private final class ResultBox<R: Sendable>: Sendable {
    private let value = ConditionLock<Result<R, AuditError>?>(nil)
    func set(_ r: Result<R, AuditError>) { value.withLock { $0 = r } }
    func take() -> Result<R, AuditError>? { value.withLock { v in defer { v = nil }; return v } }
}

// MARK: - Shared state

/// An event with its canonical encoding minus the sequence number and time, made on the
/// appending thread.
struct PreparedEvent: Sendable {
    var event: AuditEvent
    var contentKeyID: String
    /// The canonical encoding from the actor id on (everything after `seq` and `time`).
    var body: [UInt8]
    /// Where the fields block starts in `body`.
    var fieldsOffset: Int

    init(_ event: AuditEvent, defaultKeyID: String) {
        self.event = event
        let keyID = event.contentKeyID ?? defaultKeyID
        contentKeyID = keyID
        let fields = AuditFields.encode(event.fields)
        var b: [UInt8] = []
        b.reserveCapacity(fields.count + 96)
        AuditEncoding.appendString(event.actor.id, to: &b)
        AuditEncoding.appendString(event.actor.role, to: &b)
        AuditEncoding.appendString(event.action.rawValue, to: &b)
        AuditEncoding.appendString(event.workspace, to: &b)
        AuditEncoding.appendString(event.outcome.rawValue, to: &b)
        AuditEncoding.appendString(keyID, to: &b)
        AuditEncoding.appendUInt32(UInt32(fields.count), to: &b)
        fieldsOffset = b.count
        b.append(contentsOf: fields)
        body = b
    }
}

/// A prepared event with its sequence number and time, waiting for the writer.
struct PendingEntry: Sendable {
    var seq: UInt64
    var timeMicros: Int64
    var event: PreparedEvent
}

/// Everything the appending threads and the writer share, protected by the `ConditionLock`.
struct WriterShared {
    enum Phase: Equatable { case starting, running, closing, stopped }
    var phase: Phase = .starting
    var startupError: AuditError?
    /// Queued entries in chunks of at most `maxBatch`, oldest first; the writer takes one chunk
    /// per transaction (O(1) under the lock).
    var chunks: [[PendingEntry]] = []
    var queued = 0
    var nextSeq: UInt64 = 1
    var lastTime: Int64 = .min
    var committed: UInt64 = 0
    var writerIdle = false
    /// Threads blocked in append/appendAndWait/flush/checkpoint/read; the writer broadcasts
    /// after a commit only when someone waits.
    var waiters = 0
    var checkpointRequests: UInt64 = 0
    var checkpointsDone: UInt64 = 0
    /// A requested checkpoint covers at least this entry (the last queued when it was asked).
    var checkpointThrough: UInt64 = 0
    var jobs: [@Sendable (AuditStore) -> Void] = []
    var jobsQueued: UInt64 = 0
    var jobsDone: UInt64 = 0
    var blockedAppends: UInt64 = 0
    var refusedAppends: UInt64 = 0
    var batches: UInt64 = 0
    var latestTreeHead: AuditTreeHead?
    var writeError: String?

    mutating func enqueue(_ event: PreparedEvent, now: Int64, maxBatch: Int) -> UInt64 {
        let seq = nextSeq
        nextSeq += 1
        // Times never decrease along the log, even if the wall clock steps back.
        let t = max(now, lastTime)
        lastTime = t
        let p = PendingEntry(seq: seq, timeMicros: t, event: event)
        if let last = chunks.indices.last, chunks[last].count < maxBatch {
            chunks[last].append(p)
        } else {
            var c: [PendingEntry] = []
            c.reserveCapacity(min(maxBatch, 1024))
            c.append(p)
            chunks.append(c)
        }
        queued += 1
        return seq
    }
}

// MARK: - The writer thread

/// What the writer thread is started with (immutable).
struct AuditWriterContext: Sendable {
    let configuration: AuditLogConfiguration
    let keyring: AuditKeyring
}

private func startThread(_ body: @escaping @Sendable () -> Void) throws(AuditError) -> pthread_t {
    try ThreadBody(body).start()
}

/// The writer thread's own state: the connection and the chain/tree position. Lives and dies
/// on the writer thread.
final class AuditWriter {
    let store: AuditStore
    let configuration: AuditLogConfiguration
    let signingKey: AuditSigningKey
    let contentKeyID: String
    let hasher = SHA256Context()
    private var lockFD: Int32

    /// The last committed entry (0 when empty) and its hash.
    private(set) var lastSeq: UInt64
    private(set) var lastHash: AuditHash
    /// The Merkle tree over every committed entry.
    private(set) var tree: MerkleAccumulator
    /// The latest signed tree head.
    private(set) var latestHead: AuditTreeHead?
    private var lastCheckpointNanos = monotonicNanoseconds()

    init(_ context: AuditWriterContext) throws(AuditError) {
        let c = context.configuration
        configuration = c
        guard let key = context.keyring.signingKey else { throw AuditError(.missingKey, "no signing key") }
        signingKey = key
        contentKeyID = context.keyring.contentKey.id

        // One writer per log: an exclusive lock on a file beside the database.
        try makeDirectories(parentDirectory(c.databasePath))
        let lockPath = c.databasePath + ".lock"
        lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lockFD < 0 { throw AuditError.posix("open", lockPath) }
        if flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            close(lockFD)
            throw AuditError(.locked, "another process is writing the audit log \(c.databasePath)")
        }
        do {
            store = try AuditStore(path: c.databasePath, readOnly: false, durability: c.durability)
            // Resume from the latest signed tree head and check the tail written since.
            let resume = try AuditVerifier.resumeState(store: store, keyring: context.keyring)
            lastSeq = resume.lastSeq
            lastHash = resume.lastHash
            tree = resume.tree
            latestHead = resume.latestHead
        } catch {
            close(lockFD)
            throw error
        }
    }

    deinit {
        close(lockFD)
    }

    var uncovered: UInt64 { lastSeq - (latestHead?.treeSize ?? 0) }

    /// Writes a batch (and, when due, a tree head) in one transaction. On failure nothing in
    /// memory changes, so the same batch can be retried.
    func write(_ batch: [PendingEntry], checkpoint forced: Bool) throws(AuditError) -> AuditTreeHead? {
        var seq = lastSeq, prev = lastHash, t = tree
        var newHead: AuditTreeHead? = nil
        var covered = latestHead?.treeSize ?? 0
        /// Signs and stores a tree head over everything so far (inside the transaction).
        func signHead() throws(SQLiteError) {
            let now = max(configuration.clock(), newHead?.timeMicros ?? latestHead?.timeMicros ?? .min)
            let head = AuditTreeHead.sign(treeSize: seq, timeMicros: now, root: t.root(using: hasher), chainHead: prev, key: signingKey)
            try store.insert(head, frontier: t.frontier)
            newHead = head
            covered = seq
        }
        do {
            try store.db.transaction(.immediate) { () throws(SQLiteError) in
                for p in batch {
                    precondition(p.seq == seq + 1, "audit writer: sequence numbers out of order")
                    // entryHash = SHA-256(prev || version || seq || time || body), no copying.
                    var header = (AuditEncoding.version, p.seq.bigEndian, UInt64(bitPattern: p.timeMicros).bigEndian)
                    hasher.begin()
                    hasher.update(prev)
                    withUnsafeBytes(of: &header.0) { hasher.update($0) }
                    withUnsafeBytes(of: &header.1) { hasher.update($0) }
                    withUnsafeBytes(of: &header.2) { hasher.update($0) }
                    p.event.body.withUnsafeBytes { hasher.update($0) }
                    let h = hasher.finish()
                    try store.insert(p, prevHash: prev, entryHash: h)
                    t.append(leafHash: hasher.leaf(h), using: hasher)
                    prev = h
                    seq += 1
                    // Exactly every `checkpointEntries` entries, even inside a large batch.
                    if seq - covered >= configuration.checkpointEntries { try signHead() }
                }
                let due =
                    seq > covered
                    && (forced || monotonicNanoseconds() - lastCheckpointNanos >= UInt64(configuration.checkpointInterval * 1e9))
                if due { try signHead() }
            }
        } catch let e as SQLiteError {
            throw AuditError.database(e)
        } catch {
            throw AuditError(.database, "\(error)")
        }
        lastSeq = seq
        lastHash = prev
        tree = t
        if let newHead {
            latestHead = newHead
            lastCheckpointNanos = monotonicNanoseconds()
            if let w = configuration.witnessPath {
                // Best effort, after the commit: a witness never runs ahead of the database.
                _ = try? writeFileAtomically(w, Array(AuditWitness.encode(newHead).utf8), replace: true)
            }
        }
        return newHead
    }

    /// Nanoseconds until a time-based checkpoint is due (only meaningful when entries are
    /// uncovered).
    var checkpointDeadline: UInt64 { lastCheckpointNanos + UInt64(configuration.checkpointInterval * 1e9) }
}

@available(*, unavailable)
extension AuditWriter: Sendable {}

/// The writer thread's loop.
private func runWriter(_ context: AuditWriterContext, _ shared: ConditionLock<WriterShared>) {
    let writer: AuditWriter
    do {
        writer = try AuditWriter(context)
    } catch {
        shared.withLock { s in
            s.startupError = error
            s.phase = .stopped
        }
        shared.broadcast()
        return
    }
    shared.withLock { s in
        s.nextSeq = writer.lastSeq + 1
        s.committed = writer.lastSeq
        s.lastTime = (try? writer.store.lastEntry()?.timeMicros) ?? .min
        s.latestTreeHead = writer.latestHead
        s.phase = .running
    }
    shared.broadcast()

    var retry: [PendingEntry] = []
    var backoffMillis: UInt32 = 0
    var writeFailures = 0
    while true {
        // Wait for work: entries, a checkpoint request, a read job, closing, or a timed checkpoint.
        let uncovered = writer.uncovered > 0
        let deadline = uncovered ? writer.checkpointDeadline : monotonicNanoseconds() + 3_600_000_000_000
        let hasRetry = !retry.isEmpty
        let (batch, forced, jobs, closing, stopping, checkpointTicket):
            ([PendingEntry], Bool, [@Sendable (AuditStore) -> Void], Bool, Bool, UInt64) =
            shared.wait(
                until: { s in hasRetry || s.queued > 0 || s.checkpointRequests > s.checkpointsDone || !s.jobs.isEmpty || s.phase != .running },
                deadline: hasRetry ? 0 : deadline, whileWaiting: \.writerIdle
            ) { s in
                var b = retry
                if b.isEmpty, !s.chunks.isEmpty {
                    b = s.chunks.removeFirst()
                    s.queued -= b.count
                }
                let j = s.jobs
                s.jobs = []
                // Closing with nothing left: one last checkpoint.
                let closing = s.phase != .running && s.queued == 0
                let through = b.last?.seq ?? s.committed
                let forced = (s.checkpointRequests > s.checkpointsDone && through >= s.checkpointThrough) || closing
                return (b, forced, j, closing, s.phase != .running, s.checkpointRequests)
            }
        // Space was freed: wake blocked appenders.
        if !batch.isEmpty && retry.isEmpty { shared.broadcast() }
        retry = []

        if !jobs.isEmpty {
            for job in jobs { job(writer.store) }
            shared.withLock { $0.jobsDone += UInt64(jobs.count) }
            shared.broadcast()
        }

        let timeDue = writer.uncovered > 0 && monotonicNanoseconds() >= writer.checkpointDeadline
        if !batch.isEmpty || forced || timeDue {
            do {
                let head = try writer.write(batch, checkpoint: forced)
                backoffMillis = 0
                writeFailures = 0
                let committed = writer.lastSeq
                let wake: Bool = shared.withLock { s in
                    s.committed = committed
                    s.batches += batch.isEmpty ? 0 : 1
                    s.writeError = nil
                    if let head { s.latestTreeHead = head }
                    if forced { s.checkpointsDone = checkpointTicket }
                    return s.waiters > 0
                }
                if wake { shared.broadcast() }
            } catch {
                // Keep the batch and retry after a pause; callers waiting for it keep waiting.
                retry = batch
                writeFailures += 1
                shared.withLock { $0.writeError = error.description }
                backoffMillis = min(max(backoffMillis * 2, 10), 2_000)
                usleep(backoffMillis * 1000)
                // Closing: give up after a few tries (close() reports the lost entries).
                if stopping && writeFailures >= 3 { break }
                continue
            }
        }
        if closing { break }
    }
    shared.withLock { s in s.phase = .stopped }
    shared.broadcast()
}

/// The witness file: the latest signed tree head as one line of text,
/// `tandem-audit-sth-v1 SIZE TIME_US ROOT CHAIN_HEAD KEY_ID SIGNATURE` (hashes and signature
/// in hex).
public enum AuditWitness {
    public static func encode(_ h: AuditTreeHead) -> String {
        "\(AuditTreeHead.domain) \(h.treeSize) \(h.timeMicros) \(h.root.hex) \(h.chainHead.hex) \(h.keyID) \(Hex.encode(h.signature))\n"
    }

    public static func decode(_ text: String) -> AuditTreeHead? {
        let parts = text.trimmingWhitespace().split(separator: " ")
        guard parts.count == 7, parts[0] == AuditTreeHead.domain, let size = UInt64(parts[1]), let time = Int64(parts[2]),
            let root = AuditHash(hex: parts[3]), let chain = AuditHash(hex: parts[4]), let sig = Hex.decode(parts[6]), sig.count == 64
        else { return nil }
        return AuditTreeHead(treeSize: size, timeMicros: time, root: root, chainHead: chain, keyID: String(parts[5]), signature: sig)
    }

    /// Reads a witness file; nil when absent.
    public static func read(_ path: String) throws(AuditError) -> AuditTreeHead? {
        guard let bytes = try readFile(path) else { return nil }
        guard let h = decode(String(decoding: bytes, as: UTF8.self)) else { throw AuditError(.badProof, "\(path): malformed witness") }
        return h
    }
}
