// Resource statistics of one kernel, read from its cgroup. The reader keeps the stat files open
// and re-reads them with pread (about 3 µs per small file), so sampling many kernels often is
// cheap; the parsers are pure functions of the files' text.
import CTandemSystem
#if canImport(Glibc)
import Glibc
#endif

/// One sample. Counters are cumulative; `cpuPercent` is computed from the previous sample.
public struct KernelStats: Sendable, Equatable {
    /// Working set: usage minus inactive page cache (what `docker stats` shows).
    public var memoryBytes: Int64 = 0
    public var memoryLimitBytes: Int64 = 0
    /// Highest usage since the container started (or since the last reset, per execution).
    public var memoryPeakBytes: Int64 = 0
    /// tmpfs (/tmp, /dev/shm) in memory: it counts toward the limit.
    public var tmpfsBytes: Int64 = 0
    public var cpuNanos: Int64 = 0
    public var cpuPercent: Double = 0
    public var throttledPeriods: Int64 = 0
    public var throttledNanos: Int64 = 0
    public var pids: Int64 = 0
    public var pidsLimit: Int64 = 0
    /// Forks refused because the pids limit was reached.
    public var pidsLimitHits: Int64 = 0
    public var oomKills: Int64 = 0

    public init() {}
}

/// Parsers for the cgroup stat file formats.
public enum CgroupFiles {
    /// "key value" lines (memory.stat, cpu.stat, memory.events, pids.events, memory.oom_control).
    public static func keyed(_ text: Substring) -> [Substring: Int64] {
        var out: [Substring: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let v = Int64(parts[1].trimmingSpaces) { out[parts[0]] = v }
        }
        return out
    }

    /// A single number; "max" (v2's "no limit") is nil.
    public static func number(_ text: Substring) -> Int64? {
        Int64(text.trimmingSpaces)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\n" || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// Reads one container's stat files through descriptors opened once. Loop-confined.
public final class CgroupStatsReader {
    private enum File: CaseIterable {
        case memUsage, memStat, memPeak, memLimit, memEvents, cpuUsage, cpuStat, pidsCurrent, pidsMax, pidsEvents
    }
    private var fds: [File: Int32] = [:]
    private let version: Int
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var last: (cpu: Int64, at: UInt64)?

    public init(_ dirs: CgroupDirectories) {
        version = dirs.version
        var fds: [File: Int32] = [:]
        func open(_ f: File, _ dir: String?, _ name: String, write: Bool = false) {
            guard let dir else { return }
            let fd = Glibc.open(dir + "/" + name, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC)
            if fd >= 0 { fds[f] = fd }
        }
        defer { self.fds = fds }
        if version == 2 {
            open(.memUsage, dirs.memory, "memory.current")
            open(.memStat, dirs.memory, "memory.stat")
            open(.memPeak, dirs.memory, "memory.peak", write: true)
            open(.memLimit, dirs.memory, "memory.max")
            open(.memEvents, dirs.memory, "memory.events")
            open(.cpuStat, dirs.cpu, "cpu.stat")
            open(.pidsCurrent, dirs.pids, "pids.current")
            open(.pidsMax, dirs.pids, "pids.max")
            open(.pidsEvents, dirs.pids, "pids.events")
        } else {
            open(.memUsage, dirs.memory, "memory.usage_in_bytes")
            open(.memStat, dirs.memory, "memory.stat")
            open(.memPeak, dirs.memory, "memory.max_usage_in_bytes", write: true)
            open(.memLimit, dirs.memory, "memory.limit_in_bytes")
            open(.memEvents, dirs.memory, "memory.oom_control")
            open(.cpuUsage, dirs.cpuacct, "cpuacct.usage")
            open(.cpuStat, dirs.cpu, "cpu.stat")
            open(.pidsCurrent, dirs.pids, "pids.current")
            open(.pidsMax, dirs.pids, "pids.max")
            open(.pidsEvents, dirs.pids, "pids.events")
        }
    }

    deinit { close() }

    /// Whether the cgroup's files could be opened (false for a backend without cgroups).
    public var isAvailable: Bool { fds[.memUsage] != nil }

    public func close() {
        for fd in fds.values { _ = ctandem_close(fd) }
        fds = [:]
    }

    private func read(_ f: File) -> Substring? {
        guard let fd = fds[f] else { return nil }
        let n = buffer.withUnsafeMutableBytes { ctandem_pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return Substring(String(decoding: buffer[0..<n], as: UTF8.self))
    }

    /// Starts a new peak measurement (per execution): v1 resets max_usage_in_bytes by writing 0;
    /// v2 (Linux 6.12+) resets memory.peak for the descriptor that writes to it.
    public func resetPeak() {
        guard let fd = fds[.memPeak] else { return }
        let text: [UInt8] = version == 2 ? Array("reset\n".utf8) : Array("0\n".utf8)
        _ = text.withUnsafeBytes { ctandem_write(fd, $0.baseAddress, $0.count) }
    }

    /// Reads every file once. `now` is the monotonic clock in nanoseconds.
    public func sample(now: UInt64) -> KernelStats {
        var s = KernelStats()
        let memStat = read(.memStat).map { CgroupFiles.keyed($0) } ?? [:]
        let usage = read(.memUsage).flatMap { CgroupFiles.number($0) } ?? 0
        let inactive = memStat[version == 2 ? "inactive_file" : "total_inactive_file"] ?? 0
        s.memoryBytes = max(0, usage - inactive)
        s.tmpfsBytes = memStat[version == 2 ? "shmem" : "total_shmem"] ?? 0
        s.memoryPeakBytes = read(.memPeak).flatMap { CgroupFiles.number($0) } ?? usage
        s.memoryLimitBytes = read(.memLimit).flatMap { CgroupFiles.number($0) } ?? 0
        let memEvents = read(.memEvents).map { CgroupFiles.keyed($0) } ?? [:]
        s.oomKills = memEvents["oom_kill"] ?? 0
        let cpuStat = read(.cpuStat).map { CgroupFiles.keyed($0) } ?? [:]
        if version == 2 {
            s.cpuNanos = (cpuStat["usage_usec"] ?? 0) * 1000
            s.throttledNanos = (cpuStat["throttled_usec"] ?? 0) * 1000
        } else {
            s.cpuNanos = read(.cpuUsage).flatMap { CgroupFiles.number($0) } ?? 0
            s.throttledNanos = cpuStat["throttled_time"] ?? 0
        }
        s.throttledPeriods = cpuStat["nr_throttled"] ?? 0
        s.pids = read(.pidsCurrent).flatMap { CgroupFiles.number($0) } ?? 0
        s.pidsLimit = read(.pidsMax).flatMap { CgroupFiles.number($0) } ?? 0
        s.pidsLimitHits = (read(.pidsEvents).map { CgroupFiles.keyed($0) } ?? [:])["max"] ?? 0
        if let last, now > last.at {
            s.cpuPercent = Double(s.cpuNanos - last.cpu) * 100 / Double(now - last.at)
        }
        last = (s.cpuNanos, now)
        return s
    }
}

@available(*, unavailable)
extension CgroupStatsReader: Sendable {}
