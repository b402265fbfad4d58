// `tandem kernel bench`: the kernel numbers of docs/benchmarks.md, measured through the same
// KernelService the server uses. scripts/bench-kernels.sh runs it interleaved with Jupyter.
import ArgumentParser
import Dispatch
import Logging
import Synchronization
import TandemConfig
import TandemKernel
import TandemLoop
#if canImport(Glibc)
import Glibc
#endif

extension KernelCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure cold start, warm-pool attach, execute round trip, print latency and stats cost.")
        @OptionGroup var configOptions: ConfigOptions
        @Option(help: "Rounds (each: 5 cold starts, 5 pool attaches, 200 round trips, 50 prints).") var rounds = 3
        @Flag(help: "Also measure stats sampling cost with 50 idle kernels (about 40 s).") var stats = false
        @Flag(help: "One JSON object per metric instead of a summary.") var json = false

        func run() throws {
            var c = try configOptions.load()
            c.kernels.stateDir = "/run/tandem-bench"
            c.kernels.cgroupParent = "tandem-bench"
            c.kernels.maxKernels = 64
            c.kernels.idleTimeout = 3600
            c.log.level = "error"
            let rounds = self.rounds
            var results: [String: [Double]] = [:]
            var c0 = c
            c0.kernels.poolSize = 0
            let cold = try withKernelService(c0) { s in try await benchCold(s, rounds: rounds) }
            results.merge(cold) { $0 + $1 }
            var c1 = c
            c1.kernels.poolSize = 1
            let pooled = try withKernelService(c1) { s in try await benchPool(s, rounds: rounds) }
            results.merge(pooled) { $0 + $1 }
            for (metric, samples) in results.sorted(by: { $0.key < $1.key }) {
                if json {
                    let list = samples.map { String(format3($0)) }.joined(separator: ",")
                    print("{\"system\":\"tandem\",\"metric\":\"\(metric)\",\"samples_ms\":[\(list)]}")
                } else {
                    let s = samples.sorted()
                    print("\(metric): median \(format3(s[s.count / 2])) ms, p10 \(format3(s[s.count / 10])), p90 \(format3(s[s.count * 9 / 10])), n \(s.count)")
                }
            }
            if stats {
                for hz in [2.0, 10.0] {
                    var cs = c
                    cs.kernels.poolSize = 0
                    cs.kernels.statsHz = hz
                    let pct = try withKernelService(cs) { s in try await benchStats(s, kernels: 50, seconds: 10) }
                    if json {
                        print("{\"system\":\"tandem\",\"metric\":\"stats_cpu_percent\",\"hz\":\(Int(hz)),\"kernels\":50,\"value\":\(format3(pct))}")
                    } else {
                        print("stats sampling, 50 kernels at \(Int(hz)) Hz: \(format3(pct)) % of one core")
                    }
                }
            }
        }
    }
}

func format3(_ v: Double) -> String {
    let scaled = (v * 1000).rounded() / 1000
    return "\(scaled)"
}

func millis(since t0: UInt64) -> Double { Double(monotonicNanos() - t0) / 1e6 }

private func benchCold(_ s: KernelService, rounds: Int) async throws -> [String: [Double]] {
    var cold: [Double] = []
    for i in 0..<(rounds * 5 + 1) {
        let ws = "cold-\(i)"
        let dir = benchWorkspace(ws)
        let t0 = monotonicNanos()
        let r = try await s.execute(workspace: ws, directory: dir, code: "1+1")
        let ms = millis(since: t0)
        guard r.outcome.result == "2" else { throw ValidationError("cold start: unexpected \(r.outcome)") }
        if i > 0 { cold.append(ms) }  // the first one warms the page cache
        await s.shutdown(workspace: ws)
    }
    return ["cold_start_first_result": cold]
}

