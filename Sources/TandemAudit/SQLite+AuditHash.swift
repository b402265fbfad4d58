// Binding audit hashes to statements of the SQLite wrapper (TandemSQLite).
import TandemSQLite

extension SQLiteStatement {
    /// Binds a 32-byte audit hash as a blob (copied) to parameter `index` (0-based).
    func bind(_ index: Int, hash: AuditHash) throws(SQLiteError) {
        let rc = hash.withUnsafeBytes { bindRaw(index, $0) }
        try check(rc)
    }
}
