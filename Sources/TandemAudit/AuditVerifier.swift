// Verification: walk the hash chain and recompute the Merkle tree, check every signed tree head,
// and report the first problem precisely.
import TandemSQLite

/// A problem found by verification.
public struct AuditProblem: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong. A struct over a string so kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// Entry `seq` is absent (deleted) while later entries exist.
        public static let missingEntry = Kind("missing_entry")
        /// Entry `seq`'s stored contents do not hash to its stored entry hash (edited, moved or
        /// renumbered).
        public static let entryModified = Kind("entry_modified")
        /// Entry `seq` is consistent in itself, but the next entry was chained to a different
        /// hash: entry `seq` was rewritten (its hash recomputed), or the next one replaced.
        public static let chainBroken = Kind("chain_broken")
        /// A stored value has the wrong shape (a hash that is not 32 bytes).
        public static let malformed = Kind("malformed")
        /// The entries up to a tree head do not hash to its signed root or chain head.
        public static let treeHeadMismatch = Kind("tree_head_mismatch")
        /// A tree head's signature does not verify.
        public static let badSignature = Kind("bad_signature")
        /// A tree head or prune mark is signed by a key that is not trusted.
        public static let unknownKey = Kind("unknown_key")
        /// The log ends before a signed tree head's size: its tail was removed.
        public static let truncated = Kind("truncated")
        /// A prune mark is inconsistent (unsigned, or not at a tree head).
        public static let badPruneMark = Kind("bad_prune_mark")
    }

    public let kind: Kind
    /// The entry (or, for tree-head problems, the tree size) where the problem is.
    public let seq: UInt64
    public let message: String

    public var description: String { "\(kind) at \(seq): \(message)" }
}

/// The outcome of ``AuditReader/verify(witness:)``.
public struct AuditVerificationReport: Sendable, Equatable {
    /// Entries whose chain hash was recomputed.
    public var entriesChecked: UInt64 = 0
    /// Tree heads whose signature and root were checked.
    public var treeHeadsChecked: Int = 0
    /// Entries `1...prunedThrough` were pruned under a signed prune mark (0: none).
    public var prunedThrough: UInt64 = 0
    /// The last entry present.
    public var lastSeq: UInt64 = 0
    /// The size of the latest tree head.
    public var latestTreeSize: UInt64 = 0
    /// Whether a witness file was compared.
    public var witnessChecked = false
    /// The first problem, or nil when the log verifies.
    public var problem: AuditProblem?

    public var isValid: Bool { problem == nil }
    /// Entries after the latest signed tree head: protected by the chain only, until the next
    /// checkpoint.
    public var uncovered: UInt64 { lastSeq > latestTreeSize ? lastSeq - latestTreeSize : 0 }
}

/// Where a writer resumes: the last entry and the tree over everything.
struct AuditResumeState {
    var lastSeq: UInt64
    var lastHash: AuditHash
    var tree: MerkleAccumulator
    var latestHead: AuditTreeHead?
}

enum AuditVerifier {
    /// Verifies the whole log: every entry's hash and chain link, every tree head's signature,
    /// root and chain head, the prune mark, the witness, and that no signed tree head reaches
    /// beyond the last entry. Stops at the first problem. Signatures are accepted only from
    /// `trustedKeys` (by key id).
    static func verify(store: AuditStore, trustedKeys: [String: AuditPublicKey], witness: AuditTreeHead?) throws(AuditError) -> AuditVerificationReport {
        do {
            return try verifyThrowingSQLite(store: store, trustedKeys: trustedKeys, witness: witness)
        } catch {
            throw AuditError.database(error)
        }
    }

