// Temporary workspaces on the real file system, a change collector for the watcher, and the
// parent suite that runs everything in this target one test at a time (the watcher tests
// measure latencies; the race tests spin threads).
import Testing
import Synchronization
import TandemLoop
import Logging
@testable import TandemFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) enum FilesSuite {}

private let workspaceCounter = Atomic<Int>(0)

/// `base/ws` is the workspace, `base/outside` a directory beside it with a file that no
/// workspace operation may ever touch.
final class TempWorkspace: Sendable {
    let base: String
    let root: String
    let outside: String
    let fs: WorkspaceFS

    init(owner: (uid: UInt32, gid: UInt32)? = nil) throws {
        let n = workspaceCounter.add(1, ordering: .relaxed).newValue
        base = "/tmp/tandem-ft-\(getpid())-\(n)"
        root = base + "/ws"
        outside = base + "/outside"
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
        try Self.put(outside + "/secret.txt", "secret")
        try Self.put(outside + "/dir/keep.txt", "keep")
        fs = try WorkspaceFS(root: root, owner: owner)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    func path(_ rel: String) -> String { rel.isEmpty ? root : root + "/" + rel }

    static func put(_ absolute: String, _ text: String) throws {
        let fd = open(absolute, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXFailure(call: "open \(absolute)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw POSIXFailure(call: "write", errno: errno)
        }
    }

    /// Creates `rel` inside the workspace with plain POSIX calls (what a kernel would do).
    func put(_ rel: String, _ text: String) throws { try Self.put(path(rel), text) }

    func mkdirs(_ rel: String) throws { try FileManager.default.createDirectory(atPath: path(rel), withIntermediateDirectories: true) }

    func symlink(_ rel: String, to target: String) throws {
        guard Glibc.symlink(target, path(rel)) == 0 else { throw POSIXFailure(call: "symlink", errno: errno) }
    }

    static func contents(_ absolute: String) -> String? {
        guard let data = FileManager.default.contents(atPath: absolute) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func contents(_ rel: String) -> String? { Self.contents(path(rel)) }

    static func exists(_ absolute: String) -> Bool {
        var st = stat()
        return lstat(absolute, &st) == 0
    }

    /// The outside files are all still there, unchanged.
    func outsideIntact() -> Bool {
        Self.contents(outside + "/secret.txt") == "secret" && Self.contents(outside + "/dir/keep.txt") == "keep"
    }

    func lstatOf(_ rel: String) -> stat? {
        var st = stat()
        return lstat(path(rel), &st) == 0 ? st : nil
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    let call: String
    let errno: Int32
    var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

func p(_ s: String) throws(FileError) -> WorkspacePath { try WorkspacePath(s) }

/// Runs `body` and returns the FileError code it throws (nil when it does not throw).
func errorCode<T>(_ body: () throws(FileError) -> T) -> FileError.Code? {
    do {
        _ = try body()
        return nil
    } catch {
        return error.code
    }
}

/// Changes delivered to a watcher's handler, with the monotonic time they arrived.
final class ChangeLog: Sendable {
    private let entries = Mutex<[(change: FileChange, at: UInt64)]>([])
    private let batches = Atomic<Int>(0)

    func append(_ batch: [FileChange]) {
        let now = monotonicNanos()
        batches.add(1, ordering: .relaxed)
        entries.withLock { e in for c in batch { e.append((c, now)) } }
    }

    var all: [(change: FileChange, at: UInt64)] { entries.withLock { $0 } }
    var changes: [FileChange] { all.map(\.change) }

    func reset() { entries.withLock { $0 = [] } }

    /// Waits until a change satisfying `match` has arrived; returns its arrival time.
    func wait(timeoutMillis: Int = 2000, for match: (FileChange) -> Bool) async -> UInt64? {
        let deadline = monotonicNanos() + UInt64(timeoutMillis) * 1_000_000
        while monotonicNanos() < deadline {
            if let hit = all.first(where: { match($0.change) }) { return hit.at }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return nil
    }

    func wait(_ change: FileChange, timeoutMillis: Int = 2000) async -> UInt64? {
        await wait(timeoutMillis: timeoutMillis) { $0 == change }
    }
}

/// A watcher on its own one-thread loop group.
final class WatchFixture: Sendable {
    let group: EventLoopGroup
    let ws: TempWorkspace
    let log = ChangeLog()

    init(ws: TempWorkspace, maxWatches: Int = 8192) async throws {
        var logger = Logger(label: "files-test")
        logger.logLevel = .critical
        group = try EventLoopGroup(count: 1, logger: logger)
        self.ws = ws
        let fs = ws.fs
        let log = self.log
        let failure: String? = await withCheckedContinuation { c in
            group.loops[0].execute { loop in
                do {
                    let w = try WorkspaceWatcher(fs: fs, loop: loop, maxWatches: maxWatches) { log.append($0) }
                    loop.storage["test.watcher"] = w
                    c.resume(returning: nil)
                } catch {
                    c.resume(returning: "\(error)")
                }
            }
        }
        if let failure { throw POSIXFailure(call: "watcher: \(failure)", errno: 0) }
    }

    /// Runs `body` with the watcher on its loop and returns the result.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (WorkspaceWatcher) -> T) async -> T {
        await withCheckedContinuation { c in
            group.loops[0].execute { loop in
                c.resume(returning: body(loop.storage["test.watcher"] as! WorkspaceWatcher))
            }
        }
    }

    func close() async {
        _ = await onLoop { $0.cancel() }
        group.shutdown()
    }
}

/// Counters shared with helper threads.
final class Counters: Sendable {
    let done = Atomic<Bool>(false)
    let reads = Atomic<Int>(0)
    let torn = Atomic<Int>(0)
}