private func benchPool(_ s: KernelService, rounds: Int) async throws -> [String: [Double]] {
    var attach: [Double] = []
    var rtt: [Double] = []
    var prints: [Double] = []
    for i in 0..<(rounds * 5 + 1) {
        while await s.counts().pool < 1 { try await Task.sleep(nanoseconds: 5_000_000) }
        try await Task.sleep(nanoseconds: 50_000_000)
        let ws = "pool-\(i)"
        let dir = benchWorkspace(ws)
        let t0 = monotonicNanos()
        let r = try await s.execute(workspace: ws, directory: dir, code: "1+1")
        let ms = millis(since: t0)
        guard r.outcome.result == "2" else { throw ValidationError("pool attach: unexpected \(r.outcome)") }
        if i > 0 { attach.append(ms) }
        await s.shutdown(workspace: ws)
    }
    // Round trips and print latency on one warm kernel.
    let ws = "warm"
    let dir = benchWorkspace(ws)
    _ = try await s.execute(workspace: ws, directory: dir, code: "import time")
    var driver: [Double] = []
    for _ in 0..<(rounds * 200) {
        let t0 = monotonicNanos()
        let r = try await s.execute(workspace: ws, directory: dir, code: "1+1")
        rtt.append(millis(since: t0))
        // The kernel loop's own view: request written to the driver → its `done` read back.
        driver.append(Double(r.outcome.wallNanos) / 1e6)
    }
    let probe = PrintProbe()
    _ = try await s.attach(workspace: ws, directory: dir, observer: probe)
    for _ in 0..<(rounds * 50) {
        _ = try await s.execute(workspace: ws, directory: dir, code: "print(time.time_ns())")
    }
    s.detach(workspace: ws, observer: probe)
    prints = probe.samples
    await s.shutdown(workspace: ws)
    return ["pool_attach_first_result": attach, "exec_roundtrip": rtt, "exec_roundtrip_driver": driver, "print_latency": prints]
}

/// CPU the whole process uses with `kernels` idle kernels watched (stats pushed at the
/// configured rate), minus the same without watchers; percent of one core.
private func benchStats(_ s: KernelService, kernels: Int, seconds: Double) async throws -> Double {
    var names: [String] = []
    for i in 0..<kernels {
        let ws = "idle-\(i)"
        _ = try await s.execute(workspace: ws, directory: benchWorkspace(ws), code: "0")
        names.append(ws)
    }
    try await Task.sleep(nanoseconds: 1_000_000_000)
    let base = try await cpuPercent(over: seconds)
    let counter = StatsCounter()
    for ws in names { _ = try await s.attach(workspace: ws, directory: benchWorkspace(ws), observer: counter) }
    let watched = try await cpuPercent(over: seconds)
    for ws in names {
        s.detach(workspace: ws, observer: counter)
        await s.shutdown(workspace: ws)
    }
    guard counter.count > 0 else { throw ValidationError("no stats events arrived") }
    return max(0, watched - base)
}

private func cpuPercent(over seconds: Double) async throws -> Double {
    func cpu() -> Double {
        var u = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
    let c0 = cpu()
    let t0 = monotonicNanos()
    try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    return (cpu() - c0) * 100 / (Double(monotonicNanos() - t0) / 1e9)
}

private func benchWorkspace(_ name: String) -> String {
    let d = "/run/tandem-bench/workspaces/" + name
    mkdir("/run/tandem-bench", 0o755)
    mkdir("/run/tandem-bench/workspaces", 0o755)
    mkdir(d, 0o755)
    return d
}

/// Time from `print(time.time_ns())` inside the kernel to the output event here (the container
/// shares the host's realtime clock).
final class PrintProbe: KernelObserver {
    private let values = Mutex<[Double]>([])
    var samples: [Double] { values.withLock { $0 } }
    func kernelEvent(_ record: KernelEventRecord) {
        guard case .output(_, .stdout, let text) = record.event else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let now = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        for line in text.split(separator: "\n") {
            if let sent = Int64(line) { values.withLock { $0.append(Double(now - sent) / 1e6) } }
        }
    }
}

final class StatsCounter: KernelObserver {
    private let n = Atomic<Int>(0)
    var count: Int { n.load(ordering: .relaxed) }
    func kernelEvent(_ record: KernelEventRecord) {
        if case .stats = record.event { n.add(1, ordering: .relaxed) }
    }
}
