// Child processes (the OCI runtime's commands, du) started from the kernel loop without blocking
// it: the exit is noticed through a pidfd in epoll, output is captured through pipes.
import CTandemSystem
import Synchronization
import TandemLoop
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// How a child ended.
public struct ProcessExit: Sendable, Equatable, CustomStringConvertible {
    public var code: Int32?
    public var signal: Int32?
    public var succeeded: Bool { code == 0 }
    public var description: String {
        if let signal { return "killed by signal \(signal)" }
        return "exited with status \(code ?? -1)"
    }
}

/// Spawns `argv[0]` (an absolute path). `fds` become the child's 0, 1, 2, … (-1 = /dev/null).
/// Returns pid and pidfd, or throws with the child's errno (a failed exec is reported here).
func spawnProcess(_ argv: [String], env: [String] = defaultEnvironment, fds: [Int32], mountNamespace: Int32 = -1,
                  cwd: String? = nil) throws(KernelError) -> (pid: Int32, pidfd: Int32) {
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup($0) } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var pidfd: Int32 = -1
    let r = cArgs.withUnsafeBufferPointer { a in
        cEnv.withUnsafeBufferPointer { e in
            fds.withUnsafeBufferPointer { f in
                if let cwd {
                    return ctandem_spawn(argv[0], a.baseAddress, e.baseAddress, f.baseAddress, Int32(f.count), mountNamespace, cwd, &pidfd)
                }
                return ctandem_spawn(argv[0], a.baseAddress, e.baseAddress, f.baseAddress, Int32(f.count), mountNamespace, nil, &pidfd)
            }
        }
    }
    if r < 0 { throw KernelError(.unavailable, "cannot start \(argv[0]): \(String(cString: strerror(-r)))") }
    return (r, pidfd)
}

let defaultEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]

/// Finds an executable on PATH (or checks an absolute path).
public func findExecutable(_ name: String) -> String? {
    if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
    for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = dir + "/" + name
        if access(p, X_OK) == 0 { return p }
    }
    return nil
}

/// Processes someone waits for (ExitWatch, runBlocking): the stray reaper leaves them alone.
let trackedChildren = Mutex<Set<Int32>>([])

/// Reaps zombie children nobody waits for. As the containers' subreaper we also inherit the
/// runtime's own intermediate processes when the runtime command exits before them; they would
/// stay zombies forever. Only processes named like the runtime are reaped, so children that
/// other code in this process waits for are never taken.
func reapStrayRuntimeProcesses(names: Set<String>) {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return }
    let tracked = trackedChildren.withLock { $0 }
    for t in tasks {
        guard let text = try? String(contentsOfFile: "/proc/self/task/\(t)/children", encoding: .utf8) else { continue }
        for p in text.split(separator: " ") {
            guard let pid = Int32(p.filter { $0 != "\n" }), !tracked.contains(pid),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let comm = String(stat[stat.index(after: open)..<close])
            let state = stat[stat.index(close, offsetBy: 2)...].first
            guard state == "Z", names.contains(comm) else { continue }
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
        }
    }
}

/// Waits for a process to exit on the loop. Loop-confined.
final class ExitWatch {
    private var watch: FileDescriptorWatch?
    private var timer: UInt64?
    private let pid: Int32
    private let pidfd: Int32
    private var onExit: ((ProcessExit) -> Void)?
    private unowned let loop: Loop

    init(loop: Loop, pid: Int32, pidfd: Int32, onExit: @escaping (ProcessExit) -> Void) {
        self.loop = loop
        self.pid = pid
        self.pidfd = pidfd
        self.onExit = onExit
        trackedChildren.withLock { _ = $0.insert(pid) }
        if pidfd >= 0, let w = try? loop.watch(fd: pidfd, events: Epoll.readable, { [unowned self] _ in self.check() }) {
            watch = w
        } else {
            poll()
        }
    }

    private func poll() {
        timer = loop.schedule(afterNanos: 5_000_000) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.check()
            if self.onExit != nil { self.poll() }
        }
    }

    private func check() {
        var code: Int32 = 0
        var sig: Int32 = 0
        let r = ctandem_reap(pid, &code, &sig)
        if r == 0 { return }
        // ECHILD: not our child (any more); treat as gone.
        let exit = r > 0 ? ProcessExit(code: code >= 0 ? code : nil, signal: sig > 0 ? sig : nil) : ProcessExit(code: nil, signal: nil)
        finish(exit)
    }

    private func finish(_ exit: ProcessExit) {
        trackedChildren.withLock { _ = $0.remove(pid) }
        watch?.cancel()
        watch = nil
        if let t = timer { loop.cancelTimer(t) }
        if pidfd >= 0 { _ = ctandem_close(pidfd) }
        let cb = onExit
        onExit = nil
        withExtendedLifetime(self) { cb?(exit) }
    }

    deinit {
        watch?.cancel()
    }
}

