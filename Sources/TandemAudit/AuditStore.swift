// The audit database: schema, migrations and the statements the writer, the verifier and the
// readers use. Only this module writes these tables.
import TandemSQLite

/// Durability of a commit.
public enum AuditDurability: String, Sendable {
    /// `PRAGMA synchronous=FULL`: the WAL is synced at every commit. An acknowledged entry
    /// survives a power failure.
    case full = "FULL"
    /// `PRAGMA synchronous=NORMAL`: synced at WAL checkpoints only. An acknowledged entry
    /// survives a crash of the process (`kill -9`) but maybe not of the machine.
    case normal = "NORMAL"
}

/// One connection to the audit database and its prepared statements. Used by one thread: the
/// writer's, or a reader's (command line, tests).
final class AuditStore {
    let db: SQLiteConnection

    /// Schema versions (`PRAGMA user_version` is the number applied). Never edit a released
    /// entry: add a new one.
    static let migrations: [String] = [
        // 1: entries, signed tree heads, signed prune marks.
        """
        CREATE TABLE entries(
            seq INTEGER PRIMARY KEY,
            time_us INTEGER NOT NULL,
            actor_id TEXT NOT NULL,
            actor_role TEXT NOT NULL,
            action TEXT NOT NULL,
            workspace TEXT NOT NULL,
            outcome TEXT NOT NULL,
            key_id TEXT NOT NULL,
            fields BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            entry_hash BLOB NOT NULL
        ) STRICT;
        CREATE INDEX entries_by_workspace ON entries(workspace, time_us);
        CREATE TABLE tree_heads(
            tree_size INTEGER PRIMARY KEY,
            time_us INTEGER NOT NULL,
            root BLOB NOT NULL,
            chain_head BLOB NOT NULL,
            key_id TEXT NOT NULL,
            signature BLOB NOT NULL,
            frontier BLOB NOT NULL
        ) STRICT;
        CREATE TABLE prune_marks(
            pruned_through INTEGER PRIMARY KEY,
            time_us INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            signature BLOB NOT NULL
        ) STRICT;
        """
    ]

    static let entryColumns =
        "seq, time_us, actor_id, actor_role, action, workspace, outcome, key_id, fields, prev_hash, entry_hash"

    private var insertStatement: SQLiteStatement?

