// Reading the log: verification, queries, JSON Lines export, proofs, content matching.
import TandemSQLite
import TandemCrypto

/// A read-side view of an audit database, for the command line, tests and in-server queries
/// (``AuditLog/read(_:)``). Owned by one thread.
public final class AuditReader {
    let store: AuditStore
    /// Public keys whose signatures are accepted.
    public let trustedKeys: [String: AuditPublicKey]
    /// Content keys available for ``match(content:)`` (may be empty).
    public let contentKeys: [AuditContentKey]

    init(store: AuditStore, keyring: AuditKeyring) {
        self.store = store
        self.trustedKeys = keyring.trustedKeys
        self.contentKeys = keyring.allContentKeys
    }

    /// Opens a database read-only.
    ///
    /// - Parameters:
    ///   - trustedKeys: Public keys whose tree-head signatures verification accepts.
    ///   - contentKeys: Keys for ``match(content:)``.
    public init(databasePath: String, trustedKeys: [AuditPublicKey], contentKeys: [AuditContentKey] = []) throws(AuditError) {
        store = try AuditStore(path: databasePath, readOnly: true)
        var t: [String: AuditPublicKey] = [:]
        for k in trustedKeys { t[k.id] = k }
        self.trustedKeys = t
        self.contentKeys = contentKeys
    }

    /// Opens the log of a configuration read-only, with the keys found beside it (public keys
    /// from the trusted-keys file and the signing key; content keys when readable). Creates
    /// nothing.
    public convenience init(_ c: AuditLogConfiguration) throws(AuditError) {
        var trusted = try readPublicKeys(c.keys.trustedKeysPath)
        if let signing = try? AuditKeyring.load(c.keys, create: false).signingKey { trusted.append(signing.publicKey) }
        let content = (try? AuditKeyring.load(c.keys, create: false).allContentKeys) ?? []
        try self.init(databasePath: c.databasePath, trustedKeys: trusted, contentKeys: content)
    }

    private func wrap<R>(_ body: () throws(SQLiteError) -> R) throws(AuditError) -> R {
        do { return try body() } catch { throw AuditError.database(error) }
    }

    // MARK: Verification

    /// Verifies the whole log (see ``AuditVerificationReport``). `witness` is the latest tree
    /// head kept outside the database (the `latest.sth` file), if any.
    public func verify(witness: AuditTreeHead? = nil) throws(AuditError) -> AuditVerificationReport {
        try AuditVerifier.verify(store: store, trustedKeys: trustedKeys, witness: witness)
    }

    // MARK: Queries

    /// Entries in sequence order, optionally of one workspace and from a time on.
    ///
    /// - Parameters:
    ///   - workspace: Only this workspace's entries (nil: all).
    ///   - sinceMicros: Only entries at or after this time (UTC microseconds).
    ///   - afterSeq: Only entries after this sequence number (for paging).
    ///   - limit: At most this many.
    public func entries(workspace: String? = nil, sinceMicros: Int64? = nil, afterSeq: UInt64 = 0, limit: Int = .max) throws(AuditError) -> [AuditEntry] {
        var out: [AuditEntry] = []
        try forEachEntry(workspace: workspace, sinceMicros: sinceMicros, afterSeq: afterSeq, limit: limit) { out.append($0) }
        return out
    }

    /// Calls `body` for each matching entry, in sequence order, without holding them all.
    public func forEachEntry(
        workspace: String? = nil, sinceMicros: Int64? = nil, afterSeq: UInt64 = 0, limit: Int = .max, _ body: (AuditEntry) throws(AuditError) -> Void
    ) throws(AuditError) {
        var sql = "SELECT \(AuditStore.entryColumns) FROM entries WHERE seq > ?"
        if workspace != nil { sql += " AND workspace = ?" }
        if sinceMicros != nil { sql += " AND time_us >= ?" }
        sql += " ORDER BY seq LIMIT ?"
        let s = try wrap { () throws(SQLiteError) in
            let s = try store.db.prepare(sql)
            var i = 0
            try s.bind(i, Int64(bitPattern: afterSeq))
            i += 1
            if let workspace {
                try s.bind(i, workspace)
                i += 1
            }
            if let sinceMicros {
                try s.bind(i, sinceMicros)
                i += 1
            }
            try s.bind(i, Int64(min(limit, Int(Int64.max))))
            return s
        }
        while try wrap({ () throws(SQLiteError) in try s.step() }) {
            try body(AuditStore.entry(from: s))
        }
    }

