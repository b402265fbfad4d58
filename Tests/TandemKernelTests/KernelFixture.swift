// A kernel service on its own loop with its own state directory and cgroup parent, so tests
// never touch each other's containers; `close()` shuts it down and checks that no container,
// cgroup or bundle is left behind.
import Testing
import Logging
import Synchronization
import TandemConfig
import TandemLoop
@testable import TandemKernel
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The repository root (for config/kernels and config/seccomp).
let repoRoot: String = {
    var parts = #filePath.split(separator: "/").map(String.init)
    parts.removeLast(3)
    return "/" + parts.joined(separator: "/")
}()

private let fixtureCounter = Atomic<Int>(0)

final class KernelFixture: Sendable {
    let group: EventLoopGroup
    let service: KernelService
    let settings: TandemConfiguration.Kernels
    let root: String

    static func make(_ tweak: (inout TandemConfiguration.Kernels) -> Void = { _ in }) async throws -> KernelFixture {
        let n = fixtureCounter.add(1, ordering: .relaxed).newValue
        let root = "/tmp/tandem-kt-\(getpid())-\(n)"
        try FileManager.default.createDirectory(atPath: root + "/workspaces", withIntermediateDirectories: true)
        var s = TandemConfiguration.Kernels()
        s.stateDir = root + "/state"
        s.cgroupParent = "tandem-test-\(getpid())-\(n)"
        s.memoryMB = 256
        s.pids = 64
        s.tmpMB = 32
        s.poolSize = 0
        s.cpuPercent = 100
        tweak(&s)
        var logger = Logger(label: "kernel-test")
        logger.logLevel = .critical
        let group = try EventLoopGroup(count: 1, logger: logger)
        let service = try await KernelService.start(settings: s, base: repoRoot, loop: group.loops[0], logger: logger)
        return KernelFixture(group: group, service: service, settings: service.settings, root: root)
    }

    private init(group: EventLoopGroup, service: KernelService, settings: TandemConfiguration.Kernels, root: String) {
        self.group = group
        self.service = service
        self.settings = settings
        self.root = root
    }

    /// A fresh workspace directory.
    func workspace(_ name: String) -> String {
        let d = root + "/workspaces/" + name
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func run(_ ws: String, _ code: String, kernel: String? = nil) async throws(KernelError) -> ExecutionTranscript {
        try await service.execute(workspace: ws, directory: workspace(ws), code: code, kernel: kernel)
    }

    /// Shuts everything down and checks nothing is left: no container in the runtime's state, no
    /// cgroup directory, no bundle.
    func close() async {
        await service.shutdownAll()
        group.shutdown()
        // As the subreaper we inherit the runtime's intermediate processes; none may be left
        // as a zombie.
        // (Other suites run containers in this process too: a zombie that is reaped within a
        // second is theirs in flight; one that stays is a leak.)
        var zombies = zombieChildren()
        for _ in 0..<20 where !zombies.isEmpty {
            try? await Task.sleep(nanoseconds: 50_000_000)
            zombies = zombieChildren()
        }
        #expect(zombies.isEmpty, "zombie children: \(zombies)")
        if settings.backend == "oci" {
            let runtimeRoot = settings.stateDir + "/runtime"
            let containers = (try? FileManager.default.contentsOfDirectory(atPath: runtimeRoot)) ?? []
            #expect(containers.isEmpty, "containers left in \(runtimeRoot): \(containers)")
            let bundles = (try? FileManager.default.contentsOfDirectory(atPath: settings.stateDir + "/bundles")) ?? []
            #expect(bundles.isEmpty, "bundles left: \(bundles)")
            let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            if let layout = CgroupLayout.parse(mountinfo: mountinfo) {
                for dir in layout.allDirectories(relative: settings.cgroupParent) {
                    let children = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("k-") }
                    #expect(children.isEmpty, "cgroups left in \(dir): \(children)")
                    rmdir(dir)
                }
            }
        }
        // Workspaces belong to the kernel user; root removes them.
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Our children that are zombies, as "pid comm".
func zombieChildren() -> [String] {
    var out: [String] = []
    for t in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        let text = (try? String(contentsOfFile: "/proc/self/task/\(t)/children", encoding: .utf8)) ?? ""
        for p in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            if stat[stat.index(close, offsetBy: 2)...].first == "Z" { out.append(String(stat.prefix(upTo: close)) + ")") }
        }
    }
    return out
}

/// Records a kernel's events for assertions.
final class EventRecorder: KernelObserver {
    private let events = Mutex<[KernelEventRecord]>([])

    func kernelEvent(_ record: KernelEventRecord) { events.withLock { $0.append(record) } }

    var all: [KernelEventRecord] { events.withLock { $0 } }

    /// Waits until some recorded event satisfies `match`; returns it or nil on timeout.
    func wait(timeout: Double = 10, _ match: @escaping (KernelEvent) -> Bool) async -> KernelEvent? {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        while monotonicNanos() < deadline {
            if let e = all.first(where: { match($0.event) }) { return e.event }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        return nil
    }

    func output(_ stream: OutputStream) -> String {
        all.compactMap { r -> String? in
            if case .output(_, let s, let text) = r.event, s == stream { return text }
            return nil
        }.joined()
    }
}

/// A listening TCP socket on the host's 127.0.0.1 (to prove kernels cannot reach it).
final class HostListener: Sendable {
    let fd: Int32
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                bind(fd, sp, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, sp, &len) == 0
            }
        }
        guard ok else { throw KernelError(.unavailable, "listener") }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    deinit { close(fd) }
}
