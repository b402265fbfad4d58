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

/// Parsers for the cgroup stat file formats: straight from the bytes, no strings or
/// dictionaries (the sampler runs for every watched kernel several times a second).
public enum CgroupFiles {
    /// The value of `key` in "key value" lines (memory.stat, cpu.stat, memory.events,
    /// pids.events, memory.oom_control); nil when absent.
    public static func value(of key: StaticString, in bytes: UnsafeRawBufferPointer) -> Int64? {
        let k = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        var lineStart = 0
        let n = bytes.count
        while lineStart < n {
            var end = lineStart
            while end < n && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            if end - lineStart > k.count, bytes[lineStart + k.count] == UInt8(ascii: " "),
               memcmp(bytes.baseAddress! + lineStart, k.baseAddress!, k.count) == 0 {
                return number(UnsafeRawBufferPointer(rebasing: bytes[(lineStart + k.count + 1)..<end]))
            }
            lineStart = end + 1
        }
        return nil
    }

    /// A single decimal number (leading/trailing blanks allowed); "max" (v2's "no limit") is nil.
    public static func number(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var v: Int64 = 0
        var digits = 0
        for b in bytes {
            if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
                v = v &* 10 &+ Int64(b &- UInt8(ascii: "0"))
                digits += 1
            } else if b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t") {
                if digits > 0 { break }
            } else {
                return nil
            }
        }
        return digits > 0 ? v : nil
    }

    /// Convenience for tests: the same on text.
    public static func value(of key: StaticString, in text: String) -> Int64? {
        var t = text
        return t.withUTF8 { value(of: key, in: UnsafeRawBufferPointer($0)) }
    }

    public static func number(_ text: String) -> Int64? {
        var t = text
        return t.withUTF8 { number(UnsafeRawBufferPointer($0)) }
    }
}

/// Reads one container's stat files through descriptors opened once. Loop-confined.
public final class CgroupStatsReader {
    private enum File: CaseIterable {
        case memUsage, memStat, memPeak, memLimit, memEvents, cpuUsage, cpuStat, pidsCurrent, pidsMax, pidsEvents
    }
    private var fds: [File: Int32] = [:]
    private let version: Int
    private var buffer = [UInt8](repeating: 0, count: 8 * 1024)
    private var last: (cpu: Int64, at: UInt64)?
    private var samples = 0
    private var limits: (memory: Int64, pids: Int64) = (0, 0)

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

    /// Reads a file into the buffer and hands its bytes to `body`; nil when it cannot be read.
    private func read<T>(_ f: File, _ body: (UnsafeRawBufferPointer) -> T?) -> T? {
        guard let fd = fds[f] else { return nil }
        return buffer.withUnsafeMutableBytes { buf -> T? in
            let n = ctandem_pread(fd, buf.baseAddress, buf.count, 0)
            guard n >= 0 else { return nil }
            return body(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }

    private func number(_ f: File) -> Int64? { read(f) { CgroupFiles.number($0) } }

    /// Starts a new peak measurement (per execution): v1 resets max_usage_in_bytes by writing 0;
    /// v2 (Linux 6.12+) resets memory.peak for the descriptor that writes to it.
    public func resetPeak() {
        guard let fd = fds[.memPeak] else { return }
        let text: [UInt8] = version == 2 ? Array("reset\n".utf8) : Array("0\n".utf8)
        _ = text.withUnsafeBytes { ctandem_write(fd, $0.baseAddress, $0.count) }
    }

    /// Reads the files once (the limits only every 20th time: they change only through
    /// `crun update`). `now` is the monotonic clock in nanoseconds.
    public func sample(now: UInt64) -> KernelStats {
        var s = KernelStats()
        let v2 = version == 2
        let usage = number(.memUsage) ?? 0
        let (inactive, shmem) = read(.memStat) { b in
            v2 ? (CgroupFiles.value(of: "inactive_file", in: b) ?? 0, CgroupFiles.value(of: "shmem", in: b) ?? 0)
               : (CgroupFiles.value(of: "total_inactive_file", in: b) ?? 0, CgroupFiles.value(of: "total_shmem", in: b) ?? 0)
        } ?? (0, 0)
        s.memoryBytes = max(0, usage - inactive)
        s.tmpfsBytes = shmem
        s.memoryPeakBytes = number(.memPeak) ?? usage
        s.oomKills = read(.memEvents) { CgroupFiles.value(of: "oom_kill", in: $0) } ?? 0
        let (cpuField, throttledField, periods) = read(.cpuStat) { b in
            (v2 ? CgroupFiles.value(of: "usage_usec", in: b) : nil,
             v2 ? CgroupFiles.value(of: "throttled_usec", in: b) : CgroupFiles.value(of: "throttled_time", in: b),
             CgroupFiles.value(of: "nr_throttled", in: b))
        } ?? (nil, nil, nil)
        s.throttledPeriods = periods ?? 0
        if v2 {
            s.cpuNanos = (cpuField ?? 0) * 1000
            s.throttledNanos = (throttledField ?? 0) * 1000
        } else {
            s.cpuNanos = number(.cpuUsage) ?? 0
            s.throttledNanos = throttledField ?? 0
        }
        s.pids = number(.pidsCurrent) ?? 0
        s.pidsLimitHits = read(.pidsEvents) { CgroupFiles.value(of: "max", in: $0) } ?? 0
        if samples % 20 == 0 {
            limits = (number(.memLimit) ?? 0, number(.pidsMax) ?? 0)
        }
        samples &+= 1
        s.memoryLimitBytes = limits.memory
        s.pidsLimit = limits.pids
        if let last, now > last.at {
            s.cpuPercent = Double(s.cpuNanos - last.cpu) * 100 / Double(now - last.at)
        }
        last = (s.cpuNanos, now)
        return s
    }
}

@available(*, unavailable)
extension CgroupStatsReader: Sendable {}