    /// Opens the database.
    ///
    /// - Parameters:
    ///   - readOnly: For verification and queries; the file must exist and the schema must be
    ///     current.
    init(path: String, readOnly: Bool, durability: AuditDurability = .full) throws(AuditError) {
        do {
            if readOnly {
                guard fileExists(path) else { throw AuditError(.notFound, "no audit database at \(path)") }
                db = try SQLiteConnection(path: path, readOnly: true, create: false)
                let v = try db.userVersion()
                if v != AuditStore.migrations.count {
                    throw AuditError(.database, "\(path): schema version \(v), expected \(AuditStore.migrations.count)")
                }
            } else {
                try makeDirectories(parentDirectory(path))
                db = try SQLiteConnection(path: path, readOnly: false, create: true)
                try db.enableWAL(synchronous: durability.rawValue)
                try db.migrate(AuditStore.migrations)
            }
        } catch let e as SQLiteError {
            throw AuditError.database(e)
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.database, "\(error)")
        }
    }

    // MARK: Writing (writer thread only)

    private func insertEntryStatement() throws(SQLiteError) -> SQLiteStatement {
        if let existing = insertStatement { return existing }
        let s = try db.prepare("INSERT INTO entries(\(AuditStore.entryColumns)) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        insertStatement = s
        return s
    }

    /// Inserts one prepared entry (the writer's hot path, inside its transaction).
    func insert(_ p: PendingEntry, prevHash: AuditHash, entryHash: AuditHash) throws(SQLiteError) {
        let s = try insertEntryStatement()
        defer { s.reset() }
        let e = p.event.event
        try s.bind(0, Int64(bitPattern: p.seq))
        try s.bind(1, p.timeMicros)
        try s.bind(2, e.actor.id)
        try s.bind(3, e.actor.role)
        try s.bind(4, e.action.rawValue)
        try s.bind(5, e.workspace)
        try s.bind(6, e.outcome.rawValue)
        try s.bind(7, p.event.contentKeyID)
        let offset = p.event.fieldsOffset
        let rc: Int32 = p.event.body.withUnsafeBytes { b in
            s.bindRaw(8, UnsafeRawBufferPointer(rebasing: b[offset...]))
        }
        try s.check(rc)
        try s.bind(9, hash: prevHash)
        try s.bind(10, hash: entryHash)
        try s.step()
    }

    /// Inserts one entry (inside the caller's transaction).
    func insert(_ e: AuditEntry) throws(SQLiteError) {
        let s = try insertEntryStatement()
        defer { s.reset() }
        try s.bind(0, Int64(bitPattern: e.seq))
        try s.bind(1, e.timeMicros)
        try s.bind(2, e.actor.id)
        try s.bind(3, e.actor.role)
        try s.bind(4, e.action)
        try s.bind(5, e.workspace)
        try s.bind(6, e.outcome)
        try s.bind(7, e.contentKeyID)
        try s.bind(8, bytes: e.fieldsEncoding)
        try s.bind(9, hash: e.prevHash)
        try s.bind(10, hash: e.entryHash)
        try s.step()
    }

    /// Stores a signed tree head with the frontier it was computed from.
    func insert(_ head: AuditTreeHead, frontier: [AuditHash]) throws(SQLiteError) {
        let s = try db.prepare(
            "INSERT INTO tree_heads(tree_size, time_us, root, chain_head, key_id, signature, frontier) VALUES (?,?,?,?,?,?,?)")
        try s.bind(0, Int64(bitPattern: head.treeSize))
        try s.bind(1, head.timeMicros)
        try s.bind(2, bytes: head.root.bytes)
        try s.bind(3, bytes: head.chainHead.bytes)
        try s.bind(4, head.keyID)
        try s.bind(5, bytes: head.signature)
        try s.bind(6, bytes: frontier.flatMap { $0.bytes })
        try s.step()
    }

    // MARK: Reading

    /// The last entry's sequence number, time and hash; nil when the table is empty.
    func lastEntry() throws(SQLiteError) -> (seq: UInt64, timeMicros: Int64, hash: AuditHash)? {
        let s = try db.prepare("SELECT seq, time_us, entry_hash FROM entries ORDER BY seq DESC LIMIT 1")
        guard try s.step() else { return nil }
        return (UInt64(bitPattern: s.int64(0)), s.int64(1), s.withBytes(2) { AuditHash(bytes: $0) } ?? .zero)
    }

    /// Reads an entry row selected with ``entryColumns`` (columns 0...10).
    static func entry(from s: SQLiteStatement) -> AuditEntry {
        AuditEntry(
            seq: UInt64(bitPattern: s.int64(0)), timeMicros: s.int64(1), actor: AuditActor(id: s.text(2), role: s.text(3)),
            action: s.text(4), workspace: s.text(5), outcome: s.text(6), contentKeyID: s.text(7), fieldsEncoding: s.blob(8),
            prevHash: s.withBytes(9) { AuditHash(bytes: $0) } ?? .zero,
            entryHash: s.withBytes(10) { AuditHash(bytes: $0) } ?? .zero)
    }

    /// One entry, or nil.
    func entry(seq: UInt64) throws(SQLiteError) -> AuditEntry? {
        let s = try db.prepare("SELECT \(AuditStore.entryColumns) FROM entries WHERE seq = ?")
        try s.bind(0, Int64(bitPattern: seq))
        guard try s.step() else { return nil }
        return AuditStore.entry(from: s)
    }

    /// Entries with `seq > after`, in order, at most `limit`.
    func entries(after: UInt64, limit: Int = .max) throws(SQLiteError) -> [AuditEntry] {
        let s = try db.prepare("SELECT \(AuditStore.entryColumns) FROM entries WHERE seq > ? ORDER BY seq LIMIT ?")
        try s.bind(0, Int64(bitPattern: after))
        try s.bind(1, Int64(min(limit, Int(Int64.max))))
        var out: [AuditEntry] = []
        while try s.step() { out.append(AuditStore.entry(from: s)) }
        return out
    }

    /// Entry hashes of entries `from...through` in order, or nil when one is missing or
    /// malformed.
    func entryHashes(from: UInt64, through: UInt64) throws(SQLiteError) -> [AuditHash]? {
        if through < from { return [] }
        let s = try db.prepare("SELECT seq, entry_hash FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq")
        try s.bind(0, Int64(bitPattern: from))
        try s.bind(1, Int64(bitPattern: through))
        var out: [AuditHash] = []
        out.reserveCapacity(Int(through - from + 1))
        var expected = from
        while try s.step() {
            guard UInt64(bitPattern: s.int64(0)) == expected, let h = s.withBytes(1, { AuditHash(bytes: $0) }) else { return nil }
            out.append(h)
            expected += 1
        }
        return expected == through + 1 ? out : nil
    }

    static let treeHeadColumns = "tree_size, time_us, root, chain_head, key_id, signature, frontier"

    /// Reads a tree-head row selected with ``treeHeadColumns``; nil when a column is malformed.
    static func treeHead(from s: SQLiteStatement) -> (head: AuditTreeHead, frontier: [AuditHash])? {
        guard let root = s.withBytes(2, { AuditHash(bytes: $0) }), let chain = s.withBytes(3, { AuditHash(bytes: $0) }) else {
            return nil
        }
        let f = s.blob(6)
        guard f.count % 32 == 0 else { return nil }
        let frontier = stride(from: 0, to: f.count, by: 32).map { AuditHash(f[$0..<$0 + 32])! }
        let head = AuditTreeHead(
            treeSize: UInt64(bitPattern: s.int64(0)), timeMicros: s.int64(1), root: root, chainHead: chain, keyID: s.text(4),
            signature: s.blob(5))
        return (head, frontier)
    }

    /// Raw tree-head rows in order of size (malformed rows come back as nil with their size).
    func treeHeadRows() throws(SQLiteError) -> [(size: UInt64, parsed: (head: AuditTreeHead, frontier: [AuditHash])?)] {
        let s = try db.prepare("SELECT \(AuditStore.treeHeadColumns) FROM tree_heads ORDER BY tree_size")
        var out: [(UInt64, (AuditTreeHead, [AuditHash])?)] = []
        while try s.step() { out.append((UInt64(bitPattern: s.int64(0)), AuditStore.treeHead(from: s))) }
        return out
    }

    /// The tree head of the largest size, if any.
    func latestTreeHead() throws(SQLiteError) -> (head: AuditTreeHead, frontier: [AuditHash])?? {
        let s = try db.prepare("SELECT \(AuditStore.treeHeadColumns) FROM tree_heads ORDER BY tree_size DESC LIMIT 1")
        guard try s.step() else { return nil }
        return .some(AuditStore.treeHead(from: s))
    }

    /// The tree head of exactly `size` entries.
    func treeHead(size: UInt64) throws(SQLiteError) -> (head: AuditTreeHead, frontier: [AuditHash])? {
        let s = try db.prepare("SELECT \(AuditStore.treeHeadColumns) FROM tree_heads WHERE tree_size = ?")
        try s.bind(0, Int64(bitPattern: size))
        guard try s.step() else { return nil }
        return AuditStore.treeHead(from: s)
    }

    /// The pruning mark: entries up to and including `prunedThrough` were deleted on purpose.
    func pruneMark() throws(SQLiteError) -> AuditPruneMark? {
        let s = try db.prepare("SELECT pruned_through, time_us, key_id, signature FROM prune_marks ORDER BY pruned_through DESC LIMIT 1")
        guard try s.step() else { return nil }
        return AuditPruneMark(
            prunedThrough: UInt64(bitPattern: s.int64(0)), timeMicros: s.int64(1), keyID: s.text(2), signature: s.blob(3))
    }
}

@available(*, unavailable)
extension AuditStore: Sendable {}

/// A signed record that entries `1...prunedThrough` were deleted by the retention policy.
/// `prunedThrough` is always the size of a signed tree head, which is kept: verification
/// resumes from that head's chain head and frontier.
///
/// Signed message: ASCII `tandem-audit-prune-v1` · u64 prunedThrough · i64 timeMicros · str key id.
public struct AuditPruneMark: Sendable, Equatable {
    public var prunedThrough: UInt64
    public var timeMicros: Int64
    public var keyID: String
    public var signature: [UInt8]

    static func signedMessage(prunedThrough: UInt64, timeMicros: Int64, keyID: String) -> [UInt8] {
        var m = Array("tandem-audit-prune-v1".utf8)
        AuditEncoding.appendUInt64(prunedThrough, to: &m)
        AuditEncoding.appendUInt64(UInt64(bitPattern: timeMicros), to: &m)
        AuditEncoding.appendString(keyID, to: &m)
        return m
    }

    func verify(with key: AuditPublicKey) -> Bool {
        key.id == keyID
            && key.verify(signature: signature, message: AuditPruneMark.signedMessage(prunedThrough: prunedThrough, timeMicros: timeMicros, keyID: keyID))
    }
}