    private static func verifyThrowingSQLite(store: AuditStore, trustedKeys: [String: AuditPublicKey], witness: AuditTreeHead?) throws(SQLiteError) -> AuditVerificationReport {
        var report = AuditVerificationReport()
        let h = SHA256Context()
        let rows = try store.treeHeadRows()
        report.latestTreeSize = rows.last?.size ?? 0
        var nextHead = 0  // index into rows of the next tree head to check

        func fail(_ kind: AuditProblem.Kind, _ seq: UInt64, _ message: String) -> AuditVerificationReport {
            var r = report
            r.problem = AuditProblem(kind: kind, seq: seq, message: message)
            return r
        }

        /// Checks a head's shape and signature (not its root).
        func checkSignature(_ size: UInt64, _ parsed: (head: AuditTreeHead, frontier: [AuditHash])?) -> AuditProblem? {
            guard let (head, _) = parsed, head.signature.count == 64 else {
                return AuditProblem(kind: .malformed, seq: size, message: "tree head \(size) is malformed")
            }
            guard let key = trustedKeys[head.keyID] else {
                return AuditProblem(kind: .unknownKey, seq: size, message: "tree head \(size) is signed by key \(head.keyID), which is not trusted")
            }
            if !head.verify(with: key) {
                return AuditProblem(kind: .badSignature, seq: size, message: "tree head \(size): the signature does not verify (the head was altered)")
            }
            return nil
        }

        // Start: after a signed prune mark, from the tree head it names.
        var tree = MerkleAccumulator()
        var prev = AuditHash.zero
        var expected: UInt64 = 1
        if let mark = try store.pruneMark() {
            report.prunedThrough = mark.prunedThrough
            guard let key = trustedKeys[mark.keyID] else {
                return fail(.unknownKey, mark.prunedThrough, "the prune mark is signed by key \(mark.keyID), which is not trusted")
            }
            guard mark.verify(with: key) else {
                return fail(.badPruneMark, mark.prunedThrough, "the prune mark's signature does not verify")
            }
            // Heads below the mark: signatures only (their entries are gone).
            while nextHead < rows.count, rows[nextHead].size < mark.prunedThrough {
                if let p = checkSignature(rows[nextHead].size, rows[nextHead].parsed) { return fail(p.kind, p.seq, p.message) }
                report.treeHeadsChecked += 1
                nextHead += 1
            }
            guard nextHead < rows.count, rows[nextHead].size == mark.prunedThrough else {
                return fail(.badPruneMark, mark.prunedThrough, "no tree head at the prune point \(mark.prunedThrough)")
            }
            if let p = checkSignature(rows[nextHead].size, rows[nextHead].parsed) { return fail(p.kind, p.seq, p.message) }
            let (head, frontier) = rows[nextHead].parsed!
            guard let t = MerkleAccumulator(count: head.treeSize, frontier: frontier), t.root(using: h) == head.root else {
                return fail(.treeHeadMismatch, head.treeSize, "the stored frontier of tree head \(head.treeSize) does not match its signed root")
            }
            tree = t
            prev = head.chainHead
            expected = head.treeSize + 1
            report.treeHeadsChecked += 1
            nextHead += 1
        }
        // Heads of size 0 (none are written, but accept a correct one).
        while nextHead < rows.count, rows[nextHead].size == 0 {
            if let p = checkSignature(0, rows[nextHead].parsed) { return fail(p.kind, p.seq, p.message) }
            guard rows[nextHead].parsed!.head.root == Merkle.emptyRoot else { return fail(.treeHeadMismatch, 0, "tree head 0 is not the empty root") }
            report.treeHeadsChecked += 1
            nextHead += 1
        }

        let s = try store.db.prepare("SELECT \(AuditStore.entryColumns) FROM entries WHERE seq >= ? ORDER BY seq")
        try s.bind(0, Int64(bitPattern: expected))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(512)
        while try s.step() {
            let seq = UInt64(bitPattern: s.int64(0))
            if seq != expected {
                return fail(.missingEntry, expected, "entry \(expected) is missing (the next entry present is \(seq))")
            }
            encodeRow(s, into: &buffer)
            guard let storedPrev = s.withBytes(9, { AuditHash(bytes: $0) }), let stored = s.withBytes(10, { AuditHash(bytes: $0) }) else {
                return fail(.malformed, seq, "entry \(seq): a stored hash is not 32 bytes")
            }
            let computed = buffer.withUnsafeBytes { h.chain(prev, $0) }
            if storedPrev != prev {
                // Is this entry consistent with the predecessor it records? Then the previous
                // entry changed after this one was chained to it.
                let selfConsistent = buffer.withUnsafeBytes { h.chain(storedPrev, $0) } == stored
                if selfConsistent && seq > 1 && seq - 1 > report.prunedThrough {
                    return fail(
                        .chainBroken, seq - 1,
                        "entry \(seq - 1) was rewritten: its hash is not the one entry \(seq) was chained to (or entry \(seq) was replaced)")
                }
                return fail(.entryModified, seq, "entry \(seq): its contents or chain link do not match its stored hash")
            }
            if computed != stored {
                return fail(.entryModified, seq, "entry \(seq): its contents do not match its stored hash (edited, moved or renumbered)")
            }
            tree.append(leafHash: h.leaf(computed), using: h)
            prev = computed
            report.entriesChecked += 1
            report.lastSeq = seq
            expected = seq + 1

            // Tree heads at this size.
            while nextHead < rows.count, rows[nextHead].size <= seq {
                let size = rows[nextHead].size
                if let p = checkSignature(size, rows[nextHead].parsed) { return fail(p.kind, p.seq, p.message) }
                let (head, frontier) = rows[nextHead].parsed!
                if size < seq {
                    // Only possible for a head below where this walk started.
                    return fail(.treeHeadMismatch, size, "tree head \(size) lies before the first entry checked")
                }
                if tree.root(using: h) != head.root || head.chainHead != prev {
                    return fail(.treeHeadMismatch, size, mismatchMessage(head: head, storedFrontier: frontier, computed: tree, hasher: h))
                }
                report.treeHeadsChecked += 1
                nextHead += 1
            }
            if let w = witness, w.treeSize == seq, tree.root(using: h) != w.root {
                return fail(.treeHeadMismatch, seq, "the entries up to \(seq) do not match the witness tree head (latest.sth)")
            }
        }
        if report.lastSeq == 0 { report.lastSeq = expected - 1 }

        // A signed head beyond the end: the tail was cut off.
        if nextHead < rows.count {
            let size = rows[nextHead].size
            if let p = checkSignature(size, rows[nextHead].parsed) { return fail(p.kind, p.seq, p.message) }
            return fail(
                .truncated, report.lastSeq + 1,
                "the log ends at entry \(report.lastSeq) but tree head \(size) is signed: entries \(report.lastSeq + 1)...\(size) were removed")
        }
        if let w = witness {
            report.witnessChecked = true
            guard let key = trustedKeys[w.keyID], w.verify(with: key) else {
                return fail(.badSignature, w.treeSize, "the witness tree head (latest.sth) does not verify with a trusted key")
            }
            if w.treeSize > report.lastSeq {
                return fail(
                    .truncated, report.lastSeq + 1,
                    "the log ends at entry \(report.lastSeq) but the witness tree head (latest.sth) covers \(w.treeSize): entries \(report.lastSeq + 1)...\(w.treeSize) were removed together with their tree heads")
            }
        }
        return report
    }

