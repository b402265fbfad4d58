// `tandem audit …`: verify, query, prove and check the audit log (docs/audit.md).
import ArgumentParser
import TandemAudit
import TandemCrypto
#if canImport(Glibc)
import Glibc
#endif

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify, query and prove the audit log.",
        discussion: "The log lives in <data>/audit/audit.sqlite with its keys beside it; see docs/audit.md.",
        subcommands: [
            Verify.self, List.self, Prove.self, Consistency.self, CheckProof.self, Match.self, Heads.self, Prune.self,
            RotateKey.self, SelftestAppend.self, Bench.self,
        ])

    /// Options every subcommand takes.
    struct Location: ParsableArguments {
        @Option(help: "Data directory; the log is <data>/audit/audit.sqlite.") var data = "workspaces"
        @Option(help: "Environment variable holding the content (HMAC) key in hex, instead of <data>/audit/hmac.key.")
        var contentKeyEnv: String?

        var configuration: AuditLogConfiguration {
            .standard(dataDirectory: data, contentKeyEnvironmentVariable: contentKeyEnv)
        }

        func reader() throws -> AuditReader { try AuditReader(configuration) }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain, every signed tree head, and the witness; report the first broken entry.")
        @OptionGroup var location: Location
        @Flag(help: "Print the report as JSON.") var json = false

        func run() throws {
            let c = location.configuration
            let witness = try c.witnessPath.flatMap { try AuditWitness.read($0) }
            let r = try location.reader().verify(witness: witness)
            if json {
                var s = "{\"valid\":\(r.isValid),\"entries_checked\":\(r.entriesChecked),\"tree_heads_checked\":\(r.treeHeadsChecked)"
                s += ",\"pruned_through\":\(r.prunedThrough),\"last_seq\":\(r.lastSeq),\"latest_tree_size\":\(r.latestTreeSize)"
                s += ",\"uncovered\":\(r.uncovered),\"witness_checked\":\(r.witnessChecked)"
                if let p = r.problem {
                    s += ",\"problem\":{\"kind\":\"\(p.kind)\",\"seq\":\(p.seq),\"message\":\(AuditJSON.quote(p.message))}"
                }
                print(s + "}")
            } else if let p = r.problem {
                print("FAILED at \(p.seq): \(p.kind): \(p.message)")
                print("checked \(r.entriesChecked) entries and \(r.treeHeadsChecked) tree heads before the problem")
            } else {
                print("OK: \(r.entriesChecked) entries (\(r.prunedThrough > 0 ? "1...\(r.prunedThrough) pruned, " : "")last \(r.lastSeq)), \(r.treeHeadsChecked) signed tree heads, latest covers \(r.latestTreeSize)")
                if r.uncovered > 0 { print("note: \(r.uncovered) entries after the latest tree head are protected by the chain only") }
                print(r.witnessChecked ? "witness: matches" : "witness: none")
            }
            if !r.isValid { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List entries, optionally of one workspace and since a time.")
        @OptionGroup var location: Location
        @Option(help: "Only this workspace.") var workspace: String?
        @Option(help: "Only entries at or after T: 2026-11-23, 2026-11-23T14:00:00Z, or a duration back (90s, 15m, 2h, 7d).")
        var since: String?
        @Option(help: "At most N entries.") var limit: Int?
        @Flag(help: "JSON Lines (one object per entry), for export.") var json = false

        func run() throws {
            var sinceMicros: Int64? = nil
            if let since {
                guard let t = AuditTime.parse(since, now: Int64(time(nil)) * 1_000_000) else {
                    throw ValidationError("cannot read --since \(since)")
                }
                sinceMicros = t
            }
            let reader = try location.reader()
            try reader.forEachEntry(workspace: workspace, sinceMicros: sinceMicros, limit: limit ?? .max) { e in
                if json {
                    print(AuditJSON.line(e))
                } else {
                    var fields = ""
                    for f in e.fields ?? [] {
                        switch f.value {
                        case .integer(let v): fields += " \(f.name)=\(v)"
                        case .text(let t): fields += " \(f.name)=\(AuditJSON.quote(t))"
                        case .digest(let d): fields += " \(f.name)=hmac:\(d.hex.prefix(16))…"
                        }
                    }
                    print("\(e.seq)\t\(AuditTime.format(micros: e.timeMicros))\t\(e.actor.id)/\(e.actor.role)\t\(e.action)\t\(e.workspace.isEmpty ? "-" : e.workspace)\t\(e.outcome)\(fields)")
                }
            }
        }
    }

    struct Prove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an inclusion proof (JSON) of entry SEQ against the latest tree head.")
        @OptionGroup var location: Location
        @Argument(help: "The entry's sequence number.") var seq: UInt64
        @Option(help: "Prove against the tree head of this size instead of the latest.") var treeSize: UInt64?

        func run() throws {
            print(AuditProofs.encode(try location.reader().inclusionProof(seq: seq, treeSize: treeSize)), terminator: "")
        }
    }

    struct Consistency: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a consistency proof (JSON) between the tree heads of sizes OLD and NEW.")
        @OptionGroup var location: Location
        @Argument(help: "Size of the older tree head.") var old: UInt64
        @Argument(help: "Size of the newer tree head.") var new: UInt64

        func run() throws {
            print(AuditProofs.encode(try location.reader().consistencyProof(oldSize: old, newSize: new)), terminator: "")
        }
    }

    struct CheckProof: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-proof",
            abstract: "Check an inclusion or consistency proof file, without the database.",
            discussion: """
                Signatures are checked against the trusted keys in <data>/audit/signing.pub (or --public-key). \
                With neither, the public key embedded in the proof is used and the output says so.
                """)
        @Option(help: "Data directory whose audit/signing.pub lists the trusted keys.") var data = "workspaces"
        @Option(help: "A trusted Ed25519 public key in hex (repeatable).") var publicKey: [String] = []
        @Argument(help: "The proof file ('-' for standard input).") var file: String

        func run() throws {
            var trusted: [AuditPublicKey] = []
            for k in publicKey {
                guard let b = Hex.decode(k), let pk = AuditPublicKey(bytes: b) else { throw ValidationError("bad --public-key \(k)") }
                trusted.append(pk)
            }
            if trusted.isEmpty { trusted = try AuditReaderKeys.trusted(data: data) }
            let bytes = try readInput(file)
            do {
                let r = try AuditProofs.check(bytes, trustedKeys: trusted)
                print("OK: \(r.summary)")
                if !r.signaturesTrusted { print("note: signed by the key embedded in the proof; no trusted key was given") }
            } catch {
                print("FAILED: \(error.message)")
                throw ExitCode(1)
            }
        }
    }

    struct Match: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Is this exact content's keyed digest in the log? (needs the content key)")
        @OptionGroup var location: Location
        @Option(help: "The content ('-' for standard input).") var contentFile: String

        func run() throws {
            var content = try readInput(contentFile)
            let hits = try location.reader().match(content: content)
            for i in content.indices { content[i] = 0 }
            if hits.isEmpty {
                print("no entry holds a digest of this content")
                throw ExitCode(1)
            }
            for h in hits {
                print("\(h.entry.seq)\t\(AuditTime.format(micros: h.entry.timeMicros))\t\(h.entry.actor.id)\t\(h.entry.action)\t\(h.entry.workspace)\tfield \(h.field)")
            }
        }
    }

    struct Heads: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tree-heads", abstract: "List the signed tree heads.")
        @OptionGroup var location: Location

        func run() throws {
            for h in try location.reader().treeHeads() {
                print("\(h.treeSize)\t\(AuditTime.format(micros: h.timeMicros))\troot \(h.root.hex)\tkey \(h.keyID)")
            }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete old entries below a signed tree head, keeping the log verifiable (the server must be stopped).")
        @OptionGroup var location: Location
        @Option(help: "Prune entries 1...N, where N is the size of a signed tree head.") var through: UInt64?
        @Option(help: "Prune up to the newest tree head whose entries are all older than T (e.g. 90d).") var olderThan: String?

        func run() throws {
            let log = try AuditLog(location.configuration)
            defer { try? log.close() }
            if let through {
                let m = try log.prune(through: through)
                print("pruned entries 1...\(m.prunedThrough)")
            } else if let olderThan {
                guard let t = AuditTime.parse(olderThan, now: Int64(time(nil)) * 1_000_000) else {
                    throw ValidationError("cannot read --older-than \(olderThan)")
                }
                if let m = try log.prune(olderThan: t) { print("pruned entries 1...\(m.prunedThrough)") } else { print("nothing to prune") }
            } else {
                throw ValidationError("give --through N or --older-than T")
            }
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Make a new content key or signing key current (the server must be stopped).",
            discussion: "Old content keys are kept for `match`; old public keys stay trusted in signing.pub.")
        @OptionGroup var location: Location
        @Argument(help: "content or signing") var which: String

        func run() throws {
            let keys = location.configuration.keys
            switch which {
            case "content": print("content key is now \(try AuditKeyring.rotateContentKey(keys).id)")
            case "signing": print("signing key is now \(try AuditKeyring.rotateSigningKey(keys).id)")
            default: throw ValidationError("say content or signing")
            }
        }
    }

    /// For the crash test: appends COUNT entries with appendAndWait from THREADS threads and
    /// prints `ack SEQ` for each as soon as it is durable.
    struct SelftestAppend: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "selftest-append", abstract: "Append test entries, printing each acknowledged seq.", shouldDisplay: false)
        @OptionGroup var location: Location
        @Option var count = 1000
        @Option var threads = 4

        func run() throws {
            var c = location.configuration
            c.checkpointEntries = 64
            let log = try AuditLog(c)
            let perThread = max(1, count / threads)
            let out = StdoutLines()
            var ts: [pthread_t] = []
            for t in 0..<threads {
                ts.append(startCommandThread {
                    for i in 0..<perThread {
                        var e = AuditEvent(.fileWrite, actor: AuditActor(id: "selftest\(t)", role: "editor"), workspace: "crash")
                        e.add("bytes", i)
                        e.addDigest("content", of: Array("selftest \(t) \(i)".utf8), key: log.contentKey)
                        guard let seq = try? log.appendAndWait(e) else { return }
                        out.print("ack \(seq)")
                    }
                })
            }
            for t in ts { pthread_join(t, nil) }
            try log.close()
            out.print("done")
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure appends/s (chain + batching on) and verified entries/s in a scratch log.", shouldDisplay: false)
        @Option(help: "Entries to append.") var count = 200_000
        @Option(help: "Appending threads.") var threads = 2
        @Flag(help: "synchronous=NORMAL instead of FULL.") var normal = false
        @Option(help: "Scratch directory (default: a new one under /tmp, removed after).") var dir: String?

        func run() throws {
            let directory = dir ?? makeScratchDirectory()
            defer { if dir == nil { removeTree(directory) } }
            let r = try AuditBenchmark.run(directory: directory, count: count, threads: threads, durability: normal ? .normal : .full)
            print(r)
        }
    }
}

