// The audit trail of a realistic session: every action is recorded with who, when and where,
// content only as keyed digests; no code, output or file content reaches the audit database,
// its WAL and shm files, or the server's log.
import Testing
import TandemAudit
import TandemClient
import TandemCrypto
@testable import TandemWorkspace
import Foundation

@Suite(.serialized) struct AuditTrailTests {
    @Test func aRealisticSessionLeavesOnlyDigestsAndMetadata() async throws {
        let f = try await WorkspaceFixture.make(audit: true)
        let sentinels = ["SENTINEL-CODE-7f3a9", "SENTINEL-OUTPUT-91bc4", "SENTINEL-FILE-c0de5", "SENTINEL-ONESHOT-d00d6", "SENTINEL-STDERR-e77e8"]
        let ws = JSONValue.s(f.shared)
        // A browser signs in; scripts use bearer tokens.
        let login = await http(f.port, "POST", "/api/v1/login", headers: [("Content-Type", "application/json")], body: Array("{\"token\":\"\(f.tokens["alice"]!)\"}".utf8))
        #expect(login.status == 200)
        _ = await http(f.port, "POST", "/api/v1/login", headers: [("Content-Type", "application/json")], body: Array(#"{"token":"tdm_wrong"}"#.utf8))
        let a = try await f.client("alice"), v = try await f.client("vera")
        _ = try await a.request("workspace.join", ["workspace": ws])
        // Code with a sentinel in it; output and stderr with sentinels made at run time.
        let code = "secret = '\(sentinels[0])'\nimport sys\nprint('SENTINEL-' + 'OUTPUT-91bc4')\nprint('SENTINEL-' + 'STDERR-e77e8', file=sys.stderr)\nlen(secret)"
        let r = try await a.request("kernel.execute", ["workspace": ws, "code": .s(code)])
        let done = await a.waitForEvent { $0["type"]?.string == "kernel.finished" && $0["executionId"] == r["executionId"] }
        #expect(done?["status"]?.string == "ok")
        _ = try await a.request("file.write", ["workspace": ws, "path": .s("notes.txt"), "content": .s("the \(sentinels[2]) inside")])
        _ = try await a.request("file.rename", ["workspace": ws, "from": .s("notes.txt"), "to": .s("notes2.txt")])
        _ = try await a.request("file.delete", ["workspace": ws, "path": .s("notes2.txt")])
        _ = try await a.request("member.set", ["workspace": ws, "user": .s("mallory"), "role": .s("viewer")])
        do { _ = try await v.request("kernel.execute", ["workspace": ws, "code": .s("1")]) } catch {}
        _ = try await a.request("kernel.interrupt", ["workspace": ws])
        let oneShot = await http(f.port, "POST", "/api/v1/execute", headers: [("Authorization", "Bearer \(f.tokens["bob"]!)"), ("Content-Type", "application/json")],
                           body: Array("{\"code\":\"print('\(sentinels[3])')\"}".utf8))
        #expect(oneShot.status == 200)
        a.close(); v.close()
        try await Task.sleep(nanoseconds: 300_000_000)
        let log = try #require(f.audit)
        try log.flush()

        // The owner reads the workspace's trail over the protocol.
        let owner = try await f.client("alice")
        let list = try await owner.request("audit.list", ["workspace": ws])
        let actions = list["entries"]?.array?.compactMap { $0["action"]?.string } ?? []
        for expected in ["kernel.execute", "file.write", "file.rename", "file.delete", "member.add", "request.denied", "kernel.interrupt"] {
            #expect(actions.contains(expected), "no \(expected) in \(actions)")
        }
        // Viewers may not read it.
        let viewer = try await f.client("vera")
        do { _ = try await viewer.request("audit.list", ["workspace": ws]); Issue.record("viewer read the audit log") } catch { #expect(error.code == "forbidden") }
        owner.close(); viewer.close()

        // The digests are of the real content: an operator with the key can match them.
        let matches = try log.read { r throws(AuditError) in try r.match(content: Array(code.utf8)).map { $0.entry.action } }
        #expect(matches == ["kernel.execute"])
        let everything = try log.read { r throws(AuditError) in try r.entries().map(\.action) }
        for expected in ["auth.login.succeeded", "auth.login.failed", "ws.open", "ws.close", "run.oneshot"] {
            #expect(everything.contains(expected), "no \(expected) in the log")
        }
        // Verify the chain.
        let report = try log.read { r throws(AuditError) in try r.verify() }
        #expect(report.isValid, "\(report)")

        // No sentinel anywhere: the database, its WAL and shm files, the server's log.
        let dir = f.root + "/data/audit"
        var scanned = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix("audit.sqlite") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            scanned += 1
            for s in sentinels { #expect(bytes.range(of: Data(s.utf8)) == nil, "\(s) found in \(name)") }
        }
        #expect(scanned >= 2)
        let logText = f.logs.all.joined(separator: "\n")
        #expect(!logText.isEmpty)
        for s in sentinels { #expect(!logText.contains(s), "\(s) found in the server log") }
        await f.close()
    }
}
