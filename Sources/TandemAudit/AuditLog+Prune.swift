// Retention: pruning old entries while keeping the log verifiable.
import TandemSQLite

extension AuditLog {
    /// Deletes entries `1...treeSize`, where `treeSize` is the size of a signed tree head, and
    /// records a signed prune mark. The tree head is kept: verification resumes from its chain
    /// head and its frontier (whose hashes it checks against the signed root), and inclusion and
    /// consistency proofs for later entries still work.
    ///
    /// - Throws: `.notFound` when there is no tree head of that size; `.invalidArgument` when it
    ///   is not above the current prune point.
    @discardableResult
    public func prune(through treeSize: UInt64) throws(AuditError) -> AuditPruneMark {
        guard let signingKey = keyring.signingKey else { throw AuditError(.missingKey, "no signing key") }
        let clock = configuration.clock
        return try perform { store throws(AuditError) in
            do {
                guard try store.treeHead(size: treeSize) != nil else { throw AuditError(.notFound, "no tree head of size \(treeSize)") }
                let current = try store.pruneMark()?.prunedThrough ?? 0
                guard treeSize > current else { throw AuditError(.invalidArgument, "entries through \(current) are already pruned") }
                let now = clock()
                let mark = AuditPruneMark(
                    prunedThrough: treeSize, timeMicros: now, keyID: signingKey.id,
                    signature: signingKey.sign(AuditPruneMark.signedMessage(prunedThrough: treeSize, timeMicros: now, keyID: signingKey.id)))
                try store.db.transaction(.immediate) { () throws(SQLiteError) in
                    let del = try store.db.prepare("DELETE FROM entries WHERE seq <= ?")
                    try del.bind(0, Int64(bitPattern: treeSize))
                    try del.step()
                    let ins = try store.db.prepare("INSERT INTO prune_marks(pruned_through, time_us, key_id, signature) VALUES (?,?,?,?)")
                    try ins.bind(0, Int64(bitPattern: mark.prunedThrough))
                    try ins.bind(1, mark.timeMicros)
                    try ins.bind(2, mark.keyID)
                    try ins.bind(3, bytes: mark.signature)
                    try ins.step()
                }
                return mark
            } catch let e as AuditError {
                throw e
            } catch let e as SQLiteError {
                throw AuditError.database(e)
            } catch {
                throw AuditError(.database, "\(error)")
            }
        }
    }

    /// Prunes up to the largest signed tree head whose entries are all older than `micros`
    /// (UTC microseconds). Returns nil when nothing qualifies.
    @discardableResult
    public func prune(olderThan micros: Int64) throws(AuditError) -> AuditPruneMark? {
        let target: UInt64? = try read { reader throws(AuditError) in
            let pruned = try reader.pruneMark()?.prunedThrough ?? 0
            for head in try reader.treeHeads().reversed() where head.treeSize > pruned {
                if let e = try reader.entry(seq: head.treeSize), e.timeMicros < micros { return head.treeSize }
            }
            return nil
        }
        guard let target else { return nil }
        return try prune(through: target)
    }
}