    /// Narrows a root mismatch to one subtree of the frontier, when the stored frontier itself
    /// matches the signed root.
    static func mismatchMessage(head: AuditTreeHead, storedFrontier: [AuditHash], computed: MerkleAccumulator, hasher h: SHA256Context) -> String {
        let base = "the entries up to \(head.treeSize) do not hash to tree head \(head.treeSize)'s signed root"
        guard let signed = MerkleAccumulator(count: head.treeSize, frontier: storedFrontier), signed.root(using: h) == head.root else {
            return base + " (an entry at or before \(head.treeSize) was rewritten and the chain recomputed)"
        }
        let ranges = computed.subtreeRanges()
        for (i, r) in ranges.enumerated() where computed.frontier[i] != storedFrontier[i] {
            return base + ": an entry in \(r.lo + 1)...\(r.hi) was rewritten and the chain recomputed after it"
        }
        return base + " (the chain head differs)"
    }

    /// The canonical encoding of the row under `s` (columns as in ``AuditStore/entryColumns``),
    /// straight from SQLite's buffers.
    @inline(__always)
    static func encodeRow(_ s: SQLiteStatement, into b: inout [UInt8]) {
        b.removeAll(keepingCapacity: true)
        b.append(AuditEncoding.version)
        AuditEncoding.appendUInt64(UInt64(bitPattern: s.int64(0)), to: &b)
        AuditEncoding.appendUInt64(UInt64(bitPattern: s.int64(1)), to: &b)
        for column in 2...8 {
            s.withBytes(column) { p in
                AuditEncoding.appendUInt32(UInt32(p.count), to: &b)
                b.append(contentsOf: p)
            }
        }
    }

