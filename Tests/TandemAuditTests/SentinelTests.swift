// Content never reaches the disk: a realistic session with sentinel strings in code, outputs,
// file contents, diffs and prompts, then a byte scan of the database, its WAL and shm files,
// the witness, and everything printed about the entries.
import Testing
import TandemCrypto
@testable import TandemAudit

@Suite struct SentinelTests {
    @Test func noContentSentinelAppearsInAnyFile() throws {
        try withTempDirectory { dir in
            let tag = Hex.encode(SecureRandom.bytes(6))
            let sentinels = (0..<8).map { "SENTINEL-\($0)-\(tag)" }
            let c = testConfiguration(dir, checkpointEvery: 4)
            let log = try AuditLog(c)
            let k = log.contentKey
            let editor = AuditActor(id: "alice", role: "editor")

            var run = AuditEvent(.kernelExecute, actor: editor, workspace: "w1")
            run.addDigest("code", of: Array("secret = '\(sentinels[0])'\nprint(secret)".utf8), key: k)
            run.addDigest("output", of: Array("\(sentinels[0])\n".utf8), key: k)
            run.add("duration_us", 1234)
            run.add("exit_status", 0)
            try log.append(run)

            var write = AuditEvent(.fileWrite, actor: editor, workspace: "w1")
            let fileContent = Array("config: \(sentinels[1])".utf8)
            write.addDigest("content", of: fileContent, key: k)
            write.add("bytes", fileContent.count)
            // A path treated as content (audit.hashIdentifiers).
            write.addIdentifier("path", "/home/\(sentinels[2])/notes.md", hashed: true, key: k)
            try log.append(write)

            for action in [AuditAction.patchProposed, .patchValidated, .patchApproved, .patchApplied] {
                var patch = AuditEvent(action, actor: editor, workspace: "w1")
                patch.addDigest("diff", of: Array("-old\n+\(sentinels[3])\n".utf8), key: k)
                patch.addDigest("before", of: Array("old \(sentinels[4])".utf8), key: k)
                patch.addDigest("after", of: Array("new \(sentinels[3])".utf8), key: k)
                try log.append(patch)
            }

            var llm = AuditEvent(.llmRequest, actor: editor, workspace: "w1")
            llm.add("model", text: "small-model")
            llm.add("tokens_in", 42)
            llm.add("tokens_out", 7)
            llm.addDigest("prompt", of: Array("Explain \(sentinels[5])".utf8), key: k)
            llm.addDigest("response", of: Array("It means \(sentinels[6])".utf8), key: k)
            try log.appendAndWait(llm)

            var save = AuditEvent(.documentSave, actor: editor, workspace: "w1")
            save.addDigest("content", of: Array(String(repeating: sentinels[7], count: 100).utf8), key: k)
            try log.appendAndWait(save)

            // While the log is open: the WAL and shm files exist and hold the recent pages.
            let files = [c.databasePath, c.databasePath + "-wal", c.databasePath + "-shm"]
            #expect(fileExists(c.databasePath + "-wal"))
            try expectNoSentinel(sentinels, in: files)

            // Everything the read side prints about the entries.
            let printed = try log.read { r throws(AuditError) in
                var text = ""
                try r.exportJSONLines { text += $0 }
                for seq in 1...5 as ClosedRange<UInt64> {
                    text += AuditProofs.encode(try r.inclusionProof(seq: seq, treeSize: nil))
                }
                text += "\(try r.verify())"
                return text
            }
            for s in sentinels { #expect(!printed.contains(s), "\(s) in printed output") }

            try log.close()
            try expectNoSentinel(sentinels, in: files + [c.witnessPath!, c.keys.contentKeyPath, c.keys.signingKeyPath])

            // But an operator holding the key can tell that the code ran.
            let hits = try AuditReader(c).match(content: Array("secret = '\(sentinels[0])'\nprint(secret)".utf8))
            #expect(hits.map(\.field) == ["code"])
        }
    }

    func expectNoSentinel(_ sentinels: [String], in files: [String]) throws {
        for path in files {
            guard let bytes = try readFile(path) else { continue }
            for s in sentinels {
                let needle = Array(s.utf8)
                // Also the tag alone, and UTF-16 (in case anything wrote wide strings).
                let tag = Array(s.split(separator: "-").last!.utf8)
                let wide: [UInt8] = needle.flatMap { [$0, UInt8(0)] }
                #expect(!contains(bytes, needle) && !contains(bytes, tag) && !contains(bytes, wide), "\(s) found in \(path)")
            }
        }
    }

    func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count, let first = needle.first else { return false }
        var i = 0
        while i <= hay.count - needle.count {
            if hay[i] == first && Array(hay[i..<i + needle.count]) == needle { return true }
            i += 1
        }
        return false
    }
}
