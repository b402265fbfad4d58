// Kernels in real crun containers: state, streams, interrupt, restart, isolation, limits,
// pool, idle reaping, one-shot runs. Needs root, crun and catatonit (scripts/setup.sh --test
// installs them). Serialized: the machine has two cores and the limits tests load it.
import Testing
import TandemConfig
import TandemLoop
@testable import TandemKernel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct KernelContainerTests {
    @Test func stateSurvivesAndStdoutStderrAreSeparate() async throws {
        let f = try await KernelFixture.make()
        let a = try await f.run("ws", "x = 41")
        #expect(a.outcome.status == .ok)
        #expect(a.outcome.result == nil)
        let b = try await f.run("ws", "x + 1")
        #expect(b.outcome.result == "42")
        let c = try await f.run("ws", "import sys\nprint('out1')\nprint('err1', file=sys.stderr)\nprint('out2')\nsys.stderr.write('err2\\n')")
        #expect(c.stdout == "out1\nout2\n")
        #expect(c.stderr == "err1\nerr2\n")
        let d = try await f.run("ws", "1/0")
        #expect(d.outcome.status == .error)
        #expect(d.outcome.error?.name == "ZeroDivisionError")
        #expect(d.stderr.contains("ZeroDivisionError"))
        let e = try await f.run("ws", "x")
        #expect(e.outcome.result == "41")
        #expect(e.outcome.wallNanos > 0)
        await f.close()
    }

    @Test func outputStreamsWhileTheCellRuns() async throws {
        let f = try await KernelFixture.make()
        let rec = EventRecorder()
        _ = try await f.service.attach(workspace: "ws", directory: f.workspace("ws"), observer: rec)
        let id = try await f.service.submit(workspace: "ws", directory: f.workspace("ws"),
                                            code: "import time\nprint('first')\ntime.sleep(1.5)\nprint('second')", requester: "t")
        let first = await rec.wait { if case .output(id, .stdout, let t) = $0 { return t.contains("first") } else { return false } }
        #expect(first != nil)
        // The first line arrived while the cell still runs.
        let finishedEarly = rec.all.contains { if case .finished = $0.event { return true } else { return false } }
        #expect(!finishedEarly)
        let done = await rec.wait { if case .finished(let o) = $0 { return o.executionID == id } else { return false } }
        #expect(done != nil)
        #expect(rec.output(.stdout) == "first\nsecond\n")
        // Sequence numbers increase by one.
        let seqs = rec.all.map(\.seq)
        #expect(seqs == Array(seqs.first!...seqs.last!))
        f.service.detach(workspace: "ws", observer: rec)
        await f.close()
    }

    @Test func interruptStopsABusyLoopAndKeepsState() async throws {
        let f = try await KernelFixture.make()
        _ = try await f.run("ws", "y = 7")
        let rec = EventRecorder()
        _ = try await f.service.attach(workspace: "ws", directory: f.workspace("ws"), observer: rec)
        let id = try await f.service.submit(workspace: "ws", directory: f.workspace("ws"), code: "while True:\n    pass", requester: "t")
        _ = await rec.wait { if case .started(id, _) = $0 { return true } else { return false } }
        try await Task.sleep(nanoseconds: 300_000_000)
        let t0 = monotonicNanos()
        try await f.service.interrupt(workspace: "ws")
        let done = await rec.wait { if case .finished(let o) = $0 { return o.executionID == id } else { return false } }
        guard case .finished(let o) = done else { Issue.record("no finish after interrupt"); return }
        #expect(o.status == .interrupted)
        #expect(monotonicNanos() - t0 < 2_000_000_000)
        #expect(try await f.run("ws", "y").outcome.result == "7")
        f.service.detach(workspace: "ws", observer: rec)
        await f.close()
    }

    @Test func restartClearsState() async throws {
        let f = try await KernelFixture.make()
        _ = try await f.run("ws", "z = 1")
        try await f.service.restart(workspace: "ws", directory: f.workspace("ws"))
        let r = try await f.run("ws", "z")
        #expect(r.outcome.status == .error)
        #expect(r.outcome.error?.name == "NameError")
        await f.close()
    }

    @Test func kernelsAreIsolated() async throws {
        let f = try await KernelFixture.make()
        let listener = try HostListener()
        let ws = f.workspace("iso")
        let code = """
        import ctypes, errno, json, os, socket
        res = {}
        def attempt(name, fn):
            try:
                fn(); res[name] = 'ok'
            except OSError as e:
                res[name] = errno.errorcode.get(e.errno, str(e.errno))
        def connect(host, port):
            s = socket.socket(); s.settimeout(2)
            try: s.connect((host, port))
            finally: s.close()
        attempt('host_loopback', lambda: connect('127.0.0.1', \(listener.port)))
        attempt('internet', lambda: connect('1.1.1.1', 53))
        def write(p):
            with open(p, 'w') as fh: fh.write('x')
        for p in ['/root_file', '/usr/x', '/etc/x', '/opt/kernel/x', '/proc/sys/kernel/hostname', '/workspace/ok.txt', '/tmp/ok.txt']:
            attempt('write:' + p, lambda p=p: write(p))
        res['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
        res['uid'] = os.getuid()
        libc = ctypes.CDLL(None, use_errno=True)
        def sys_ret(r):
            if r != 0: raise OSError(ctypes.get_errno(), 'x')
        attempt('unshare', lambda: sys_ret(libc.unshare(0x10000000 | 0x00020000)))
        attempt('mount', lambda: sys_ret(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)))
        res['interfaces'] = sorted(os.listdir('/sys/class/net'))
        print(json.dumps(res))
        """
        let r = try await f.run("iso", code)
        #expect(r.outcome.status == .ok, "\(r.stderr)")
        let res = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(res["host_loopback"] as? String == "ECONNREFUSED")
        #expect(["ENETUNREACH", "EHOSTUNREACH"].contains(res["internet"] as? String ?? ""))
        for p in ["/root_file", "/usr/x", "/etc/x", "/opt/kernel/x", "/proc/sys/kernel/hostname"] {
            #expect(["EROFS", "EACCES"].contains(res["write:" + p] as? String ?? ""), "write \(p): \(res["write:" + p] ?? "nil")")
        }
        #expect(res["write:/workspace/ok.txt"] as? String == "ok")
        #expect(res["write:/tmp/ok.txt"] as? String == "ok")
        let pids = res["pids"] as? [Int] ?? []
        #expect(pids.contains(1) && pids.count <= 4, "visible pids: \(pids)")
        #expect(res["uid"] as? Int == 1000)
        #expect(res["unshare"] as? String == "EPERM")
        #expect(res["mount"] as? String == "EPERM")
        #expect(res["interfaces"] as? [String] == ["lo"])
        // The file written to /workspace is in the host directory, owned by the kernel's host uid.
        var st = stat()
        #expect(stat(ws + "/ok.txt", &st) == 0)
        #expect(Int(st.st_uid) == f.settings.uidBase + 1000)
        await f.close()
    }

    @Test func forkBombAndMemoryBombAreContained() async throws {
        let f = try await KernelFixture.make { $0.statsHz = 10 }
        _ = try await f.run("b", "w = 'still here'")
        let rec = EventRecorder()
        _ = try await f.service.attach(workspace: "a", directory: f.workspace("a"), observer: rec)
        // Fork bomb: held by the pids limit while kernel B keeps answering.
        let bomb = """
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, '-c', 'import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass'])
        time.sleep(2)
        print('survived')
        """
        let fork = try await f.run("a", bomb)
        #expect(fork.stdout == "survived\n", "\(fork.stderr)")
        let notice = await rec.wait(timeout: 5) { if case .notice("pids_limit", _) = $0 { return true } else { return false } }
        #expect(notice != nil)
        let stats = rec.all.compactMap { r -> KernelStats? in if case .stats(let s) = r.event { return s } else { return nil } }
        #expect(stats.contains { $0.pids >= Int64(f.settings.pids) - 1 }, "max pids seen: \(stats.map(\.pids).max() ?? 0)")
        #expect(try await f.run("b", "w").outcome.result == "'still here'")
        try await f.service.restart(workspace: "a", directory: f.workspace("a"))

        // Memory bomb: the OOM killer takes kernel A, which is reported; B is untouched.
        let oom = try await f.run("a", "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")
        #expect(oom.outcome.status == .died)
        let dead = await rec.wait { if case .state(.dead, let reason) = $0 { return reason?.contains("out of memory") == true } else { return false } }
        #expect(dead != nil, "\(rec.all.map(\.event))")
        #expect(try await f.run("b", "w").outcome.result == "'still here'")
        // A dead kernel starts afresh on the next execution.
        #expect(try await f.run("a", "1 + 1").outcome.result == "2")
        f.service.detach(workspace: "a", observer: rec)
        await f.close()
    }

    @Test func tmpIsASizeLimitedTmpfs() async throws {
        let f = try await KernelFixture.make { $0.tmpMB = 16 }
        let r = try await f.run("ws", """
        import errno
        try:
            with open('/tmp/fill', 'wb') as fh:
                for _ in range(64): fh.write(b'x' * (1 << 20))
            print('no limit')
        except OSError as e:
            print(errno.errorcode[e.errno])
        """)
        #expect(r.stdout == "ENOSPC\n")
        await f.close()
    }

    @Test func idleKernelsAreStopped() async throws {
        let f = try await KernelFixture.make { $0.idleTimeout = 0.5 }
        _ = try await f.run("ws", "1")
        #expect(await f.service.counts().containers == 1)
        let deadline = monotonicNanos() + 8_000_000_000
        while await f.service.state(workspace: "ws") != .stopped && monotonicNanos() < deadline {
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(await f.service.state(workspace: "ws") == .stopped)
        // The state says stopped at once; the container is gone once removed and reaped.
        while await f.service.counts().containers > 0 && monotonicNanos() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(await f.service.counts().containers == 0)
        await f.close()
    }

    @Test func warmPoolContainerAttachesToTheWorkspace() async throws {
        let f = try await KernelFixture.make { $0.poolSize = 1 }
        let deadline = monotonicNanos() + 10_000_000_000
        while await f.service.counts().pool < 1 && monotonicNanos() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(await f.service.counts().pool == 1)
        let ws = f.workspace("pooled")
        try "hello from the host".write(toFile: ws + "/note.txt", atomically: true, encoding: .utf8)
        let r = try await f.run("pooled", "import os\nprint(os.getcwd())\nprint(open('note.txt').read())\nopen('back.txt', 'w').write('hi')")
        #expect(r.stdout == "/workspace\nhello from the host\n", "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: ws + "/back.txt"))
        // The pool is refilled.
        while await f.service.counts().pool < 1 && monotonicNanos() < deadline + 10_000_000_000 { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(await f.service.counts().containers == 2)
        await f.close()
    }

    @Test func bashAndNodeKernelsKeepState() async throws {
        let f = try await KernelFixture.make()
        _ = try await f.run("sh", "X=5\ncd /tmp", kernel: "bash")
        let b = try await f.run("sh", "echo $((X + 1)) $(pwd)", kernel: "bash")
        #expect(b.stdout == "6 /tmp\n", "\(b.stderr)")
        let bad = try await f.run("sh", "false", kernel: "bash")
        #expect(bad.outcome.status == .error)
        _ = try await f.run("js", "let a = 2", kernel: "node")
        let n = try await f.run("js", "console.log('hi'); a * 21", kernel: "node")
        #expect(n.outcome.result == "42")
        #expect(n.stdout == "hi\n")
        await f.close()
    }

    @Test func oneShotRunsAreEphemeralWithAHardTimeout() async throws {
        let f = try await KernelFixture.make()
        let ok = try await f.service.run(code: "import os\nprint(len(os.listdir('/workspace')))", timeout: 10)
        #expect(ok.stdout == "0\n")
        #expect(ok.outcome.status == .ok)
        let t0 = monotonicNanos()
        let slow = try await f.service.run(code: "while True: pass", timeout: 1)
        #expect(slow.outcome.status == .timeout)
        #expect(monotonicNanos() - t0 < 5_000_000_000)
        #expect(await f.service.counts().containers == 0)
        await f.close()
    }

    @Test func limitsAreEnforcedWithClearErrors() async throws {
        let f = try await KernelFixture.make { $0.maxKernels = 1; $0.diskQuotaMB = 1; $0.maxCodeBytes = 1000 }
        _ = try await f.run("one", "1")
        await #expect(throws: KernelError.self) { _ = try await f.run("two", "1") }
        do { _ = try await f.run("two", "1") } catch { #expect(error.code == .hostLimit) }
        do { _ = try await f.run("one", String(repeating: "#", count: 2000)) } catch { #expect(error.code == .codeTooLarge) }
        // Over the disk quota: new executions are refused until files are deleted.
        let rec = EventRecorder()
        _ = try await f.service.attach(workspace: "one", directory: f.workspace("one"), observer: rec)
        _ = try await f.run("one", "open('big', 'wb').write(b'x' * (3 << 20))")
        let over = await rec.wait { if case .notice("disk_quota_exceeded", _) = $0 { return true } else { return false } }
        #expect(over != nil)
        do { _ = try await f.run("one", "1"); Issue.record("ran over quota") } catch { #expect(error.code == .diskQuota) }
        f.service.detach(workspace: "one", observer: rec)
        await f.close()
    }

    @Test func aTightPrintLoopIsSlowedToTheRateAndLosesNothing() async throws {
        let f = try await KernelFixture.make { $0.outputRateBytes = 64 * 1024 }
        _ = try await f.run("quiet", "q = 1")
        let rec = EventRecorder()
        _ = try await f.service.attach(workspace: "loud", directory: f.workspace("loud"), observer: rec)
        // About 330 KB of output: the one-second burst and the 64 KiB pipe take 128 KiB, the
        // rest needs three more seconds at 64 KiB/s.
        let id = try await f.service.submit(workspace: "loud", directory: f.workspace("loud"),
                                            code: "for i in range(55000):\n    print(i)", requester: "t")
        try await Task.sleep(nanoseconds: 300_000_000)
        // Another kernel answers promptly meanwhile.
        let t0 = monotonicNanos()
        #expect(try await f.run("quiet", "q").outcome.result == "1")
        #expect(monotonicNanos() - t0 < 500_000_000)
        let done = await rec.wait(timeout: 20) { if case .finished(let o) = $0 { return o.executionID == id } else { return false } }
        guard case .finished(let o) = done else { Issue.record("the loud cell did not finish"); return }
        #expect(o.status == .ok)
        #expect(o.wallNanos > 1_500_000_000, "not slowed down: \(o.wallNanos / 1_000_000) ms")
        // Every line arrived, in order.
        let lines = rec.output(.stdout).split(separator: "\n")
        #expect(lines.count == 55000)
        #expect(lines.first == "0" && lines.last == "54999")
        // Coalesced: far fewer events than lines.
        let events = rec.all.filter { if case .output = $0.event { return true } else { return false } }.count
        #expect(events < 5000, "\(events) output events")
        f.service.detach(workspace: "loud", observer: rec)
        await f.close()
    }

    @Test func aKernelThatFloodsItsEventPipeIsRemoved() async throws {
        let f = try await KernelFixture.make()
        // User code can reach the driver's event descriptor through /proc: a 9 MiB line without
        // a newline breaks the protocol.
        let r = try await f.run("bad", """
        import os
        for fd in os.listdir('/proc/self/fd'):
            try:
                if os.readlink('/proc/self/fd/' + fd).startswith('pipe:') and int(fd) > 2:
                    os.write(int(fd), b'x' * (9 << 20))
            except OSError:
                pass
        """)
        #expect(r.outcome.status == .died)
        #expect(await f.service.state(workspace: "bad") == .dead)
        #expect(try await f.run("bad", "1 + 1").outcome.result == "2")
        await f.close()
    }

    @Test func unsafeHostBackendRunsTheSameDrivers() async throws {
        let f = try await KernelFixture.make { $0.backend = "unsafe-host" }
        _ = try await f.run("dev", "v = 3")
        let r = try await f.run("dev", "v * 2")
        #expect(r.outcome.result == "6")
        await f.close()
    }
}
