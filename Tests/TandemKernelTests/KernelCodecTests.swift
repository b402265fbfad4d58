// The pure parts: OCI config, driver protocol, line splitting, UTF-8 cuts, rate limiting, replay.
import Testing
@testable import TandemKernel
import Foundation

@Suite struct KernelCodecTests {
    func input(seccomp: SeccompFilter = .bpf(base64: "AAAA"), workspace: String? = "/data/ws") -> OCIConfigInput {
        OCIConfigInput(containerID: "k-1", rootfs: "/run/tandem/rootfs", workspace: workspace, kernelDirectory: "/srv/kernels/python3",
                       argv: ["/usr/bin/python3", "-u", "/opt/kernel/driver.py"], env: ["B": "2", "A": "1"],
                       limits: KernelLimits(memoryBytes: 256 << 20, pids: 64, cpuPercent: 50, tmpBytes: 32 << 20),
                       uidBase: 100_000, cgroupPath: "/tandem/k-1", seccomp: seccomp)
    }

    @Test func ociConfigHasTheIsolationSettings() throws {
        let json = try JSONSerialization.jsonObject(with: try OCIConfig.render(input())) as! [String: Any]
        let process = json["process"] as! [String: Any]
        #expect(process["args"] as? [String] == ["/usr/bin/catatonit", "--", "/usr/bin/python3", "-u", "/opt/kernel/driver.py"])
        #expect(process["noNewPrivileges"] as? Bool == true)
        let user = process["user"] as! [String: Any]
        #expect(user["uid"] as? Int == 1000)
        let caps = process["capabilities"] as! [String: [String]]
        #expect(caps.values.allSatisfy { $0.isEmpty })
        #expect((process["env"] as? [String])?.suffix(2) == ["A=1", "B=2"])
        #expect((json["root"] as? [String: Any])?["readonly"] as? Bool == true)
        let linux = json["linux"] as! [String: Any]
        let ns = (linux["namespaces"] as! [[String: String]]).map { $0["type"]! }
        #expect(Set(ns) == ["pid", "network", "ipc", "uts", "mount", "cgroup", "user"])
        let res = linux["resources"] as! [String: Any]
        let mem = res["memory"] as! [String: Int]
        #expect(mem["limit"] == 256 << 20 && mem["swap"] == 256 << 20)
        #expect((res["pids"] as! [String: Int])["limit"] == 64)
        #expect((res["cpu"] as! [String: Int])["quota"] == 50_000)
        #expect(linux["cgroupsPath"] as? String == "/tandem/k-1")
        #expect((json["annotations"] as? [String: String])?["run.oci.seccomp_bpf_data"] == "AAAA")
        #expect(linux["seccomp"] == nil)
        let mounts = json["mounts"] as! [[String: Any]]
        let ws = mounts.first { $0["destination"] as? String == "/workspace" }
        #expect(ws?["source"] as? String == "/data/ws")
        let tmp = mounts.first { $0["destination"] as? String == "/tmp" }
        #expect((tmp?["options"] as? [String])?.contains("size=32768k") == true)
        for m in mounts where m["type"] as? String == "bind" {
            let o = m["options"] as! [String]
            #expect(o.contains("nosuid") && o.contains("nodev"))
            if m["destination"] as? String != "/workspace" { #expect(o.contains("ro")) }
        }
    }

    @Test func poolContainersHaveNoWorkspaceMountAndProfilesPassThrough() throws {
        let profile = #"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#
        let json = try JSONSerialization.jsonObject(with: try OCIConfig.render(input(seccomp: .profile(json: profile), workspace: nil))) as! [String: Any]
        let mounts = json["mounts"] as! [[String: Any]]
        #expect(!mounts.contains { $0["destination"] as? String == "/workspace" })
        let seccomp = (json["linux"] as! [String: Any])["seccomp"] as! [String: Any]
        #expect(seccomp["defaultErrnoRet"] as? Int == 38)
        let arg = ((seccomp["syscalls"] as! [[String: Any]])[0]["args"] as! [[String: Any]])[0]
        #expect(arg["value"] as? Int == 0x7E02_0000)
        #expect(throws: KernelError.self) { _ = try OCIConfig.render(input(seccomp: .profile(json: "[1]"))) }
    }

    @Test func shippedSeccompProfileAndSpecsLoad() throws {
        let text = try String(contentsOfFile: repoRoot + "/config/seccomp/tandem.json", encoding: .utf8)
        _ = try OCIConfig.render(input(seccomp: .profile(json: text)))
        let specs = try KernelSpec.loadAll(root: repoRoot + "/config/kernels")
        #expect(Set(specs.keys).isSuperset(of: ["python3", "bash", "node"]))
        let py = try #require(specs["python3"])
        #expect(py.hostArgv.last == repoRoot + "/config/kernels/python3/driver.py")
    }

    @Test func driverRequestsAndEvents() {
        let line = String(decoding: DriverRequest.execute(id: 3, code: "print(\"a\")\nx").line, as: UTF8.self)
        #expect(line == #"{"op":"execute","id":3,"code":"print(\"a\")\nx"}"# + "\n")
        #expect(DriverEvent.decode(ArraySlice(#"{"ev":"ready","language":"python","version":"3.11"}"#.utf8)) == .ready(language: "python", version: "3.11"))
        let done = DriverEvent.decode(ArraySlice(#"{"ev":"done","id":3,"status":"error","result":null,"error":{"name":"E","message":"m"}}"#.utf8))
        #expect(done == .done(id: 3, status: .error, result: nil, error: ExecutionError(name: "E", message: "m"), matches: nil, cursorStart: nil))
        // Statuses only the server may assign, and garbage, are rejected.
        #expect(DriverEvent.decode(ArraySlice(#"{"ev":"done","id":3,"status":"died"}"#.utf8)) == nil)
        #expect(DriverEvent.decode(ArraySlice("not json".utf8)) == nil)
    }

    @Test func lineSplitterHandlesFragmentsAndOverflow() {
        var s = LineSplitter(maxLine: 8)
        func feed(_ text: String) -> [String] {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBytes { s.append($0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        var lines: [String] = []
        for chunk in ["ab", "c\nde", "f\n\ng"] { lines += feed(chunk) }
        #expect(lines == ["abc", "def", ""])
        _ = feed("0123456789")
        let overflowed = s.overflowed
        #expect(overflowed)
    }

    @Test func utf8CutsKeepSequencesWhole() {
        let euro = Array("€".utf8)  // 3 bytes
        #expect(utf8CompletePrefix(Array("ab".utf8)) == 2)
        #expect(utf8CompletePrefix(Array("a".utf8) + euro.prefix(2)) == 1)
        #expect(utf8CompletePrefix(Array("a".utf8) + euro) == 4)
        #expect(utf8CompletePrefix([]) == 0)
    }

    @Test func tokenBucketAndReplayBuffer() {
        var b = TokenBucket(rate: 1000)
        let first = b.hasTokens(now: 1)
        b.consume(1500, now: 1)
        let overdrawn = b.hasTokens(now: 2)
        let wait = b.nanosUntilTokens(now: 2)
        let later = b.hasTokens(now: 2 + wait + 1_000_000)
        #expect(first && !overdrawn && later)
        #expect(wait > 400_000_000 && wait < 600_000_000)
        var r = ReplayBuffer(limit: 300)  // 74 bytes per record below: four fit
        for i in 1...5 { r.append(KernelEventRecord(workspace: "w", seq: UInt64(i), event: .output(executionID: 1, stream: .stdout, text: "0123456789"))) }
        #expect(r.heldRecords.map(\.seq) == [2, 3, 4, 5])
        #expect(r.outputBytesEvicted(after: 0) == (10, false))
        for i in 6...7 { r.append(KernelEventRecord(workspace: "w", seq: UInt64(i), event: .output(executionID: 1, stream: .stdout, text: "0123456789"))) }
        #expect(r.heldRecords.map(\.seq) == [4, 5, 6, 7])
        #expect(r.outputBytesEvicted(after: 1) == (20, false))
        #expect(r.outputBytesEvicted(after: 0) == (30, false))
    }
}
