// A benchmark of appends (chain + batching + checkpoints on) and of verification, for
// `tandem audit bench`. Not a test: wall-clock numbers on a shared 2-core machine are noisy.
#if canImport(Glibc)
import Glibc
#endif

/// Results of ``AuditBenchmark/run(directory:count:threads:durability:)``.
public struct AuditBenchmarkResult: Sendable, CustomStringConvertible {
    public var count: Int
    public var threads: Int
    public var durability: AuditDurability
    /// Seconds from the first append to the end of the final flush (all committed).
    public var appendSeconds: Double
    /// Seconds for a full verification of the same log (chain, tree, every tree head).
    public var verifySeconds: Double
    public var treeHeads: Int
    public var batches: UInt64
    public var databaseBytes: Int

    public var appendsPerSecond: Double { Double(count) / appendSeconds }
    public var verifiedPerSecond: Double { Double(count) / verifySeconds }

    public var description: String {
        func f(_ x: Double) -> String { String(Int(x.rounded())) }
        return """
            entries: \(count) (\(threads) appending threads, durability \(durability.rawValue), \(batches) transactions, \(treeHeads) tree heads, \(databaseBytes / 1024) KiB)
            append: \(f(appendsPerSecond)) entries/s (\(String(appendSeconds)) s, chain + batching + checkpoints on, 2 HMAC digests per entry)
            verify: \(f(verifiedPerSecond)) entries/s (\(String(verifySeconds)) s, chain + Merkle roots + signatures)
            """
    }
}

public enum AuditBenchmark {
    /// Appends `count` realistic entries (a `kernel.execute` with 3 numbers, 1 text field and
    /// digests of code and output) from `threads` threads into a new log in `directory`, flushes,
    /// closes, then verifies the log.
    public static func run(directory: String, count: Int, threads: Int = 2, durability: AuditDurability = .full) throws(AuditError) -> AuditBenchmarkResult {
        var c = AuditLogConfiguration.standard(dataDirectory: directory)
        c.durability = durability
        let log = try AuditLog(c)
        let key = log.contentKey
        let perThread = count / threads
        let total = perThread * threads
        let start = monotonicNanoseconds()
        var ts: [pthread_t] = []
        for t in 0..<threads {
            let body = ThreadBody {
                for i in 0..<perThread {
                    var e = AuditEvent(.kernelExecute, actor: AuditActor(id: "user\(t)", role: "editor"), workspace: "bench-\(t % 4)")
                    e.add("duration_us", Int64(i))
                    e.add("exit_status", 0)
                    e.add("cpu_us", Int64(i * 3))
                    e.add("kernel", text: "python3")
                    e.addDigest("code", of: Array("print(\(i))".utf8), key: key)
                    e.addDigest("output", of: Array("\(i)\n".utf8), key: key)
                    _ = try? log.append(e)
                }
            }
            ts.append(try body.start())
        }
        for t in ts { pthread_join(t, nil) }
        try log.flush()
        let appended = monotonicNanoseconds()
        let stats = log.statistics
        try log.close()

        let reader = try AuditReader(c)
        let v0 = monotonicNanoseconds()
        let report = try reader.verify()
        let v1 = monotonicNanoseconds()
        guard report.isValid else { throw AuditError(.tampered, "benchmark log does not verify: \(report.problem!)") }
        var st = stat()
        let size = stat(c.databasePath, &st) == 0 ? Int(st.st_size) : 0
        var wst = stat()
        let wal = stat(c.databasePath + "-wal", &wst) == 0 ? Int(wst.st_size) : 0
        return AuditBenchmarkResult(
            count: total, threads: threads, durability: durability, appendSeconds: Double(appended - start) / 1e9,
            verifySeconds: Double(v1 - v0) / 1e9, treeHeads: report.treeHeadsChecked, batches: stats.batches, databaseBytes: size + wal)
    }
}

/// A closure run on a new POSIX thread.
final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    /// Starts a joinable thread running the body.
    func start() throws(AuditError) -> pthread_t {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box)
        if r != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw AuditError.posix("pthread_create", "thread", r)
        }
        return t
    }
}
