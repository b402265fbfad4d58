import Testing
import TandemCrypto
@testable import TandemAudit
#if canImport(Glibc)
import Glibc
#endif

@Suite struct AuditLogTests {
    @Test func appendsAreChainedCheckpointedAndVerify() throws {
        try withTempDirectory { dir in
            let c = testConfiguration(dir, checkpointEvery: 8)
            let log = try AuditLog(c)
            var seqs: [UInt64] = []
            for i in 1...20 { seqs.append(try log.append(sampleEvent(i, key: log.contentKey))) }
            #expect(seqs == Array(1...20))
            let last = try log.appendAndWait(sampleEvent(21, key: log.contentKey))
            #expect(last == 21)
            #expect(log.statistics.committedThrough == 21)
            let head = try log.checkpoint()
            #expect(head?.treeSize == 21)
            // In-server read on the writer thread.
            let n = try log.read { r throws(AuditError) in try r.entries(workspace: "w1").count }
            #expect(n == 21)
            try log.close()
            #expect(throws: AuditError.self) { try log.append(sampleEvent(0, key: log.contentKey)) }

            let report = try verifyLog(c, witness: true)
            #expect(report.isValid, "\(String(describing: report.problem))")
            #expect(report.entriesChecked == 21)
            #expect(report.lastSeq == 21 && report.latestTreeSize == 21 && report.uncovered == 0)
            #expect(report.treeHeadsChecked >= 1)  // at the ends of batches that pass 8 new entries (all 21 may be one batch)
            #expect(report.witnessChecked)

            // Entries read back as written; content only as digests.
            let reader = try AuditReader(c)
            let e = try #require(try reader.entry(seq: 5))
            #expect(e.action == "kernel.execute" && e.actor.id == "user2" && e.outcome == "failure")
            let fields = try #require(e.fields)
            #expect(fields.first { $0.name == "code" }?.value == .digest(log.contentKey.digest(Array("print(5)".utf8))))
            #expect(fields.first { $0.name == "duration_us" }?.value == .integer(85))
            // Times never decrease.
            let all = try reader.entries()
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.timeMicros <= $1.timeMicros })
        }
    }

    @Test func reopeningContinuesTheChain() throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 10, checkpointEvery: 4)
            do {
                let log = try AuditLog(c)
                #expect(try log.append(sampleEvent(11, key: log.contentKey)) == 11)
                try log.close()
            }
            // A second writer on the same log is refused while the first is open.
            let log = try AuditLog(c)
            do {
                _ = try AuditLog(c)
                Issue.record("two writers")
            } catch let error as AuditError {
                #expect(error.code == .locked)
            }
            try log.appendAndWait(sampleEvent(12, key: log.contentKey))
            try log.close()
            let report = try verifyLog(c, witness: true)
            #expect(report.isValid, "\(String(describing: report.problem))")
            #expect(report.lastSeq == 12)
        }
    }

    @Test func manyThreadsAppendConcurrently() throws {
        try withTempDirectory { dir in
            var c = testConfiguration(dir, checkpointEvery: 100)
            c.queueCapacity = 64  // small: appenders block and are released again
            c.maxBatch = 16
            let log = try AuditLog(c)
            let threads = 4, perThread = 250
            let seen = ConditionLock<[UInt64]>([])
            try runThreads(threads) { t in
                var mine: [UInt64] = []
                for i in 0..<perThread {
                    let seq = try! (i % 50 == 0 ? log.appendAndWait(sampleEvent(i, key: log.contentKey, workspace: "w\(t)")) : log.append(sampleEvent(i, key: log.contentKey, workspace: "w\(t)")))
                    mine.append(seq)
                }
                seen.withLock { $0 += mine }
            }
            // A checkpoint covers everything appended before it, however many batches are queued.
            let head = try log.checkpoint()
            #expect(head?.treeSize == UInt64(threads * perThread))
            try log.flush()
            let all = seen.withLock { $0.sorted() }
            #expect(all == Array(1...UInt64(threads * perThread)))
            #expect(log.statistics.committedThrough == UInt64(threads * perThread))
            try log.close()
            let report = try verifyLog(c, witness: true)
            #expect(report.isValid, "\(String(describing: report.problem))")
            #expect(report.entriesChecked == UInt64(threads * perThread))
            let w2 = try AuditReader(c).entries(workspace: "w2")
            #expect(w2.count == perThread)
        }
    }

    @Test func fullQueueBlocksAppendAndRefusesTryAppend() throws {
        try withTempDirectory { dir in
            var c = testConfiguration(dir)
            c.queueCapacity = 4
            c.maxBatch = 2
            let log = try AuditLog(c)
            // Hold the writer thread in a read job so the queue cannot drain.
            let release = ConditionLock(false)
            let holding = ConditionLock(false)
            let reader = try spawn {
                _ = try? log.read { _ throws(AuditError) in
                    holding.withLock { $0 = true }
                    while !release.withLock({ $0 }) { usleep(1000) }
                    return 0
                }
            }
            while !holding.withLock({ $0 }) { usleep(1000) }
            for i in 0..<4 { #expect(try log.tryAppend(sampleEvent(i, key: log.contentKey)) != nil) }
            #expect(try log.tryAppend(sampleEvent(9, key: log.contentKey)) == nil)
            #expect(log.statistics.refusedAppends == 1)
            // A blocking append waits until the writer is released.
            let blockedDone = ConditionLock(false)
            let blocked = try spawn {
                _ = try! log.append(sampleEvent(5, key: log.contentKey))
                blockedDone.withLock { $0 = true }
            }
            var waited = 0
            while log.statistics.blockedAppends < 1 && waited < 500 {
                usleep(10_000)
                waited += 1
            }
            #expect(log.statistics.blockedAppends == 1)
            #expect(blockedDone.withLock { $0 } == false)
            release.withLock { $0 = true }
            pthread_join(blocked, nil)
            pthread_join(reader, nil)
            #expect(blockedDone.withLock { $0 })
            try log.flush()
            #expect(log.statistics.committedThrough == 5)
            try log.close()
            #expect(try verifyLog(c).isValid)
        }
    }

    @Test func timedCheckpointsAndForcedCheckpoints() throws {
        try withTempDirectory { dir in
            var c = testConfiguration(dir, checkpointEvery: 1_000_000)
            c.checkpointInterval = 0.05
            let log = try AuditLog(c)
            try log.appendAndWait(sampleEvent(1, key: log.contentKey))
            var waited = 0
            while log.statistics.latestTreeSize < 1 && waited < 200 {
                usleep(10_000)
                waited += 1
            }
            #expect(log.statistics.latestTreeSize == 1)
            try log.close()
            #expect(try verifyLog(c).treeHeadsChecked >= 1)
        }
    }

    @Test func proofsFromTheDatabaseVerifyAndRoundTripThroughJSON() throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 37, checkpointEvery: 10)
            let reader = try AuditReader(c)
            let heads = try reader.treeHeads()
            #expect(heads.last?.treeSize == 37)
            let trusted = Array(reader.trustedKeys.values)
            for seq in [1, 2, 10, 11, 36, 37] as [UInt64] {
                let p = try reader.inclusionProof(seq: seq)
                let checked = try AuditProofs.check(Array(AuditProofs.encode(p).utf8), trustedKeys: trusted)
                #expect(checked.kind == "inclusion" && checked.signaturesTrusted)
                // Also valid against an older head that covers it.
                if seq <= heads[0].treeSize {
                    let old = try reader.inclusionProof(seq: seq, treeSize: heads[0].treeSize)
                    #expect(try AuditProofs.check(old, trustedKeys: trusted).kind == "inclusion")
                }
            }
            for (a, b) in zip(heads, heads.dropFirst()) {
                let p = try reader.consistencyProof(oldSize: a.treeSize, newSize: b.treeSize)
                #expect(try AuditProofs.check(Array(AuditProofs.encode(p).utf8), trustedKeys: trusted).kind == "consistency")
            }
            let p = try reader.consistencyProof(oldSize: heads[0].treeSize, newSize: 37)
            #expect(try AuditProofs.check(p, trustedKeys: []).signaturesTrusted == false)
            // Tampered proofs fail.
            var bad = try reader.inclusionProof(seq: 3)
            bad.path[0] = AuditHash.zero.hex
            #expect(throws: AuditError.self) { try AuditProofs.check(bad, trustedKeys: trusted) }
            var bad2 = try reader.inclusionProof(seq: 3)
            bad2.entryEncoding = String(bad2.entryEncoding.dropLast(2)) + "00"
            #expect(throws: AuditError.self) { try AuditProofs.check(bad2, trustedKeys: trusted) }
            var bad3 = p
            bad3.newHead.root = AuditHash.zero.hex
            #expect(throws: AuditError.self) { try AuditProofs.check(bad3, trustedKeys: []) }
            // A proof signed by a key that is not trusted is refused when trusted keys are given.
            #expect(throws: AuditError.self) { try AuditProofs.check(p, trustedKeys: [AuditSigningKey.generate().publicKey]) }
        }
    }

    @Test func keyRotationKeepsOldEntriesVerifiableAndMatchable() throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 5, checkpointEvery: 4)
            let oldKeys = try AuditKeyring.load(c.keys, create: false)
            let newContent = try AuditKeyring.rotateContentKey(c.keys)
            let newSigning = try AuditKeyring.rotateSigningKey(c.keys)
            let log = try AuditLog(c)
            #expect(log.contentKey == newContent)
            for i in 6...8 { try log.append(sampleEvent(i, key: log.contentKey)) }
            try log.close()

            let report = try verifyLog(c, witness: true)
            #expect(report.isValid, "\(String(describing: report.problem))")
            let r = try AuditReader(c)
            #expect(Set(try r.treeHeads().map(\.keyID)) == [oldKeys.signingKey!.id, newSigning.id])
            #expect(try r.entry(seq: 3)?.contentKeyID == oldKeys.contentKey.id)
            #expect(try r.entry(seq: 7)?.contentKeyID == newContent.id)
            // Old and new content is found, each under the key it was digested with.
            #expect(try r.match(content: Array("print(3)".utf8)).map(\.entry.seq) == [3])
            #expect(try r.match(content: Array("print(7)".utf8)).map(\.entry.seq) == [7])
            // Without the old public key, the old tree heads no longer verify.
            let untrusting = try AuditReader(databasePath: c.databasePath, trustedKeys: [newSigning.publicKey])
            #expect(try untrusting.verify().problem?.kind == .unknownKey)
        }
    }

    @Test func matchFindsExactContentOnly() throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 12)
            let reader = try AuditReader(c)
            let hits = try reader.match(content: Array("print(7)".utf8))
            #expect(hits.map(\.entry.seq) == [7])
            #expect(hits.first?.field == "code")
            #expect(try reader.match(content: Array("print(7) ".utf8)).isEmpty)
        }
    }

    @Test func queriesFilterByWorkspaceAndTime() throws {
        try withTempDirectory { dir in
            var c = testConfiguration(dir)
            let clock = ConditionLock<Int64>(1_000_000)
            c.clock = {
                clock.withLock { t in
                    t += 1_000_000
                    return t
                }
            }
            let log = try AuditLog(c)
            for i in 1...10 { try log.append(sampleEvent(i, key: log.contentKey, workspace: i % 2 == 0 ? "even" : "odd")) }
            try log.close()
            let r = try AuditReader(c)
            #expect(try r.entries(workspace: "even").map(\.seq) == [2, 4, 6, 8, 10])
            let since = try #require(try r.entry(seq: 6)).timeMicros
            #expect(try r.entries(workspace: "odd", sinceMicros: since).map(\.seq) == [7, 9])
            #expect(try r.entries(afterSeq: 8).map(\.seq) == [9, 10])
            var lines: [String] = []
            try r.exportJSONLines(workspace: "even") { lines.append($0) }
            #expect(lines.count == 5 && lines.allSatisfy { $0.hasSuffix("}\n") && $0.contains("\"workspace\":\"even\"") })
        }
    }

    @Test func pruningKeepsTheLogVerifiableAndProvable() throws {
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 40, checkpointEvery: 8)
            let log = try AuditLog(c)
            let heads = try log.read { r throws(AuditError) in try r.treeHeads().map(\.treeSize) }
            let target = heads[2]
            let mark = try log.prune(through: target)
            #expect(mark.prunedThrough == target)
            #expect(throws: AuditError.self) { try log.prune(through: target) }
            #expect(throws: AuditError.self) { try log.prune(through: 3) }  // not a tree head
            try log.appendAndWait(sampleEvent(41, key: log.contentKey))
            try log.close()

            let r = try AuditReader(c)
            #expect(try r.entry(seq: target) == nil)
            let report = try r.verify()
            #expect(report.isValid, "\(String(describing: report.problem))")
            #expect(report.prunedThrough == target)
            #expect(report.entriesChecked == 41 - target)
            // Proofs for entries after the prune point still work, through the kept frontier.
            let trusted = Array(r.trustedKeys.values)
            for seq in [target + 1, 40, 41] {
                #expect(try AuditProofs.check(r.inclusionProof(seq: seq), trustedKeys: trusted).kind == "inclusion")
            }
            #expect(throws: AuditError.self) { try r.inclusionProof(seq: 1) }
            #expect(try AuditProofs.check(r.consistencyProof(oldSize: heads[3], newSize: 41), trustedKeys: trusted).kind == "consistency")
            // Reopening after pruning resumes.
            let again = try AuditLog(c)
            try again.appendAndWait(sampleEvent(42, key: again.contentKey))
            try again.close()
            #expect(try verifyLog(c, witness: true).isValid)
            // Deleting more rows and faking the prune mark without the key is detected.
            try tamper(c, "DELETE FROM entries WHERE seq <= \(heads[3]); UPDATE prune_marks SET pruned_through = \(heads[3])")
            #expect(try verifyLog(c).problem?.kind == .badPruneMark)
        }
    }
}

/// Starts a thread running `body`.
func spawn(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ b: @escaping @Sendable () -> Void) { body = b }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var t = pthread_t()
    let r = pthread_create(&t, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(r == 0)
    return t
}

/// Runs `body(i)` on `n` threads and waits for all.
func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) throws {
    let ts = try (0..<n).map { i in try spawn { body(i) } }
    for t in ts { pthread_join(t, nil) }
}
