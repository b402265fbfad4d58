// A thin wrapper over the system SQLite (CSQLite): one connection class, one statement class,
// transactions, WAL, and migrations keyed on `PRAGMA user_version`.
//
// Ownership: a `SQLiteConnection` and its statements are used by one thread at a time (the audit
// writer's thread, a command-line reader, or whoever holds the lock of the `Mutex` the
// connection lives in). They are not Sendable, and the connection is opened with
// SQLITE_OPEN_NOMUTEX (SQLite's "multi-thread" mode: no locking inside SQLite, the caller
// guarantees that no two threads use the connection or its statements at the same time).
// Nothing outside this file sees an `OpaquePointer`.
internal import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// `SQLITE_TRANSIENT` is a macro (`((sqlite3_destructor_type)-1)`) that Swift does not import:
/// it tells SQLite to copy a bound value before `bind` returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// An error reported by SQLite.
///
/// The description names the result code, SQLite's message and the statement's SQL text; bound
/// values are never part of it (they may be content).
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The primary or extended result code (`SQLITE_BUSY`, `SQLITE_CORRUPT`, ...).
    public let code: Int32
    /// SQLite's error message for the failing call.
    public let message: String
    /// The SQL being prepared or executed, if any.
    public let sql: String?

    /// Makes an error; for wrappers that report their own failures in SQLite's terms.
    public init(code: Int32, message: String, sql: String?) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// The primary result code (the low 8 bits of ``code``), e.g. `SQLITE_CONSTRAINT` for
    /// `SQLITE_CONSTRAINT_UNIQUE`.
    public var primaryCode: Int32 { code & 0xff }

    /// Which kind of constraint a statement violated.
    public enum Constraint: Sendable, Equatable {
        case unique, primaryKey, foreignKey, check, notNull, other
    }

    /// The violated constraint when this is an `SQLITE_CONSTRAINT` error, else nil.
    public var constraint: Constraint? {
        guard primaryCode == SQLITE_CONSTRAINT else { return nil }
        // The extended codes are macros Swift does not import: SQLITE_CONSTRAINT | (n << 8).
        switch code >> 8 {
        case 8: return .unique  // SQLITE_CONSTRAINT_UNIQUE
        case 6: return .primaryKey  // SQLITE_CONSTRAINT_PRIMARYKEY
        case 3: return .foreignKey  // SQLITE_CONSTRAINT_FOREIGNKEY
        case 1: return .check  // SQLITE_CONSTRAINT_CHECK
        case 5: return .notNull  // SQLITE_CONSTRAINT_NOTNULL
        default: return .other
        }
    }

    /// Whether another connection held a lock past the busy timeout (`SQLITE_BUSY`,
    /// `SQLITE_LOCKED` and their extended codes).
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        var s = "SQLite error \(code): \(message)"
        if let sql { s += " - while executing `\(sql)`" }
        return s
    }
}

/// Where a transaction takes its write lock.
public enum SQLiteTransactionKind: String, Sendable {
    /// Takes the write lock at the first write.
    case deferred = "DEFERRED"
    /// Takes the write lock at `BEGIN`: fails early (after the busy timeout) rather than mid-way.
    case immediate = "IMMEDIATE"
}

/// One connection to one SQLite database file, used by one thread at a time.
public final class SQLiteConnection {
    /// The `sqlite3*` handle. Only this file sees it.
    fileprivate let handle: OpaquePointer
    /// The path the connection was opened with.
    public let path: String

