// tandem.v1 end to end over real WebSockets on 127.0.0.1 with real kernels in containers.
import Testing
import TandemClient
import TandemCrypto
import TandemLoop
import TandemProtocol
import TandemStore
@testable import TandemWorkspace
import Foundation

extension JSONValue {
    var type: String? { self["type"]?.string }
    var seq: Int? { self["seq"]?.int }
}

func isEvent(_ type: String, _ workspace: String) -> (JSONValue) -> Bool {
    { $0.type == type && $0["workspace"]?.string == workspace }
}

@Suite(.serialized) struct WorkspaceServerTests {
    @Test func helloAnnouncesTheProtocolAndLimits() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice")
        let hello = try #require(a.hello)
        #expect(hello["protocol"]?.string == "tandem.v1")
        #expect(hello["user"]?["name"]?.string == "alice")
        #expect(hello["limits"]?["maxFileBytes"]?.int == 16 << 20)
        #expect(hello["kernels"]?.array?.contains(.string("python3")) == true)
        let list = try await a.request("workspace.list")
        #expect(list["workspaces"]?.array?.count == 2)
        a.close()
        await f.close()
    }

    @Test func twoClientsShareOneKernelAndSeeTheSameOrderedOutput() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice"), b = try await f.client("bob")
        for c in [a, b] { _ = try await c.request("workspace.join", ["workspace": .s(f.shared)]) }
        let r = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("import sys\nfor i in range(5):\n    print(i)\nprint('err', file=sys.stderr)\n40 + 2")])
        let id = try #require(r["executionId"]?.int)
        for c in [a, b] {
            let done = await c.waitForEvent { $0.type == "kernel.finished" && $0["executionId"]?.int == id }
            #expect(done?["status"]?.string == "ok")
            #expect(done?["result"]?.string == "42")
        }
        func stream(_ c: TandemClient) -> [JSONValue] {
            c.events.filter { ["kernel.output", "kernel.started", "kernel.finished"].contains($0.type ?? "") && $0["workspace"]?.string == f.shared }
        }
        let sa = stream(a), sb = stream(b)
        #expect(sa.map(\.seq) == sb.map(\.seq))
        let out = sa.filter { $0.type == "kernel.output" && $0["stream"]?.string == "stdout" }.compactMap { $0["text"]?.string }.joined()
        #expect(out == "0\n1\n2\n3\n4\n")
        #expect(sa.first { $0.type == "kernel.started" }?["by"]?.string == "alice")
        // Sequence numbers increase by one on the kernel stream.
        let seqs = a.events.filter { $0["workspace"]?.string == f.shared }.compactMap(\.seq)
        #expect(seqs == Array((seqs.first ?? 0)...(seqs.last ?? 0)))
        // Interrupt is broadcast with who did it.
        let loop = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("while True: pass")])
        _ = await b.waitForEvent { $0.type == "kernel.started" && $0["executionId"]?.int == loop["executionId"]?.int }
        _ = try await b.request("kernel.interrupt", ["workspace": .s(f.shared)])
        let action = await a.waitForEvent { $0.type == "kernel.action" && $0["action"]?.string == "interrupt" }
        #expect(action?["by"]?.string == "bob")
        let stopped = await a.waitForEvent { $0.type == "kernel.finished" && $0["executionId"]?.int == loop["executionId"]?.int }
        #expect(stopped?["status"]?.string == "interrupted")
        a.close(); b.close()
        await f.close()
    }

    @Test func aReconnectingClientGetsExactlyWhatItMissed() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice")
        var b = try await f.client("bob")
        for c in [a, b] { _ = try await c.request("workspace.join", ["workspace": .s(f.shared)]) }
        let r = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("import time\nfor i in range(12):\n    print('line', i, flush=True)\n    time.sleep(0.05)")])
        let id = try #require(r["executionId"]?.int)
        // b sees the first line, then disconnects mid-run.
        let first = try #require(await b.waitForEvent { $0.type == "kernel.output" && $0["executionId"]?.int == id })
        let seen: [Int] = b.events.filter { $0["workspace"]?.string == f.shared }.compactMap { $0.seq }
        let lastSeq = try #require(seen.max())
        b.close()
        _ = first
        let done = await a.waitForEvent { $0.type == "kernel.finished" && $0["executionId"]?.int == id }
        #expect(done != nil)
        // The run survived b's disconnect; b comes back with its last sequence number.
        b = try await f.client("bob")
        let joined = try await b.request("workspace.join", ["workspace": .s(f.shared), "lastSeq": .number(Double(lastSeq))])
        _ = joined
        let finished = await b.waitForEvent { $0.type == "kernel.finished" && $0["executionId"]?.int == id }
        let headSeq = try #require(finished?.seq)
        let missed = a.events.filter { $0["workspace"]?.string == f.shared && ($0.seq ?? 0) > lastSeq && ($0.seq ?? 0) <= headSeq && $0.type != "kernel.stats" }
        let replayed = b.events.filter { $0["workspace"]?.string == f.shared && $0.seq != nil && ($0.seq ?? 0) <= headSeq && $0.type != "kernel.stats" }
        #expect(replayed.map(\.seq) == missed.map(\.seq))
        #expect(replayed == missed)
        #expect(!b.events.contains { $0.type == "kernel.gap" })
        a.close(); b.close()
        await f.close()
    }

    @Test func aResumeOlderThanTheBufferGetsAGapWithTheBytesLost() async throws {
        let f = try await WorkspaceFixture.make { $0.kernels.replayBytes = 4096 }
        let a = try await f.client("alice")
        _ = try await a.request("workspace.join", ["workspace": .s(f.shared)])
        let r = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("import time\nfor i in range(40):\n    print('x' * 199, flush=True)\n    time.sleep(0.003)")])
        _ = await a.waitForEvent { $0.type == "kernel.finished" && $0["executionId"] == r["executionId"] }
        let b = try await f.client("bob")
        _ = try await b.request("workspace.join", ["workspace": .s(f.shared), "lastSeq": .number(1)])
        let gap = try #require(await b.waitForEvent { $0.type == "kernel.gap" })
        #expect(gap["fromSeq"]?.int == 2)
        #expect((gap["bytes"]?.int ?? 0) > 4000)
        a.close(); b.close()
        await f.close()
    }

    @Test func rolesAreEnforcedOnEveryMessage() async throws {
        let f = try await WorkspaceFixture.make()
        let ws = JSONValue.s(f.shared)
        // One representative message per action; the expected outcome comes from Permissions.
        let probes: [(Action, String, [String: JSONValue])] = [
            (.read, "file.tree", ["workspace": ws]),
            (.read, "workspace.members", ["workspace": ws]),
            (.writeFiles, "file.write", ["workspace": ws, "path": .s("probe.txt"), "content": .s("x")]),
            (.runKernel, "kernel.execute", ["workspace": ws, "code": .s("1")]),
            (.runKernel, "kernel.interrupt", ["workspace": ws]),
            (.manageWorkspace, "workspace.rename", ["workspace": ws, "name": .s("Shared")]),
            (.manageMembers, "member.set", ["workspace": ws, "user": .s("mallory"), "role": .s("viewer")]),
        ]
        for (user, role) in [("alice", WorkspaceRole.owner), ("bob", .editor), ("vera", .viewer), ("ada", .agent)] {
            let c = try await f.client(user)
            for (action, type, fields) in probes {
                let allowed = Permissions.allows(role, action)
                do {
                    _ = try await c.request(type, fields)
                    #expect(allowed, "\(user) (\(role)) was allowed \(type)")
                } catch {
                    #expect(!allowed && error.code == "forbidden", "\(user) (\(role)) \(type): \(error)")
                }
            }
            // Deleting: only an owner (checked last, and only for the others, so the workspace stays).
            if role != .owner {
                do {
                    _ = try await c.request("workspace.delete", ["workspace": ws])
                    Issue.record("\(user) (\(role)) deleted the workspace")
                } catch {
                    #expect(error.code == "forbidden")
                }
            }
            c.close()
        }
        // Clean up the membership change the owner made.
        let a = try await f.client("alice")
        _ = try await a.request("member.remove", ["workspace": ws, "user": .s("mallory")])
        a.close()
        await f.close()
    }

    @Test func viewersCannotRunAndNonMembersSeeNothing() async throws {
        let f = try await WorkspaceFixture.make()
        let v = try await f.client("vera")
        await #expect(throws: ClientError.self) { _ = try await v.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("1")]) }
        do { _ = try await v.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("1")]) } catch { #expect(error.code == "forbidden") }
        // Not a member of alice's private workspace: it does not exist for vera.
        do { _ = try await v.request("file.tree", ["workspace": .s(f.privateWS)]) } catch { #expect(error.code == "not_found") }
        do { _ = try await v.request("file.tree", ["workspace": .s("nonexistent12")]) } catch { #expect(error.code == "not_found") }
        v.close()
        await f.close()
    }

    @Test func aTokenForOneWorkspaceCannotTouchAnother() async throws {
        let f = try await WorkspaceFixture.make()
        let scoped = try await f.client("alice-a")
        _ = try await scoped.request("file.tree", ["workspace": .s(f.shared)])
        do {
            _ = try await scoped.request("file.tree", ["workspace": .s(f.privateWS)])
            Issue.record("a scoped token reached another workspace")
        } catch {
            #expect(error.code == "forbidden")
        }
        let list = try await scoped.request("workspace.list")
        #expect(list["workspaces"]?.array?.compactMap { $0["id"]?.string } == [f.shared])
        do { _ = try await scoped.request("workspace.create", ["name": .s("x")]) } catch { #expect(error.code == "forbidden") }
        scoped.close()
        await f.close()
    }

    @Test func upgradesNeedCredentialsAndTheServersOrigin() async throws {
        let f = try await WorkspaceFixture.make()
        await #expect(throws: ClientError.self) { _ = try await f.client("alice", origin: "http://evil.example") }
        await #expect(throws: ClientError.self) {
            _ = try await TandemClient.connect(url: f.url, headers: [("Origin", "http://127.0.0.1:\(f.port)")], loop: f.clients.loops[0])
        }
        await #expect(throws: ClientError.self) {
            _ = try await TandemClient.connect(url: f.url, headers: [("Authorization", "Bearer tdm_wrong"), ("Origin", "http://127.0.0.1:\(f.port)")], loop: f.clients.loops[0])
        }
        // A browser: token → session cookie (HttpOnly, SameSite=Strict) → upgrade with the cookie.
        let login = await http(f.port, "POST", "/api/v1/login", headers: [("Content-Type", "application/json")], body: Array("{\"token\":\"\(f.tokens["bob"]!)\"}".utf8))
        #expect(login.status == 200)
        let setCookie = try #require(login.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
        let cookie = String(setCookie.split(separator: ":", maxSplits: 1)[1].split(separator: ";")[0]).trimmingCharacters(in: .whitespaces)
        let browser = try await f.client("bob", headers: [("Cookie", cookie), ("Origin", "http://127.0.0.1:\(f.port)")])
        #expect(browser.hello?["user"]?["name"]?.string == "bob")
        browser.close()
        // Failed sign-ins are rate-limited per address.
        var statuses: [Int] = []
        for _ in 0..<12 {
            statuses.append(await http(f.port, "POST", "/api/v1/login", headers: [("Content-Type", "application/json")], body: Array("{\"token\":\"tdm_nope\"}".utf8)).status)
        }
        #expect(statuses.contains(429))
        await f.close()
    }

    @Test func badMessagesGetErrorsAndTheConnectionStays() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice")
        do { _ = try await a.send(text: #"{"type":"kernel.explode","id":1}"#, id: 1) } catch { #expect(error.code == "unknown_type") }
        do { _ = try await a.send(text: #"{"type":"ping","id":2,"extra":true}"#, id: 2) } catch { #expect(error.code == "unknown_field") }
        do { _ = try await a.send(text: #"{"type":"file.read","id":3,"workspace":"x"}"#, id: 3) } catch { #expect(error.code == "missing_field") }
        a.sendRaw("not json at all")
        _ = try await a.request("ping")
        a.close()
        await f.close()
    }

    @Test func pathEscapesAreRefused() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice")
        let ws = JSONValue.s(f.shared)
        // The kernel plants symbolic links pointing out of the workspace.
        _ = try await a.request("workspace.join", ["workspace": ws])
        let plant = try await a.request("kernel.execute", ["workspace": ws, "code": .s("import os\nos.symlink('/etc', 'etc-link')\nos.symlink('/etc/passwd', 'passwd-link')\nos.mkdir('d')\nos.symlink('..', 'd/up')")])
        _ = await a.waitForEvent { $0.type == "kernel.finished" && $0["executionId"] == plant["executionId"] }
        for path in ["../x", "/etc/passwd", "a/../../x", "etc-link/passwd", "passwd-link", "d/up/d", "d/up/../..", "x\u{0}y", String(repeating: "a/", count: 100) + "x"] {
            do {
                _ = try await a.request("file.read", ["workspace": ws, "path": .s(path)])
                Issue.record("read \(path) succeeded")
            } catch {
                #expect(["escape", "invalid_path", "path_too_long", "path_too_deep", "not_found", "not_a_directory"].contains(error.code), "\(path): \(error)")
            }
            do {
                _ = try await a.request("file.write", ["workspace": ws, "path": .s(path), "content": .s("pwned")])
                Issue.record("write \(path) succeeded")
            } catch {
                #expect(["escape", "invalid_path", "path_too_long", "path_too_deep", "not_found", "is_a_directory", "not_a_directory"].contains(error.code), "\(path): \(error)")
            }
        }
        // Through REST too, percent-encoded.
        let auth = [("Authorization", "Bearer \(f.tokens["alice"]!)")]
        #expect(await http(f.port, "GET", "/api/v1/workspaces/\(f.shared)/files/%2e%2e/%2e%2e/etc/passwd", headers: auth).status != 200)
        #expect(await http(f.port, "GET", "/api/v1/workspaces/\(f.shared)/files/etc-link/passwd", headers: auth).status == 403)
        #expect(!FileManager.default.fileExists(atPath: "/etc/x"))
        a.close()
        await f.close()
    }

    @Test func filesThroughTheProtocolAndRestAndKernelChangesArePushed() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice"), b = try await f.client("bob")
        let ws = JSONValue.s(f.shared)
        for c in [a, b] { _ = try await c.request("workspace.join", ["workspace": ws]) }
        let w = try await a.request("file.write", ["workspace": ws, "path": .s("src/hello.py"), "content": .s("print('hi')\n")])
        let sha = try #require(w["sha256"]?.string)
        let changed = await b.waitForEvent { $0.type == "file.changed" && $0["by"]?.string == "alice" }
        #expect(changed?["changes"]?.array?.first?["path"]?.string == "src/hello.py")
        let read = try await b.request("file.read", ["workspace": ws, "path": .s("src/hello.py")])
        #expect(read["content"]?.string == "print('hi')\n")
        #expect(read["sha256"]?.string == sha)
        // A stale base hash is a conflict; the file is unchanged.
        do {
            _ = try await b.request("file.write", ["workspace": ws, "path": .s("src/hello.py"), "content": .s("x"), "baseSha256": .s(String(repeating: "0", count: 64))])
            Issue.record("stale write accepted")
        } catch { #expect(error.code == "conflict") }
        // The kernel can edit files the server wrote; its change reaches everyone within 100 ms.
        b.clearEvents()
        let t0 = ContinuousClock.now
        let run = try await a.request("kernel.execute", ["workspace": ws, "code": .s("open('src/hello.py', 'a').write('# edited\\n')\nopen('made-by-kernel.txt', 'w').write('k')")])
        let kernelChange = await b.waitForEvent { $0.type == "file.changed" && $0["by"] == .null }
        #expect(kernelChange != nil)
        _ = run
        let elapsed = ContinuousClock.now - t0
        #expect(elapsed < .seconds(2))
        // REST: binary-safe upload and download, delete.
        let auth = [("Authorization", "Bearer \(f.tokens["bob"]!)")]
        let blob: [UInt8] = (0..<300).map { UInt8($0 % 256) }
        #expect(await http(f.port, "PUT", "/api/v1/workspaces/\(f.shared)/files/data/blob.bin", headers: auth, body: blob).status == 200)
        let got = await http(f.port, "GET", "/api/v1/workspaces/\(f.shared)/files/data/blob.bin", headers: auth)
        #expect(got.status == 200 && got.body == blob)
        let viewer = [("Authorization", "Bearer \(f.tokens["vera"]!)")]
        #expect(await http(f.port, "DELETE", "/api/v1/workspaces/\(f.shared)/files/data/blob.bin", headers: viewer).status == 403)
        #expect(await http(f.port, "DELETE", "/api/v1/workspaces/\(f.shared)/files/data/blob.bin", headers: auth).status == 200)
        a.close(); b.close()
        await f.close()
    }

    @Test func workspacesFromTemplatesAndGit() async throws {
        let f = try await WorkspaceFixture.make()
        let a = try await f.client("alice")
        let t = try await a.request("workspace.create", ["name": .s("From template"), "template": .s("python-starter")])
        let tid = try #require(t["id"]?.string)
        let tree = try await a.request("file.tree", ["workspace": .s(tid)])
        #expect(tree["entries"]?.array?.contains { $0["path"]?.string == "main.py" } == true)
        // A local repository under workspaces.cloneRoots.
        let repo = f.root + "/repos/demo"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let sh = "cd \(repo) && git init -q && echo hello > README && git add README && git -c user.name=t -c user.email=t@t commit -qm init"
        #expect(await Process.run("/bin/sh", ["-c", sh]) == 0)
        let g = try await a.request("workspace.create", ["name": .s("Clone"), "git": .s("file://" + repo)])
        let gid = try #require(g["id"]?.string)
        let readme = try await a.request("file.read", ["workspace": .s(gid), "path": .s("README")])
        #expect(readme["content"]?.string == "hello\n")
        // Anything outside the clone roots is refused.
        do { _ = try await a.request("workspace.create", ["name": .s("x"), "git": .s("/etc")]) } catch { #expect(error.code == "forbidden") }
        do { _ = try await a.request("workspace.create", ["name": .s("x"), "template": .s("../x")]) } catch { #expect(error.code == "not_found") }
        a.close()
        await f.close()
    }

    @Test func agentsRunOnlyWhenGranted() async throws {
        let f = try await WorkspaceFixture.make()
        let ada = try await f.client("ada"), alice = try await f.client("alice")
        do {
            _ = try await ada.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("1")])
            Issue.record("an agent ran code without a grant")
        } catch { #expect(error.code == "forbidden") }
        _ = try await alice.request("member.set", ["workspace": .s(f.shared), "user": .s("ada"), "role": .s("agent"), "canRun": .bool(true)])
        let members = try await alice.request("workspace.members", ["workspace": .s(f.shared)])
        #expect(members["members"]?.array?.first { $0["user"]?.string == "ada" }?["canRun"]?.bool == true)
        _ = try await ada.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("1")])
        // Still never a reviewer or a file writer.
        do {
            _ = try await ada.request("file.write", ["workspace": .s(f.shared), "path": .s("x"), "content": .s("y")])
            Issue.record("an agent wrote a file")
        } catch { #expect(error.code == "forbidden") }
        ada.close(); alice.close()
        await f.close()
    }

    @Test func quotasGiveClearErrorsWithLimitAndUse() async throws {
        let f = try await WorkspaceFixture.make { $0.quotas.kernelsPerUser = 1; $0.quotas.executionsPerDay = 3 }
        let a = try await f.client("alice")
        _ = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("1")])
        // A second kernel of alice's would exceed kernelsPerUser = 1.
        do {
            _ = try await a.request("kernel.execute", ["workspace": .s(f.privateWS), "code": .s("1")])
            Issue.record("second kernel allowed")
        } catch {
            #expect(error.code == "quota_exceeded" && error.message.contains("1 of 1"))
        }
        // The shared kernel runs already: more executions there are fine until the daily limit.
        _ = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("2")])
        _ = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("3")])
        do {
            _ = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("4")])
            Issue.record("executions per day not enforced")
        } catch {
            #expect(error.code == "quota_exceeded" && error.message.contains("3 of 3"))
        }
        // bob's quota is his own.
        let b = try await f.client("bob")
        _ = try await b.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("5")])
        a.close(); b.close()
        await f.close()
    }

    @Test func writesStopAtTheWorkspaceDiskQuota() async throws {
        let f = try await WorkspaceFixture.make { $0.kernels.diskQuotaMB = 1 }
        let auth = [("Authorization", "Bearer \(f.tokens["alice"]!)")]
        let big = [UInt8](repeating: 0x61, count: 2 << 20)
        #expect(await http(f.port, "PUT", "/api/v1/workspaces/\(f.shared)/files/big.bin", headers: auth, body: big).status == 200)
        // The disk is measured after the write; from then on writes are refused with a clear code.
        var refused = false
        for _ in 0..<50 where !refused {
            try await Task.sleep(nanoseconds: 100_000_000)
            let r = await http(f.port, "PUT", "/api/v1/workspaces/\(f.shared)/files/small.txt", headers: auth, body: Array("x".utf8))
            refused = r.status != 200 && String(decoding: r.body, as: UTF8.self).contains("workspace_quota_exceeded")
        }
        #expect(refused)
        // Deleting files brings it back under.
        #expect(await http(f.port, "DELETE", "/api/v1/workspaces/\(f.shared)/files/big.bin", headers: auth).status == 200)
        var accepted = false
        for _ in 0..<50 where !accepted {
            try await Task.sleep(nanoseconds: 100_000_000)
            accepted = await http(f.port, "PUT", "/api/v1/workspaces/\(f.shared)/files/small.txt", headers: auth, body: Array("x".utf8)).status == 200
        }
        #expect(accepted)
        await f.close()
    }

    @Test func oneShotExecuteOverRest() async throws {
        let f = try await WorkspaceFixture.make()
        let auth = [("Authorization", "Bearer \(f.tokens["bob"]!)"), ("Content-Type", "application/json")]
        let r = await http(f.port, "POST", "/api/v1/execute", headers: auth, body: Array(#"{"language":"python","code":"print(6*7)","timeout":10}"#.utf8))
        #expect(r.status == 200)
        let o = try JSONDecoder().decode(JSONValue.self, from: Data(r.body))
        #expect(o["stdout"]?.string == "42\n")
        #expect(o["exitCode"]?.int == 0)
        #expect(await http(f.port, "POST", "/api/v1/execute", body: Array(#"{"code":"1"}"#.utf8)).status == 401)
        await f.close()
    }
}

extension Process {
    /// Runs a command to its end without blocking a cooperative thread.
    static func run(_ path: String, _ args: [String]) async -> Int32 {
        await withCheckedContinuation { cont in
            DispatchQueue.global().async {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: path)
                p.arguments = args
                do { try p.run() } catch { return cont.resume(returning: -1) }
                p.waitUntilExit()
                cont.resume(returning: p.terminationStatus)
            }
        }
    }
}