    /// Where a writer resumes, checking the tail since the latest signed tree head: its
    /// signature, its frontier against its root, its chain head against the entry at its size,
    /// and the chain of every later entry. O(entries since the last checkpoint).
    static func resumeState(store: AuditStore, keyring: AuditKeyring) throws(AuditError) -> AuditResumeState {
        do {
            let h = SHA256Context()
            var state = AuditResumeState(lastSeq: 0, lastHash: .zero, tree: MerkleAccumulator(), latestHead: nil)
            if let latest = try store.latestTreeHead() {
                guard let (head, frontier) = latest else { throw AuditError(.tampered, "the latest tree head is malformed") }
                guard let key = keyring.trustedKeys[head.keyID], head.verify(with: key) else {
                    throw AuditError(.tampered, "tree head \(head.treeSize): signature does not verify with a trusted key")
                }
                guard let t = MerkleAccumulator(count: head.treeSize, frontier: frontier), t.root(using: h) == head.root else {
                    throw AuditError(.tampered, "tree head \(head.treeSize): stored frontier does not match the signed root")
                }
                if let e = try store.entry(seq: head.treeSize), e.entryHash != head.chainHead {
                    throw AuditError(.tampered, "entry \(head.treeSize) does not match the chain head signed in tree head \(head.treeSize)")
                }
                state = AuditResumeState(lastSeq: head.treeSize, lastHash: head.chainHead, tree: t, latestHead: head)
            } else if let mark = try store.pruneMark() {
                throw AuditError(.tampered, "entries were pruned through \(mark.prunedThrough) but no tree head exists")
            }
            if let last = try store.lastEntry(), last.seq < state.lastSeq {
                throw AuditError(
                    .tampered, "the log ends at entry \(last.seq) but tree head \(state.lastSeq) is signed: entries were removed")
            } else if try store.lastEntry() == nil, state.lastSeq > 0, try store.pruneMark()?.prunedThrough != state.lastSeq {
                throw AuditError(.tampered, "the log is empty but tree head \(state.lastSeq) is signed: entries were removed")
            }
            // The tail.
            let s = try store.db.prepare("SELECT \(AuditStore.entryColumns) FROM entries WHERE seq > ? ORDER BY seq")
            try s.bind(0, Int64(bitPattern: state.lastSeq))
            var buffer: [UInt8] = []
            while try s.step() {
                let seq = UInt64(bitPattern: s.int64(0))
                guard seq == state.lastSeq + 1 else { throw AuditError(.tampered, "entry \(state.lastSeq + 1) is missing") }
                encodeRow(s, into: &buffer)
                let computed = buffer.withUnsafeBytes { h.chain(state.lastHash, $0) }
                guard s.withBytes(10, { AuditHash(bytes: $0) }) == computed, s.withBytes(9, { AuditHash(bytes: $0) }) == state.lastHash else {
                    throw AuditError(.tampered, "entry \(seq) does not match its hash or chain link")
                }
                state.tree.append(leafHash: h.leaf(computed), using: h)
                state.lastSeq = seq
                state.lastHash = computed
            }
            return state
        } catch let e as SQLiteError {
            throw AuditError.database(e)
        } catch let e as AuditError {
            throw e
        } catch {
            throw AuditError(.database, "\(error)")
        }
    }
}