    /// Opens (and with `create`, creates) a database file.
    ///
    /// - Parameters:
    ///   - path: The database file.
    ///   - readOnly: Open read-only (command-line readers). A read-only connection still sees a
    ///     WAL database's newest committed transactions.
    ///   - create: Create the file when it does not exist (ignored when `readOnly`).
    ///   - busyTimeoutMilliseconds: How long a statement waits for another connection's lock
    ///     before failing with `SQLITE_BUSY`.
    public init(path: String, readOnly: Bool = false, create: Bool = true, busyTimeoutMilliseconds: Int32 = 5000) throws(SQLiteError) {
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE
        if readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if create { flags |= SQLITE_OPEN_CREATE }
        }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message + " (\(path))", sql: nil)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit {
        // close_v2 defers the close until the last statement is finalized; statements hold a
        // strong reference to their connection, so none is left at this point anyway.
        sqlite3_close_v2(handle)
    }

    fileprivate func error(_ code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more SQL statements that take no parameters and return no rows of interest.
    public func execute(_ sql: String) throws(SQLiteError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errmsg)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    /// Compiles one statement.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        return SQLiteStatement(connection: self, handle: stmt, sql: sql)
    }

    /// Runs `body` in one transaction: committed when `body` returns, rolled back when it throws.
    public func transaction<R, E: Error>(_ kind: SQLiteTransactionKind = .immediate, _ body: () throws(E) -> R) throws -> R {
        try execute("BEGIN \(kind.rawValue)")
        let result: R
        do {
            result = try body()
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        do {
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        return result
    }

    /// Whether a transaction is open on this connection.
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Reads a single integer (the first column of the first row), or nil when there is no row
    /// or the value is NULL.
    public func scalarInt64(_ sql: String) throws(SQLiteError) -> Int64? {
        let s = try prepare(sql)
        guard try s.step(), !s.isNull(0) else { return nil }
        return s.int64(0)
    }

    /// `PRAGMA user_version`: the schema version our migrations have reached.
    public func userVersion() throws(SQLiteError) -> Int {
        Int(try scalarInt64("PRAGMA user_version") ?? 0)
    }

    /// Switches the database to write-ahead logging and sets the `synchronous` level.
    ///
    /// - Parameter synchronous: `FULL` syncs the WAL at every commit (survives power loss);
    ///   `NORMAL` syncs only at checkpoints (survives a process crash, may lose the last
    ///   transactions on power loss).
    public func enableWAL(synchronous: String) throws(SQLiteError) {
        let s = try prepare("PRAGMA journal_mode=WAL")
        guard try s.step(), s.text(0).lowercased() == "wal" else {
            throw SQLiteError(code: SQLITE_ERROR, message: "cannot switch to WAL mode", sql: "PRAGMA journal_mode=WAL")
        }
        try execute("PRAGMA synchronous=\(synchronous)")
    }

    /// Brings the schema up to date: runs `migrations[v...]` where `v` is the current
    /// `user_version`, each in its own transaction that also sets `user_version` to its index + 1.
    ///
    /// - Throws: `SQLiteError` when a migration fails (that migration is rolled back), or when
    ///   the database is newer than this code (`user_version > migrations.count`).
    public func migrate(_ migrations: [String]) throws(SQLiteError) {
        let current = try userVersion()
        if current > migrations.count {
            throw SQLiteError(
                code: SQLITE_ERROR,
                message: "database schema version \(current) is newer than this program's (\(migrations.count))", sql: nil)
        }
        for version in current..<migrations.count {
            do {
                try transaction(.immediate) { () throws(SQLiteError) in
                    try execute(migrations[version])
                    try execute("PRAGMA user_version = \(version + 1)")
                }
            } catch let e as SQLiteError {
                throw e
            } catch {
                throw SQLiteError(code: SQLITE_ERROR, message: "\(error)", sql: nil)
            }
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

@available(*, unavailable)
extension SQLiteConnection: Sendable {}

/// The storage class of a column value.
public enum SQLiteColumnType: Equatable, Sendable {
    /// `SQLITE_INTEGER`, `SQLITE_FLOAT`, `SQLITE_TEXT`, `SQLITE_BLOB`, `SQLITE_NULL`.
    case integer, float, text, blob, null
}

/// A prepared statement. Parameters and columns are 0-based here (SQLite's parameters are
/// 1-based; the wrapper adds the 1).
public final class SQLiteStatement {
    private let connection: SQLiteConnection
    private let handle: OpaquePointer
    /// The statement's SQL text.
    public let sql: String

    fileprivate init(connection: SQLiteConnection, handle: OpaquePointer, sql: String) {
        self.connection = connection
        self.handle = handle
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// Throws the connection's current error when `rc` is not `SQLITE_OK`; for result codes
    /// returned by ``bindRaw(_:_:)``.
    public func check(_ rc: Int32) throws(SQLiteError) {
        if rc != SQLITE_OK { throw connection.error(rc, sql: sql) }
    }

    // MARK: Binding

    /// Binds an integer to parameter `index` (0-based).
    public func bind(_ index: Int, _ value: Int64) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, Int32(index + 1), value))
    }

    /// Binds an integer to parameter `index` (0-based).
    public func bind(_ index: Int, _ value: Int) throws(SQLiteError) { try bind(index, Int64(value)) }

    /// Binds an integer, or NULL when `value` is nil.
    public func bind(_ index: Int, _ value: Int64?) throws(SQLiteError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    /// Binds text, or NULL when `value` is nil.
    public func bind(_ index: Int, _ value: String?) throws(SQLiteError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    /// Binds text (copied; embedded NULs are kept) to parameter `index` (0-based).
    public func bind(_ index: Int, _ value: String) throws(SQLiteError) {
        var v = value
        let rc = v.withUTF8 { p -> Int32 in
            if let base = p.baseAddress {
                return sqlite3_bind_text(
                    handle, Int32(index + 1), UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(p.count), sqliteTransient)
            }
            return sqlite3_bind_text(handle, Int32(index + 1), "", 0, sqliteTransient)
        }
        try check(rc)
    }

    /// Binds a blob (copied); an empty buffer binds an empty blob, not NULL.
    public func bind(_ index: Int, bytes: UnsafeRawBufferPointer) throws(SQLiteError) {
        // A zero-length blob with a nil pointer would bind NULL; give SQLite a valid pointer.
        let rc: Int32
        if let base = bytes.baseAddress {
            rc = sqlite3_bind_blob(handle, Int32(index + 1), base, Int32(bytes.count), sqliteTransient)
        } else {
            rc = sqlite3_bind_zeroblob(handle, Int32(index + 1), 0)
        }
        try check(rc)
    }

    /// Binds a blob (copied) and returns SQLite's result code, for use inside a
    /// `withUnsafeBytes` closure; check it with ``check(_:)``.
    public func bindRaw(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        if let base = bytes.baseAddress {
            return sqlite3_bind_blob(handle, Int32(index + 1), base, Int32(bytes.count), sqliteTransient)
        }
        return sqlite3_bind_zeroblob(handle, Int32(index + 1), 0)
    }

    /// Binds a blob (copied); an empty array binds an empty blob, not NULL.
    public func bind(_ index: Int, bytes: [UInt8]) throws(SQLiteError) {
        let rc = bytes.withUnsafeBytes { b in
            if let base = b.baseAddress {
                return sqlite3_bind_blob(handle, Int32(index + 1), base, Int32(b.count), sqliteTransient)
            }
            return sqlite3_bind_zeroblob(handle, Int32(index + 1), 0)
        }
        try check(rc)
    }

    /// Binds NULL to parameter `index` (0-based).
    public func bindNull(_ index: Int) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, Int32(index + 1)))
    }

    // MARK: Stepping

    /// Advances to the next row. Returns true when a row is available, false when done.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql: sql)
        }
    }

    /// Resets the statement for another run (bindings are kept until rebound). A statement that
    /// stopped at a row keeps its read transaction open until it is reset or finalized.
    public func reset() {
        sqlite3_reset(handle)
    }

    /// Sets every parameter back to NULL.
    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns

    /// The storage class of column `index` (0-based) of the current row.
    public func columnType(_ index: Int) -> SQLiteColumnType {
        switch sqlite3_column_type(handle, Int32(index)) {
        case SQLITE_INTEGER: return .integer
        case SQLITE_FLOAT: return .float
        case SQLITE_TEXT: return .text
        case SQLITE_BLOB: return .blob
        default: return .null
        }
    }

    /// Whether column `index` of the current row is NULL.
    public func isNull(_ index: Int) -> Bool { sqlite3_column_type(handle, Int32(index)) == SQLITE_NULL }

    /// Column `index` of the current row as an integer (0 for NULL).
    public func int64(_ index: Int) -> Int64 { sqlite3_column_int64(handle, Int32(index)) }

    /// Column `index` of the current row as text ("" for NULL).
    public func text(_ index: Int) -> String {
        guard let p = sqlite3_column_text(handle, Int32(index)) else { return "" }
        let n = Int(sqlite3_column_bytes(handle, Int32(index)))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Calls `body` with the column's bytes as stored (text as UTF-8, blob as is). The buffer is
    /// valid only inside `body`.
    public func withBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // Ask for the pointer first, then the length (SQLite's documented order).
        let type = sqlite3_column_type(handle, Int32(index))
        let p: UnsafeRawPointer? =
            type == SQLITE_TEXT
            ? sqlite3_column_text(handle, Int32(index)).map { UnsafeRawPointer($0) }
            : sqlite3_column_blob(handle, Int32(index))
        let n = Int(sqlite3_column_bytes(handle, Int32(index)))
        return try body(UnsafeRawBufferPointer(start: n == 0 ? nil : p, count: n))
    }

    /// Column `index` of the current row as bytes ([] for NULL).
    public func blob(_ index: Int) -> [UInt8] {
        withBytes(index) { Array($0) }
    }
}

@available(*, unavailable)
extension SQLiteStatement: Sendable {}
