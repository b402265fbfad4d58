// kill -9 during a burst of appends: the log reopens, verifies, and holds every entry that was
// acknowledged as durable. Runs `tandem audit selftest-append` (or the command in the
// TANDEM_AUDIT_CLI environment variable, e.g. "/path/to/audit-cli") as the child process.
import Testing
@testable import TandemAudit
#if canImport(Glibc)
import Glibc
#endif

enum AuditCLI {
    /// The command prefix that runs `audit` subcommands, if one works.
    static let prefix: [String]? = {
        var candidates: [[String]] = []
        if let env = getenv("TANDEM_AUDIT_CLI") {
            candidates.append(String(cString: env).split(separator: " ").map(String.init))
        }
        // <repo>/Tests/TandemAuditTests/CrashTests.swift -> <repo>/.build/debug/tandem
        var repo = "\(#filePath)"
        for _ in 0..<3 { repo = parentDirectory(repo) }
        candidates.append([repo + "/.build/debug/tandem", "audit"])
        for c in candidates where access(c[0], X_OK) == 0 {
            // An executable without the subcommand answers --help with its own usage.
            if let r = try? run(c + ["selftest-append", "--help"]), r.status == 0, r.output.contains("selftest-append") { return c }
        }
        return nil
    }()

    /// Runs a command to completion; returns its exit status and standard output.
    static func run(_ argv: [String]) throws -> (status: Int32, output: String) {
        let child = try Child(argv)
        var out: [UInt8] = []
        while let chunk = child.read() { out += chunk }
        return (child.wait(), String(decoding: out, as: UTF8.self))
    }
}

/// A child process with its standard output on a pipe.
final class Child {
    let pid: pid_t
    private let fd: Int32

    init(_ argv: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw AuditError.posix("pipe", "") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var p: pid_t = 0
        let r = posix_spawn(&p, argv[0], &actions, nil, &cargs, environ)
        close(fds[1])
        guard r == 0 else {
            close(fds[0])
            throw AuditError.posix("posix_spawn", argv[0], r)
        }
        pid = p
        fd = fds[0]
    }

    deinit { close(fd) }

    /// The next chunk of output; nil at end of file.
    func read() -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            return n > 0 ? Array(buf[0..<n]) : nil
        }
    }

    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }
}

@Suite(.serialized) struct CrashTests {
    @Test(.enabled(if: AuditCLI.prefix != nil, "needs `tandem audit` (AuditCommand registered in Tandem.swift) or TANDEM_AUDIT_CLI"))
    func killDashNineDuringABurstLosesNoAcknowledgedEntry() throws {
        let cli = try #require(AuditCLI.prefix)
        try withTempDirectory { dir in
            for round in 0..<3 {
                let child = try Child(cli + ["selftest-append", "--data", dir, "--count", "1000000", "--threads", "4"])
                var text = ""
                var acked = 0
                // Let it acknowledge a few hundred entries, then kill it mid-burst.
                while acked < 300 + round * 200, let chunk = child.read() {
                    text += String(decoding: chunk, as: UTF8.self)
                    acked = text.split(separator: "\n").count
                }
                kill(child.pid, SIGKILL)
                // Lines written before the kill are still in the pipe: they were acknowledged.
                while let chunk = child.read() { text += String(decoding: chunk, as: UTF8.self) }
                let status = child.wait()
                #expect(status & 0x7F == SIGKILL, "the child should die by SIGKILL")
                let acks = text.split(separator: "\n").filter { $0.hasPrefix("ack ") && $0.count > 4 }.compactMap { UInt64($0.dropFirst(4)) }
                #expect(acks.count >= 300)

                // The next start verifies the tail and continues the chain.
                let c = AuditLogConfiguration.standard(dataDirectory: dir)
                let log = try AuditLog(c)
                let committed = log.statistics.committedThrough
                try log.appendAndWait(AuditEvent(.configChange, actor: .system))
                try log.close()
                #expect(committed >= acks.max() ?? 0, "every acknowledged entry was committed")

                let reader = try AuditReader(c)
                let report = try reader.verify(witness: try AuditWitness.read(c.witnessPath!))
                #expect(report.isValid, "\(String(describing: report.problem))")
                #expect(report.lastSeq == committed + 1)
                for seq in acks { #expect(try reader.entry(seq: seq) != nil, "acknowledged entry \(seq) is missing") }
            }
        }
    }

    @Test(.enabled(if: AuditCLI.prefix != nil, "needs `tandem audit` (AuditCommand registered in Tandem.swift) or TANDEM_AUDIT_CLI"))
    func commandLineProvesChecksAndVerifies() throws {
        let cli = try #require(AuditCLI.prefix)
        try withTempDirectory { dir in
            let c = try makeLog(dir, count: 20, checkpointEvery: 8)
            let v = try AuditCLI.run(cli + ["verify", "--data", dir])
            #expect(v.status == 0 && v.output.hasPrefix("OK: 20 entries"), "\(v.output)")
            let proof = try AuditCLI.run(cli + ["prove", "5", "--data", dir])
            #expect(proof.status == 0)
            let path = dir + "/proof.json"
            try writeFileAtomically(path, Array(proof.output.utf8), replace: true)
            let check = try AuditCLI.run(cli + ["check-proof", "--data", dir, path])
            #expect(check.status == 0 && check.output.hasPrefix("OK: entry 5 "), "\(check.output)")
            let cons = try AuditCLI.run(cli + ["consistency", "8", "20", "--data", dir])
            try writeFileAtomically(path, Array(cons.output.utf8), replace: true)
            #expect(try AuditCLI.run(cli + ["check-proof", "--data", dir, path]).status == 0)
            let content = dir + "/content.txt"
            try writeFileAtomically(content, Array("print(7)".utf8), replace: true)
            let m = try AuditCLI.run(cli + ["match", "--data", dir, "--content-file", content])
            #expect(m.status == 0 && m.output.hasPrefix("7\t"), "\(m.output)")
            let list = try AuditCLI.run(cli + ["list", "--data", dir, "--json", "--since", "1d"])
            #expect(list.output.split(separator: "\n").count == 20)
            // A tampered log fails with exit status 1 and names the entry.
            try tamper(c, "UPDATE entries SET workspace = 'w2' WHERE seq = 11")
            let bad = try AuditCLI.run(cli + ["verify", "--data", dir])
            #expect(bad.status != 0 && bad.output.hasPrefix("FAILED at 11: entry_modified"), "\(bad.output)")
        }
    }
}