    /// One entry.
    public func entry(seq: UInt64) throws(AuditError) -> AuditEntry? {
        try wrap { () throws(SQLiteError) in try store.entry(seq: seq) }
    }

    /// Every tree head, by size (malformed rows are skipped; ``verify(witness:)`` reports them).
    public func treeHeads() throws(AuditError) -> [AuditTreeHead] {
        try wrap { () throws(SQLiteError) in try store.treeHeadRows().compactMap { $0.parsed?.head } }
    }

    /// The tree head of the largest size.
    public func latestTreeHead() throws(AuditError) -> AuditTreeHead? {
        try wrap { () throws(SQLiteError) in try store.latestTreeHead()??.head }
    }

    /// The prune mark, if entries were pruned.
    public func pruneMark() throws(AuditError) -> AuditPruneMark? {
        try wrap { () throws(SQLiteError) in try store.pruneMark() }
    }

    /// Writes matching entries as JSON Lines (one object per line, see ``AuditJSON/line(_:)``).
    public func exportJSONLines(workspace: String? = nil, sinceMicros: Int64? = nil, to write: (String) -> Void) throws(AuditError) {
        try forEachEntry(workspace: workspace, sinceMicros: sinceMicros) { e in write(AuditJSON.line(e) + "\n") }
    }

    /// Entries holding a digest of exactly this content under any available content key:
    /// `(entry, field name)` pairs. The content is digested here and not kept.
    public func match(content: some Collection<UInt8>) throws(AuditError) -> [(entry: AuditEntry, field: String)] {
        guard !contentKeys.isEmpty else { throw AuditError(.missingKey, "no content key available to compute digests") }
        var digests: [String: AuditHash] = [:]
        for k in contentKeys { digests[k.id] = k.digest(content) }
        var out: [(AuditEntry, String)] = []
        try forEachEntry { e in
            guard let d = digests[e.contentKeyID], let fields = e.fields else { return }
            for f in fields {
                if case .digest(let v) = f.value, v == d { out.append((e, f.name)) }
            }
        }
        return out
    }

    // MARK: Proofs

    /// Subtree hashes for proofs over the first `size` entries, from the entries present and,
    /// below a prune point, the pruned tree head's frontier.
    private func subtreeHashes(size: UInt64) throws(AuditError) -> (UInt64, UInt64) throws(AuditError) -> AuditHash {
        let h = SHA256Context()
        var pruned: UInt64 = 0
        var frontier: [(lo: UInt64, hi: UInt64, hash: AuditHash)] = []
        if let mark = try pruneMark() {
            pruned = mark.prunedThrough
            guard let (head, f) = try wrap({ () throws(SQLiteError) in try store.treeHead(size: pruned) }),
                let acc = MerkleAccumulator(count: head.treeSize, frontier: f), acc.root() == head.root
            else { throw AuditError(.tampered, "the tree head at the prune point \(pruned) is missing or damaged") }
            frontier = zip(acc.subtreeRanges(), f).map { ($0.lo, $0.hi, $1) }
        }
        guard size > pruned else { throw AuditError(.notFound, "entries up to \(pruned) were pruned") }
        guard let hashes = try wrap({ () throws(SQLiteError) in try store.entryHashes(from: pruned + 1, through: size) }) else {
            throw AuditError(.tampered, "entries \(pruned + 1)...\(size) are not all present")
        }
        let leaves = hashes.map { h.leaf($0) }
        func subtree(_ lo: UInt64, _ hi: UInt64) throws(AuditError) -> AuditHash {
            if lo >= pruned { return Merkle.root(leafHashes: leaves[Int(lo - pruned)..<Int(hi - pruned)]) }
            if let f = frontier.first(where: { $0.lo == lo && $0.hi == hi }) { return f.hash }
            guard hi - lo >= 2 else { throw AuditError(.notFound, "the proof needs pruned entries") }
            let k = Merkle.splitPoint(hi - lo)
            return h.node(try subtree(lo, lo + k), try subtree(lo + k, hi))
        }
        return subtree
    }

