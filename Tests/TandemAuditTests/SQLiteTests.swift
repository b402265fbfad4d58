import Testing
@testable import TandemAudit
import TandemSQLite

@Suite struct SQLiteTests {
    @Test func roundTripsValuesThroughPreparedStatements() throws {
        try withTempDirectory { dir in
            let db = try SQLiteConnection(path: dir + "/t.sqlite")
            try db.enableWAL(synchronous: "NORMAL")
            try db.execute("CREATE TABLE t(a INTEGER, b TEXT, c BLOB)")
            let ins = try db.prepare("INSERT INTO t VALUES (?,?,?)")
            try ins.bind(0, Int64.min)
            try ins.bind(1, "héllo\u{0}x")
            try ins.bind(2, bytes: [0, 1, 2, 255])
            try ins.step()
            ins.reset()
            try ins.bind(0, 7)
            try ins.bind(1, "")
            try ins.bind(2, bytes: [])
            try ins.step()
            let sel = try db.prepare("SELECT a, b, c FROM t ORDER BY rowid")
            #expect(try sel.step())
            #expect(sel.int64(0) == Int64.min)
            #expect(sel.text(1) == "héllo\u{0}x")
            #expect(sel.blob(2) == [0, 1, 2, 255])
            #expect(try sel.step())
            #expect(sel.int64(0) == 7)
            #expect(sel.text(1) == "")
            #expect(sel.blob(2) == [])
            #expect(sel.columnType(2) == .blob)
            #expect(try sel.step() == false)
        }
    }

    @Test func walModeAndMigrationsKeyedOnUserVersion() throws {
        try withTempDirectory { dir in
            let path = dir + "/m.sqlite"
            do {
                let db = try SQLiteConnection(path: path)
                try db.enableWAL(synchronous: "FULL")
                try db.migrate(["CREATE TABLE a(x)", "CREATE TABLE b(y)"])
                #expect(try db.userVersion() == 2)
                #expect(try db.scalarInt64("SELECT count(*) FROM sqlite_master WHERE type='table'") == 2)
            }
            let db = try SQLiteConnection(path: path)
            // Applying again is a no-op; a third migration runs alone.
            try db.migrate(["CREATE TABLE a(x)", "CREATE TABLE b(y)", "CREATE TABLE c(z)"])
            #expect(try db.userVersion() == 3)
            let s = try db.prepare("PRAGMA journal_mode")
            #expect(try s.step())
            #expect(s.text(0) == "wal")
            // A database newer than the code is refused.
            #expect(throws: SQLiteError.self) { try db.migrate(["CREATE TABLE a(x)"]) }
        }
    }

    @Test func failedMigrationIsRolledBack() throws {
        try withTempDirectory { dir in
            let db = try SQLiteConnection(path: dir + "/r.sqlite")
            #expect(throws: SQLiteError.self) { try db.migrate(["CREATE TABLE a(x); CREATE TABLE broken(("]) }
            #expect(try db.userVersion() == 0)
            #expect(try db.scalarInt64("SELECT count(*) FROM sqlite_master") == 0)
        }
    }

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        struct Boom: Error {}
        try withTempDirectory { dir in
            let db = try SQLiteConnection(path: dir + "/x.sqlite")
            try db.execute("CREATE TABLE t(a)")
            #expect(throws: Boom.self) {
                try db.transaction { () throws(Boom) in
                    try? db.execute("INSERT INTO t VALUES (1)")
                    throw Boom()
                }
            }
            #expect(db.isInTransaction == false)
            #expect(try db.scalarInt64("SELECT count(*) FROM t") == 0)
            try db.transaction { () throws(SQLiteError) in try db.execute("INSERT INTO t VALUES (2)") }
            #expect(try db.scalarInt64("SELECT a FROM t") == 2)
        }
    }

    @Test func errorsNameTheStatementButNoValues() throws {
        try withTempDirectory { dir in
            let db = try SQLiteConnection(path: dir + "/e.sqlite")
            do {
                _ = try db.prepare("SELEKT 1")
                Issue.record("expected an error")
            } catch let error as SQLiteError {
                #expect(error.description.contains("SELEKT 1"))
            }
        }
    }
}
