// The store's SQLite connection and its cached prepared statements. It lives inside the
// store's Mutex: whoever holds the lock is the only thread using it (see TandemSQLite).
import TandemSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A value that binds to a statement parameter.
protocol StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError)
}

extension Int64: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, self) }
}

extension Bool: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, Int64(self ? 1 : 0)) }
}

extension String: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, self) }
}

extension Array: StoreBindable where Element == UInt8 {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, bytes: self) }
}

extension Optional: StoreBindable where Wrapped: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) {
        if let v = self { try v.bind(to: s, at: index) } else { try s.bindNull(index) }
    }
}

extension User.ID: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, rawValue) }
}

extension Workspace.ID: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, rawValue) }
}

extension TokenInfo.ID: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, rawValue) }
}

extension Role: StoreBindable {
    func bind(to s: SQLiteStatement, at index: Int) throws(SQLiteError) { try s.bind(index, rawValue) }
}

/// One connection to the store's file and its statement cache. Not Sendable: it is only ever
/// reached through the store's `Mutex`.
final class StoreDatabase {
    private let connection: SQLiteConnection
    /// Prepared statements by SQL text; each is reset after use, so none holds a read
    /// transaction open between calls.
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens (creating when missing, mode 0600) the file, switches it to WAL with
    /// `synchronous=NORMAL`, turns on foreign keys and runs the migrations.
    init(path: String, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        // Create the file ourselves so that it (and the -wal/-shm files SQLite derives from it)
        // is readable by the owner only: it holds token and session digests.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.database, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        do throws(SQLiteError) {
            connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            try connection.enableWAL(synchronous: "NORMAL")
            try connection.execute("PRAGMA foreign_keys = ON")
            try connection.migrate(StoreSchema.migrations)
        } catch {
            throw StoreError(error)
        }
    }

    /// The schema version reached (`PRAGMA user_version`).
    func schemaVersion() throws(StoreError) -> Int {
        do throws(SQLiteError) { return try connection.userVersion() } catch { throw StoreError(error) }
    }

    private func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let s = statements[sql] { return s }
        let s = try connection.prepare(sql)
        statements[sql] = s
        return s
    }

    /// Runs `body` on the cached statement for `sql` with `values` bound to its parameters, and
    /// resets the statement afterwards.
    private func with<R, each V: StoreBindable>(
        _ sql: String, _ values: repeat each V, body: (SQLiteStatement) throws(SQLiteError) -> R
    ) throws(StoreError) -> R {
        do throws(SQLiteError) {
            let s = try statement(sql)
            defer { s.reset() }
            var index = 0
            for v in repeat each values {
                try v.bind(to: s, at: index)
                index += 1
            }
            return try body(s)
        } catch {
            throw StoreError(error)
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    func execute<each V: StoreBindable>(_ sql: String, _ values: repeat each V) throws(StoreError) -> Int {
        try with(sql, repeat each values) { s throws(SQLiteError) in
            try s.step()
            return connection.changes
        }
    }

    /// Runs an INSERT; returns the new row's rowid.
    func insert<each V: StoreBindable>(_ sql: String, _ values: repeat each V) throws(StoreError) -> Int64 {
        try with(sql, repeat each values) { s throws(SQLiteError) in
            try s.step()
            return connection.lastInsertRowID
        }
    }

    /// The first row, mapped, or nil.
    func row<R, each V: StoreBindable>(
        _ sql: String, _ values: repeat each V, map: (SQLiteStatement) -> R
    ) throws(StoreError) -> R? {
        try with(sql, repeat each values) { s throws(SQLiteError) in try s.step() ? map(s) : nil }
    }

    /// Every row, mapped.
    func rows<R, each V: StoreBindable>(
        _ sql: String, _ values: repeat each V, map: (SQLiteStatement) -> R
    ) throws(StoreError) -> [R] {
        try with(sql, repeat each values) { s throws(SQLiteError) in
            var out: [R] = []
            while try s.step() { out.append(map(s)) }
            return out
        }
    }

    /// An integer from the first column of the first row (0 when there is no row).
    func count<each V: StoreBindable>(_ sql: String, _ values: repeat each V) throws(StoreError) -> Int64 {
        try row(sql, repeat each values) { $0.int64(0) } ?? 0
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed when it returns, rolled back
    /// when it throws.
    func transaction<R>(_ body: () throws(StoreError) -> R) throws(StoreError) -> R {
        try execute("BEGIN IMMEDIATE")
        let result: R
        do throws(StoreError) {
            result = try body()
            try execute("COMMIT")
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
        return result
    }
}

// MARK: Row mapping

extension SQLiteStatement {
    func optionalInt64(_ i: Int) -> Int64? { isNull(i) ? nil : int64(i) }
    func optionalText(_ i: Int) -> String? { isNull(i) ? nil : text(i) }
    func bool(_ i: Int) -> Bool { int64(i) != 0 }
}