/// Runs a short command on the loop, capturing its stdout and stderr (up to 64 KiB each).
final class CapturedRun {
    private var exitWatch: ExitWatch?
    private var out: [UInt8] = []
    private var err: [UInt8] = []
    private var outFD: Int32 = -1
    private var errFD: Int32 = -1
    private var watches: [FileDescriptorWatch] = []
    private var completion: ((ProcessExit, String, String) -> Void)?

    /// Starts `argv`; calls `completion` on the loop with the exit and the captured text.
    static func start(_ argv: [String], loop: Loop, mountNamespace: Int32 = -1,
                      completion: @escaping (ProcessExit, String, String) -> Void) {
        let run = CapturedRun()
        run.completion = completion
        var o: [Int32] = [-1, -1]
        var e: [Int32] = [-1, -1]
        guard ctandem_pipe(&o, 1, 0) == 0 else { completion(ProcessExit(code: 127, signal: nil), "", "pipe failed"); return }
        guard ctandem_pipe(&e, 1, 0) == 0 else {
            _ = ctandem_close(o[0]); _ = ctandem_close(o[1])
            completion(ProcessExit(code: 127, signal: nil), "", "pipe failed")
            return
        }
        let spawned: (pid: Int32, pidfd: Int32)
        do {
            spawned = try spawnProcess(argv, fds: [-1, o[1], e[1]], mountNamespace: mountNamespace)
        } catch {
            for fd in o + e { _ = ctandem_close(fd) }
            completion(ProcessExit(code: 127, signal: nil), "", error.message)
            return
        }
        _ = ctandem_close(o[1])
        _ = ctandem_close(e[1])
        run.outFD = o[0]
        run.errFD = e[0]
        if let w = try? loop.watch(fd: o[0], events: Epoll.readable, { [unowned run] _ in run.drain(run.outFD, into: &run.out) }) { run.watches.append(w) }
        if let w = try? loop.watch(fd: e[0], events: Epoll.readable, { [unowned run] _ in run.drain(run.errFD, into: &run.err) }) { run.watches.append(w) }
        // The exit callback holds the run (a cycle through `exitWatch`) until it has finished.
        run.exitWatch = ExitWatch(loop: loop, pid: spawned.pid, pidfd: spawned.pidfd) { exit in run.finish(exit) }
    }

    private func drain(_ fd: Int32, into buf: inout [UInt8]) {
        guard fd >= 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { ctandem_read(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                // EOF or error: stop watching this pipe (level-triggered epoll would spin on EOF).
                if n == 0 || n != -Int(EAGAIN) {
                    for w in watches where w.fd == fd { w.cancel() }
                }
                return
            }
            if buf.count < 64 * 1024 { buf.append(contentsOf: chunk[0..<min(n, 64 * 1024 - buf.count)]) }
        }
    }

    private func finish(_ exit: ProcessExit) {
        drain(outFD, into: &out)
        drain(errFD, into: &err)
        for w in watches { w.cancel() }
        watches = []
        _ = ctandem_close(outFD)
        _ = ctandem_close(errFD)
        outFD = -1
        errFD = -1
        exitWatch = nil
        completion?(exit, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
        completion = nil
    }
}

/// Runs a command to completion, blocking the calling thread (start-up work only). With
/// `capture` false the output goes to a pipe nobody reads (for commands whose descendants keep
/// their stdio open, such as `crun create`), and only the exit is waited for.
func runBlocking(_ argv: [String], mountNamespace: Int32 = -1, capture: Bool = true) -> (exit: ProcessExit, output: String) {
    var p: [Int32] = [-1, -1]
    guard ctandem_pipe(&p, 0, 0) == 0 else { return (ProcessExit(code: 127, signal: nil), "pipe failed") }
    let spawned: (pid: Int32, pidfd: Int32)
    do {
        spawned = try spawnProcess(argv, fds: [p[0], p[1], p[1]], mountNamespace: mountNamespace)
    } catch {
        _ = ctandem_close(p[0]); _ = ctandem_close(p[1])
        return (ProcessExit(code: 127, signal: nil), error.message)
    }
    _ = ctandem_close(p[1])
    trackedChildren.withLock { _ = $0.insert(spawned.pid) }
    defer { trackedChildren.withLock { _ = $0.remove(spawned.pid) } }
    var out: [UInt8] = []
    if capture {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { ctandem_read(p[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            if out.count < 1 << 20 { out.append(contentsOf: chunk[0..<n]) }
        }
    }
    _ = ctandem_close(p[0])
    if spawned.pidfd >= 0 { _ = ctandem_close(spawned.pidfd) }
    var status: Int32 = 0
    while waitpid(spawned.pid, &status, 0) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    let exit = exited ? ProcessExit(code: (status >> 8) & 0xff, signal: nil) : ProcessExit(code: nil, signal: status & 0x7f)
    return (exit, String(decoding: out, as: UTF8.self))
}
