// The SQLite wrapper's error classification, which the store's error mapping relies on.
import Testing
import TandemSQLite

@Suite struct SQLiteErrorTests {
    @Test func constraintKindsAreClassified() throws {
        try withTempDirectory { dir in
            let db = try SQLiteConnection(path: dir + "/c.sqlite")
            try db.execute("PRAGMA foreign_keys = ON")
            try db.execute(
                """
                CREATE TABLE p(id INTEGER PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL, c INTEGER CHECK (c > 0)) STRICT;
                CREATE TABLE k(a TEXT PRIMARY KEY, b INTEGER) STRICT, WITHOUT ROWID;
                CREATE TABLE f(p INTEGER REFERENCES p(id)) STRICT;
                INSERT INTO p VALUES (1, 'x', 'n', 1);
                INSERT INTO k VALUES ('a', 1);
                """)
            #expect(db.lastInsertRowID == 1)
            func kind(_ sql: String) -> SQLiteError.Constraint? {
                do {
                    try db.execute(sql)
                    return nil
                } catch {
                    return error.constraint
                }
            }
            #expect(kind("INSERT INTO p VALUES (2, 'x', 'n', 1)") == .unique)
            #expect(kind("INSERT INTO p VALUES (1, 'y', 'n', 1)") == .primaryKey)
            #expect(kind("INSERT INTO k VALUES ('a', 2)") == .primaryKey)
            #expect(kind("INSERT INTO p VALUES (3, 'z', NULL, 1)") == .notNull)
            #expect(kind("INSERT INTO p VALUES (4, 'w', 'n', 0)") == .check)
            #expect(kind("INSERT INTO f VALUES (99)") == .foreignKey)
            #expect(kind("INSERT INTO p VALUES (5, 'v', 'n', 1)") == nil)
            #expect(db.lastInsertRowID == 5)
            #expect(db.changes == 1)
        }
    }

    @Test func busyIsRecognised() throws {
        try withTempDirectory { dir in
            let a = try SQLiteConnection(path: dir + "/b.sqlite")
            try a.enableWAL(synchronous: "NORMAL")
            try a.execute("CREATE TABLE t(x)")
            let b = try SQLiteConnection(path: dir + "/b.sqlite", busyTimeoutMilliseconds: 0)
            try a.execute("BEGIN IMMEDIATE")
            do {
                try b.execute("BEGIN IMMEDIATE")
                Issue.record("expected SQLITE_BUSY")
            } catch let error as SQLiteError {
                #expect(error.isBusy)
                #expect(error.constraint == nil)
            } catch {
                Issue.record("unexpected \(error)")
            }
            try a.execute("COMMIT")
        }
    }
}
