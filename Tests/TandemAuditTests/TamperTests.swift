// Every kind of change to the database file is detected, and the first broken entry named.
import Testing
import TandemCrypto
@testable import TandemAudit
import TandemSQLite

@Suite struct TamperTests {
    /// 30 entries, tree heads every 8 (and at 30, on close).
    func withLog(_ body: (AuditLogConfiguration) throws -> Void) throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 30, checkpointEvery: 8)
            #expect(try verifyLog(c, witness: true).isValid)
            try body(c)
        }
    }

    func expectProblem(_ c: AuditLogConfiguration, _ kind: AuditProblem.Kind, at seq: UInt64, witness: Bool = false) throws {
        let report = try verifyLog(c, witness: witness)
        #expect(report.problem?.kind == kind, "\(String(describing: report.problem))")
        #expect(report.problem?.seq == seq, "\(String(describing: report.problem))")
        // Opening the log for writing refuses a damaged tail only; verification is the check.
    }

    /// Rewrites entry `seq` with `change` and recomputes its hash (what an attacker without the
    /// signing key can do); with `rehashTail` also every later entry's chain.
    func rewrite(_ c: AuditLogConfiguration, seq: UInt64, rehashTail: Bool, _ change: (inout AuditEntry) -> Void) throws {
        let db = try SQLiteConnection(path: c.databasePath)
        let store = try AuditStore(path: c.databasePath, readOnly: false, durability: .normal)
        var entries = try store.entries(after: seq - 1)
        var prev = entries[0].prevHash
        for i in entries.indices {
            if i == 0 { change(&entries[i]) } else if !rehashTail { break }
            entries[i].prevHash = prev
            entries[i].entryHash = SHA256Context().chain(prev, AuditEncoding.encode(entries[i]).withUnsafeBytes { UnsafeRawBufferPointer($0) })
            prev = entries[i].entryHash
            let e = entries[i]
            try db.execute(
                "UPDATE entries SET actor_id = '\(e.actor.id)', prev_hash = X'\(e.prevHash.hex)', entry_hash = X'\(e.entryHash.hex)' WHERE seq = \(e.seq)")
        }
    }

    @Test func editingOneField() throws {
        try withLog { c in
            try tamper(c, "UPDATE entries SET actor_id = 'mallory' WHERE seq = 13")
            try expectProblem(c, .entryModified, at: 13)
        }
    }

    @Test func editingADigestOrNumber() throws {
        try withLog { c in
            // Flip one byte of the fields block (a digest or a duration).
            try tamper(c, "UPDATE entries SET fields = CAST(substr(fields, 1, 20) || X'00' || substr(fields, 22) AS BLOB) WHERE seq = 4")
            try expectProblem(c, .entryModified, at: 4)
        }
    }

    @Test func editingTheTime() throws {
        try withLog { c in
            try tamper(c, "UPDATE entries SET time_us = time_us - 1 WHERE seq = 1")
            try expectProblem(c, .entryModified, at: 1)
        }
    }

    @Test func editingAndRehashingOneEntry() throws {
        try withLog { c in
            try rewrite(c, seq: 13, rehashTail: false) { $0.actor.id = "mallory" }
            try expectProblem(c, .chainBroken, at: 13)
        }
    }

    @Test func editingAndRehashingTheWholeTailIsCaughtBySignedTreeHeads() throws {
        try withLog { c in
            try rewrite(c, seq: 19, rehashTail: true) { $0.actor.id = "mallory" }
            // The chain is consistent again, but tree head 24 no longer matches.
            let report = try verifyLog(c)
            #expect(report.problem?.kind == .treeHeadMismatch)
            #expect(report.problem?.seq == 24)
            // Narrowed to the frontier subtree 17...24 of tree head 24 (16 + 8).
            #expect(report.problem?.message.contains("17...24") == true, "\(String(describing: report.problem))")
        }
    }

    @Test func deletingOneEntry() throws {
        try withLog { c in
            try tamper(c, "DELETE FROM entries WHERE seq = 7")
            try expectProblem(c, .missingEntry, at: 7)
        }
    }

    @Test func deletingTheFirstEntry() throws {
        try withLog { c in
            try tamper(c, "DELETE FROM entries WHERE seq = 1")
            try expectProblem(c, .missingEntry, at: 1)
        }
    }

    @Test func reorderingTwoEntries() throws {
        try withLog { c in
            // Swap everything but the sequence numbers of 10 and 11.
            let cols = "time_us, actor_id, actor_role, action, workspace, outcome, key_id, fields, prev_hash, entry_hash"
            try tamper(c, """
                CREATE TEMP TABLE swap AS SELECT * FROM entries WHERE seq IN (10, 11);
                UPDATE entries SET (\(cols)) = (SELECT \(cols) FROM swap WHERE swap.seq = 21 - entries.seq) WHERE seq IN (10, 11);
                """)
            try expectProblem(c, .entryModified, at: 10)
        }
    }

    @Test func insertingOneEntry() throws {
        try withLog { c in
            // Make room after 20 by renumbering, then insert a copy of entry 5 as entry 21.
            try tamper(c, """
                UPDATE entries SET seq = seq + 1000 WHERE seq > 20;
                UPDATE entries SET seq = seq - 999 WHERE seq > 1000;
                INSERT INTO entries SELECT 21, time_us, actor_id, actor_role, action, workspace, outcome, key_id, fields, prev_hash, entry_hash FROM entries WHERE seq = 5;
                """)
            try expectProblem(c, .entryModified, at: 21)
        }
    }

    @Test func insertingAForgedEntryWithAConsistentHash() throws {
        try withLog { c in
            // Renumber 21...30 to 22...31 and insert a perfectly chained forgery at 21.
            try tamper(c, "UPDATE entries SET seq = seq + 1000 WHERE seq > 20; UPDATE entries SET seq = seq - 999 WHERE seq > 1000;")
            let store = try AuditStore(path: c.databasePath, readOnly: false, durability: .normal)
            var forged = try #require(try store.entry(seq: 20))
            forged.seq = 21
            forged.actor.id = "ghost"
            forged.prevHash = try #require(try store.entry(seq: 20)).entryHash
            forged.entryHash = SHA256Context().chain(forged.prevHash, AuditEncoding.encode(forged).withUnsafeBytes { UnsafeRawBufferPointer($0) })
            try store.db.transaction { () throws(SQLiteError) in try store.insert(forged) }
            // The forgery passes; the renumbered entry after it does not.
            try expectProblem(c, .entryModified, at: 22)
        }
    }

    @Test func truncatingTheTail() throws {
        try withLog { c in
            try tamper(c, "DELETE FROM entries WHERE seq > 25")
            // Tree head 30 (signed at close) still exists: entries 26...30 are missing.
            try expectProblem(c, .truncated, at: 26)
        }
    }

    @Test func truncatingTheTailAndItsTreeHeadsIsCaughtByTheWitness() throws {
        try withLog { c in
            try tamper(c, "DELETE FROM entries WHERE seq > 20; DELETE FROM tree_heads WHERE tree_size > 20")
            // Without the witness the database alone looks like a shorter log...
            #expect(try verifyLog(c, witness: false).isValid)
            // ...with it, the truncation shows.
            try expectProblem(c, .truncated, at: 21, witness: true)
        }
    }

    @Test func forgingATreeHeadSignature() throws {
        try withLog { c in
            try tamper(c, "UPDATE tree_heads SET signature = zeroblob(64) WHERE tree_size = 16")
            try expectProblem(c, .badSignature, at: 16)
        }
    }

    @Test func treeHeadSignedByAnUntrustedKey() throws {
        try withLog { c in
            let rogue = AuditSigningKey.generate()
            let store = try AuditStore(path: c.databasePath, readOnly: false, durability: .normal)
            let (head, frontier) = try #require(try store.treeHead(size: 24))
            let fake = AuditTreeHead.sign(treeSize: 24, timeMicros: head.timeMicros, root: head.root, chainHead: head.chainHead, key: rogue)
            try store.db.execute("DELETE FROM tree_heads WHERE tree_size = 24")
            try store.insert(fake, frontier: frontier)
            try expectProblem(c, .unknownKey, at: 24)
        }
    }

    @Test func openingATamperedTailRefusesToStart() throws {
        try withLog { c in
            try tamper(c, "DELETE FROM entries WHERE seq > 25")
            do {
                _ = try AuditLog(c)
                Issue.record("opened a truncated log")
            } catch let error as AuditError {
                #expect(error.code == .tampered)
            }
        }
    }
}