    /// An inclusion proof of entry `seq` in the tree head of size `treeSize` (default: the
    /// latest tree head).
    public func inclusionProof(seq: UInt64, treeSize: UInt64? = nil) throws(AuditError) -> AuditInclusionProof {
        let found: AuditTreeHead?
        if let treeSize {
            found = try wrap { () throws(SQLiteError) in try store.treeHead(size: treeSize)?.head }
        } else {
            found = try latestTreeHead()
        }
        guard let head = found else { throw AuditError(.notFound, treeSize.map { "no tree head of size \($0)" } ?? "no tree head yet") }
        guard seq >= 1, seq <= head.treeSize else {
            throw AuditError(.notFound, "entry \(seq) is not covered by tree head \(head.treeSize)")
        }
        guard let e = try entry(seq: seq) else { throw AuditError(.notFound, "entry \(seq) does not exist") }
        let subtree = try subtreeHashes(size: head.treeSize)
        let path = try Merkle.inclusionProof(leafIndex: seq - 1, treeSize: head.treeSize, subtree: subtree)
        return AuditInclusionProof(
            seq: seq, entryEncoding: Hex.encode(AuditEncoding.encode(e)), prevHash: e.prevHash.hex, entryHash: e.entryHash.hex,
            treeHead: AuditTreeHeadJSON(head, publicKey: trustedKeys[head.keyID]), path: path.map(\.hex))
    }

    /// A consistency proof between the tree heads of sizes `oldSize` and `newSize`.
    public func consistencyProof(oldSize: UInt64, newSize: UInt64) throws(AuditError) -> AuditConsistencyProof {
        guard oldSize >= 1, oldSize <= newSize else { throw AuditError(.invalidArgument, "need 1 <= OLD <= NEW") }
        let heads = try wrap { () throws(SQLiteError) in (try store.treeHead(size: oldSize)?.head, try store.treeHead(size: newSize)?.head) }
        guard let old = heads.0 else { throw AuditError(.notFound, "no tree head of size \(oldSize)") }
        guard let new = heads.1 else { throw AuditError(.notFound, "no tree head of size \(newSize)") }
        let subtree = try subtreeHashes(size: newSize)
        let path = try Merkle.consistencyProof(oldSize: oldSize, newSize: newSize, subtree: subtree)
        return AuditConsistencyProof(
            oldHead: AuditTreeHeadJSON(old, publicKey: trustedKeys[old.keyID]), newHead: AuditTreeHeadJSON(new, publicKey: trustedKeys[new.keyID]),
            path: path.map(\.hex))
    }
}

@available(*, unavailable)
extension AuditReader: Sendable {}

// MARK: - JSON

/// The JSON forms of entries (JSON Lines export).
public enum AuditJSON {
    /// One entry as a JSON object on one line:
    ///
    /// ```json
    /// {"seq":7,"time":"2026-11-23T14:07:05.123456Z","time_us":1795529225123456,"actor_id":"u42","actor_role":"editor",
    ///  "action":"kernel.execute","workspace":"w7","outcome":"success","key_id":"3f2a…",
    ///  "fields":{"code":{"hmac_sha256":"…"},"duration_us":12500,"model":"…"},"prev_hash":"…","entry_hash":"…"}
    /// ```
    ///
    /// Integers are JSON numbers, text fields strings, digests `{"hmac_sha256": hex}`.
    public static func line(_ e: AuditEntry) -> String {
        var s = "{\"seq\":\(e.seq),\"time\":\"\(AuditTime.format(micros: e.timeMicros))\",\"time_us\":\(e.timeMicros)"
        s += ",\"actor_id\":" + quote(e.actor.id) + ",\"actor_role\":" + quote(e.actor.role)
        s += ",\"action\":" + quote(e.action) + ",\"workspace\":" + quote(e.workspace) + ",\"outcome\":" + quote(e.outcome)
        s += ",\"key_id\":" + quote(e.contentKeyID) + ",\"fields\":{"
        if let fields = e.fields {
            for (i, f) in fields.enumerated() {
                if i > 0 { s += "," }
                s += quote(f.name) + ":"
                switch f.value {
                case .integer(let v): s += String(v)
                case .text(let t): s += quote(t)
                case .digest(let d): s += "{\"hmac_sha256\":\"\(d.hex)\"}"
                }
            }
        } else {
            s += "\"_malformed\":true"
        }
        s += "},\"prev_hash\":\"\(e.prevHash.hex)\",\"entry_hash\":\"\(e.entryHash.hex)\"}"
        return s
    }

    /// A JSON string literal.
    public static func quote(_ text: String) -> String { JSONText.quote(text) }
}
