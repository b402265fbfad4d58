import Foundation
import Testing
import TandemSQLite
@testable import TandemStore

@Suite struct SchemaTests {
    @Test func freshFileIsMigratedAndReopens() throws {
        try withTempDirectory { dir in
            let path = dir + "/tandem.db"
            do {
                let store = try TandemStore(path: path)
                #expect(try store.schemaVersion() == TandemStore.currentSchemaVersion)
                #expect(TandemStore.currentSchemaVersion == 2)
                #expect(try store.userCount() == 0)
                _ = try store.createUser(name: "alice")
            }
            // Reopen: no migration runs again, data is kept.
            let again = try TandemStore(path: path)
            #expect(try again.schemaVersion() == 2)
            #expect(try again.userCount() == 1)
            #expect(try again.user(named: "alice")?.name == "alice")

            let db = try SQLiteConnection(path: path, readOnly: true, create: false)
            let s = try db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            var tables: [String] = []
            while try s.step() { tables.append(s.text(0)) }
            #expect(tables == ["members", "sessions", "tokens", "usage", "users", "workspaces"])
            let mode = try db.prepare("PRAGMA journal_mode")
            #expect(try mode.step())
            #expect(mode.text(0) == "wal")
        }
    }

    @Test func fileIsPrivate() throws {
        try withTempDirectory { dir in
            _ = try makeStore(dir)
            let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/tandem.db")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
    }

    @Test func newerSchemaIsRefused() throws {
        try withTempDirectory { dir in
            let path = dir + "/tandem.db"
            do {
                let db = try SQLiteConnection(path: path)
                try db.execute("PRAGMA user_version = 99")
            }
            expectStoreError(.database) { _ = try TandemStore(path: path) }
        }
    }

    @Test func unopenablePathIsADatabaseError() {
        expectStoreError(.database) { _ = try TandemStore(path: "/nonexistent-dir-\(UInt64.random(in: 0...UInt64.max))/t.db") }
    }

    @Test func errorsCarryStableCodesAndStatuses() {
        let e = StoreError(.conflict, "x")
        #expect(e.code.rawValue == "conflict")
        #expect("\(e.code)" == "conflict")
        #expect(e.httpStatus == 409)
        #expect(StoreError(.notFound, "").httpStatus == 404)
        #expect(StoreError(.invalidName, "").httpStatus == 400)
        #expect(StoreError(.invalidArgument, "").httpStatus == 400)
        #expect(StoreError(.forbidden, "").httpStatus == 403)
        #expect(StoreError(.busy, "").httpStatus == 503)
        #expect(StoreError(.database, "").httpStatus == 500)
        #expect(StoreError.Code.notFound.rawValue == "not_found")
        #expect(StoreError.Code.invalidName.rawValue == "invalid_name")
    }
}