/// Trusted public keys of a data directory (empty when it has none).
enum AuditReaderKeys {
    static func trusted(data: String) throws -> [AuditPublicKey] {
        let c = AuditLogConfiguration.standard(dataDirectory: data)
        var out: [AuditPublicKey] = []
        if let bytes = try? readInput(c.keys.trustedKeysPath, missingOK: true) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
                if let b = Hex.decode(line), let k = AuditPublicKey(bytes: b) { out.append(k) }
            }
        }
        return out
    }
}

/// Reads a file, or standard input for "-".
private func readInput(_ path: String, missingOK: Bool = false) throws -> [UInt8] {
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))") }
    defer { if fd != 0 { close(fd) } }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { return out }
        out.append(contentsOf: buf[0..<n])
    }
}

private func makeScratchDirectory() -> String {
    var template = Array("/tmp/tandem-audit-bench-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

/// `rm -r` of the benchmark's scratch directory.
private func removeTree(_ path: String) { AuditFiles.removeTree(path) }

/// Writes whole lines to stdout from several threads, each flushed at once (so a parent that
/// kills this process has every line printed before the kill).
private final class StdoutLines: Sendable {
    func print(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { return }
            off += n
        }
    }
}

private final class CommandThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

private func startCommandThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(CommandThreadBody(body)).toOpaque()
    var t = pthread_t()
    let r = pthread_create(&t, nil, { arg in
        Unmanaged<CommandThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(r == 0, "pthread_create failed")
    return t
}
