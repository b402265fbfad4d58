// Helpers for the audit tests: temporary directories and raw database access.
@testable import TandemAudit
import TandemSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed after `body`.
func withTempDirectory<R>(_ body: (String) throws -> R) throws -> R {
    var template = Array("/tmp/tandem-audit-test-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { p -> String in
        guard let r = mkdtemp(p.baseAddress!) else { fatalError("mkdtemp failed") }
        return String(cString: r)
    }
    defer { removeTree(dir) }
    return try body(dir)
}

/// `rm -rf` for a test directory.
func removeTree(_ path: String) { AuditFiles.removeTree(path) }

/// A configuration in `dir` with small checkpoint intervals and a fixed, advancing clock.
func testConfiguration(_ dir: String, checkpointEvery: UInt64 = 8) -> AuditLogConfiguration {
    var c = AuditLogConfiguration.standard(dataDirectory: dir)
    c.checkpointEntries = checkpointEvery
    c.checkpointInterval = 3600
    c.durability = .normal
    return c
}

/// A sample event.
func sampleEvent(_ i: Int, key: AuditContentKey, workspace: String = "w1") -> AuditEvent {
    var e = AuditEvent(.kernelExecute, actor: AuditActor(id: "user\(i % 3)", role: "editor"), workspace: workspace, outcome: i % 5 == 0 ? .failure : .success)
    e.add("duration_us", Int64(i * 17))
    e.add("exit_status", i % 5 == 0 ? 1 : 0)
    e.add("kernel", text: "python3")
    e.addDigest("code", of: Array("print(\(i))".utf8), key: key)
    e.addDigest("output", of: Array("\(i)\n".utf8), key: key)
    return e
}

/// Writes `count` sample entries one transaction each (so tree heads fall exactly every
/// `checkpointEvery` entries) and closes the log (which signs a final tree head).
func makeLog(_ dir: String, count: Int, checkpointEvery: UInt64 = 8) throws -> AuditLogConfiguration {
    let c = testConfiguration(dir, checkpointEvery: checkpointEvery)
    let log = try AuditLog(c)
    for i in 1...count { try log.appendAndWait(sampleEvent(i, key: log.contentKey)) }
    try log.close()
    return c
}

/// Runs SQL against the database file directly (the "attacker" in tamper tests).
func tamper(_ c: AuditLogConfiguration, _ sql: String) throws {
    let db = try SQLiteConnection(path: c.databasePath)
    try db.execute(sql)
}

/// Verifies with the keys beside the log, and the witness file when `witness`.
func verifyLog(_ c: AuditLogConfiguration, witness: Bool = false) throws -> AuditVerificationReport {
    let r = try AuditReader(c)
    let w = witness ? try c.witnessPath.flatMap { try AuditWitness.read($0) } : nil
    return try r.verify(witness: w)
}
