// Change notification for a workspace tree: inotify on every directory, driven by a loop.
//
// Directories are opened with the same scoped openat2 as every other access and watched
// through their /proc/self/fd magic link, so a symlink planted in the tree can never make us
// watch (or report) anything outside it. New directories are watched as they appear and then
// scanned, because files created in them before the watch existed raise no event.
import CTandemSystem
public import TandemLoop
#if canImport(Glibc)
import Glibc
#endif

/// Watches one workspace and calls `handler` on the loop with batches of ``FileChange``s.
/// Events for the same path within the coalescing window are merged; the temp files of
/// ``WorkspaceFS/write(_:_:expectedSHA256:createOnly:maxBytes:)`` are never reported, their
/// final rename is reported as `modified` of the target.
///
/// Loop-confined: create, use and ``cancel()`` it on its loop's thread.
public final class WorkspaceWatcher {
    public typealias Handler = ([FileChange]) -> Void

    /// Most directories watched at once; beyond it a directory is reported as `unwatched`.
    public let maxWatches: Int
    /// How long changes are collected before delivery (at most 50 ms).
    public let windowNanos: UInt64
    /// Set once a directory could not be watched because of ``maxWatches`` or the system's
    /// `max_user_watches`.
    public private(set) var limitReached = false
    /// Directories watched now.
    public var watchCount: Int { directories.count }

    private let fs: WorkspaceFS
    private unowned let loop: Loop
    private let handler: Handler
    private var inotifyFD: Int32
    private var registration: FileDescriptorWatch?
    /// Watch descriptor → workspace-relative directory path ("" for the root), and back.
    private var directories: [Int32: String] = [:]
    private var watchByPath: [String: Int32] = [:]
    /// IN_MOVED_FROM halves waiting for their IN_MOVED_TO (same cookie); unpaired ones are
    /// moves out of the watched tree and become `deleted` at the next delivery.
    private var pendingMoves: [UInt32: (path: String, isDirectory: Bool, isTemp: Bool)] = [:]
    private var changes = ChangeCoalescer()
    private var flushTimer: UInt64?

    /// Entries read per directory when scanning (beyond it the directory's content is not
    /// reported or descended into).
    private static let maxScanEntries = 100_000

    private static let mask = CTANDEM_IN_CREATE | CTANDEM_IN_MODIFY | CTANDEM_IN_CLOSE_WRITE | CTANDEM_IN_DELETE
        | CTANDEM_IN_MOVED_FROM | CTANDEM_IN_MOVED_TO | CTANDEM_IN_EXCL_UNLINK

    /// Starts watching every directory of `fs`'s workspace (up to `maxWatches`). Must run on
    /// `loop`'s thread; `handler` runs there too.
    public init(fs: WorkspaceFS, loop: Loop, maxWatches: Int = 8192, windowNanos: UInt64 = 20_000_000,
                handler: @escaping Handler) throws(FileError) {
        precondition(loop.handle.inLoop, "WorkspaceWatcher must be created on its loop")
        self.fs = fs
        self.loop = loop
        self.handler = handler
        self.maxWatches = max(1, maxWatches)
        self.windowNanos = min(windowNanos, 50_000_000)
        let fd = ctandem_inotify_init()
        if fd < 0 { throw FileError.from(errno: -fd, "inotify_init1", path: "") }
        inotifyFD = fd
        watchTree(.root, report: false)
        do throws(IOError) {
            registration = try loop.watch(fd: fd, events: Epoll.readable) { [weak self] _ in self?.readEvents() }
        } catch {
            _ = ctandem_close(fd)
            inotifyFD = -1
            throw FileError(.io, "epoll_ctl: \(error)", errno: error.errno)
        }
        // Changes found while watching (the `unwatched` report) go out with the first delivery.
        scheduleFlush()
    }

    /// Watches the workspace directory at `root` (opened here, like ``WorkspaceFS``).
    public convenience init(root: String, loop: Loop, maxWatches: Int = 8192, windowNanos: UInt64 = 20_000_000,
                            handler: @escaping Handler) throws(FileError) {
        try self.init(fs: WorkspaceFS(root: root), loop: loop, maxWatches: maxWatches, windowNanos: windowNanos, handler: handler)
    }

    deinit {
        // Only the descriptor: the loop may already be going away. Closing it removes it from
        // epoll; call cancel() to drop the registration as well.
        if inotifyFD >= 0 { _ = ctandem_close(inotifyFD) }
    }

    /// Stops watching; pending changes are dropped. Safe to call more than once.
    public func cancel() {
        guard inotifyFD >= 0 else { return }
        registration?.cancel()
        registration = nil
        if let t = flushTimer { loop.cancelTimer(t) }
        flushTimer = nil
        _ = ctandem_close(inotifyFD)
        inotifyFD = -1
        directories = [:]
        watchByPath = [:]
    }

    // MARK: Watches

    /// Watches `start` and the directories below it. With `report`, every entry found is
    /// reported as `created`: the directory just appeared, so its content is new, and it may
    /// have been created before our watch could see it.
    private func watchTree(_ start: WorkspacePath, report: Bool) {
        var stack = [start]
        while let dir = stack.popLast() {
            guard addWatch(dir) else { continue }
            let listed: [FileEntry]
            do throws(FileError) {
                let fd = try fs.open(dir, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY)
                listed = try fs.entries(of: fd, path: dir, limit: Self.maxScanEntries).0
            } catch {
                continue  // gone or replaced since it was seen
            }
            for e in listed {
                if report { changes.add(FileChange(path: e.path, kind: .created, isDirectory: e.kind == .directory)) }
                if e.kind == .directory && dir.components.count + 1 <= WorkspacePath.maxComponents {
                    stack.append(.trusted(dir.components + [e.name]))
                }
            }
        }
    }

    private func addWatch(_ dir: WorkspacePath) -> Bool {
        if let wd = watchByPath[dir.string], directories[wd] == dir.string { return true }
        guard directories.count < maxWatches else {
            reportLimit(dir)
            return false
        }
        // O_PATH | O_DIRECTORY beneath the root, no symlinks: the directory really is ours.
        let wd: Int32
        do throws(FileError) {
            let fd = try fs.open(dir, CTANDEM_O_PATH | CTANDEM_O_DIRECTORY)
            wd = ctandem_inotify_add_fd(inotifyFD, fd.raw, Self.mask)
        } catch {
            return false  // gone, or no longer a directory of ours
        }
        if wd < 0 {
            if -wd == ENOSPC { reportLimit(dir) }
            return false
        }
        if let old = directories[wd], watchByPath[old] == wd { watchByPath[old] = nil }
        directories[wd] = dir.string
        watchByPath[dir.string] = wd
        return true
    }

    private func reportLimit(_ dir: WorkspacePath) {
        limitReached = true
        changes.add(FileChange(path: dir.string, kind: .unwatched, isDirectory: true))
    }

    /// Forgets (and removes) the watches of `path` and everything below it.
    private func unwatchTree(_ path: String) {
        for (p, wd) in watchByPath where Self.isWithin(p, path) {
            _ = ctandem_inotify_rm(inotifyFD, wd)
            directories[wd] = nil
            watchByPath[p] = nil
        }
    }

    /// A watched directory moved from `from` to `to` inside the tree: its watches stay, their
    /// paths change.
    private func moveWatches(from: String, to: String) {
        let moved = watchByPath.filter { Self.isWithin($0.key, from) }
        for (p, _) in moved { watchByPath[p] = nil }
        for (p, wd) in moved {
            let q = to + String(decoding: p.utf8.dropFirst(from.utf8.count), as: UTF8.self)
            directories[wd] = q
            watchByPath[q] = wd
        }
    }

    private static func isWithin(_ p: String, _ dir: String) -> Bool {
        dir.isEmpty || p == dir || p.utf8.starts(with: (dir + "/").utf8)
    }

    // MARK: Events

    private func readEvents() {
        guard inotifyFD >= 0 else { return }
        let buffer = loop.scratchBuffer
        while inotifyFD >= 0 {
            let n = ctandem_read(inotifyFD, buffer.baseAddress, buffer.count)
            if n <= 0 { break }  // EAGAIN: drained
            var pos = 0
            var wd: Int32 = 0
            var mask: UInt32 = 0
            var cookie: UInt32 = 0
            var name: UnsafePointer<CChar>?
            while ctandem_inotify_next(buffer.baseAddress, n, &pos, &wd, &mask, &cookie, &name) == 1 {
                handle(wd: wd, mask: mask, cookie: cookie, name: name)
            }
        }
        scheduleFlush()
    }

    private func handle(wd: Int32, mask: UInt32, cookie: UInt32, name rawName: UnsafePointer<CChar>?) {
        if mask & CTANDEM_IN_Q_OVERFLOW != 0 {
            changes.add(FileChange(path: "", kind: .overflow, isDirectory: true))
            // Directories created during the overflow have no watch yet.
            watchTree(.root, report: false)
            return
        }
        guard let dir = directories[wd] else { return }
        if mask & CTANDEM_IN_IGNORED != 0 {
            // The directory is gone (or we removed the watch).
            directories[wd] = nil
            if watchByPath[dir] == wd { watchByPath[dir] = nil }
            return
        }
        guard let rawName, rawName.pointee != 0 else { return }  // events on the directory itself
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(rawName).assumingMemoryBound(to: UInt8.self), count: strlen(rawName))
        guard WorkspacePath.isAddressable(name: bytes) else { return }
        let name = String(decoding: bytes, as: UTF8.self)
        let path = dir.isEmpty ? name : dir + "/" + name
        let isDirectory = mask & CTANDEM_IN_ISDIR != 0
        let isTemp = bytes.starts(with: Sys.tempPrefix.utf8)

        if mask & CTANDEM_IN_MOVED_FROM != 0 {
            pendingMoves[cookie] = (path, isDirectory, isTemp)
            return
        }
        if mask & CTANDEM_IN_MOVED_TO != 0 {
            guard !isTemp else {
                // Into a temp name: the old file RENAME_EXCHANGE displaces, about to be removed.
                pendingMoves[cookie] = nil
                return
            }
            if let from = pendingMoves.removeValue(forKey: cookie) {
                if from.isTemp {
                    changes.add(FileChange(path: path, kind: .modified, isDirectory: isDirectory))
                } else {
                    changes.add(FileChange(path: path, kind: .renamed(from: from.path), isDirectory: isDirectory))
                    if isDirectory {
                        if watchByPath[from.path] != nil {
                            moveWatches(from: from.path, to: path)
                        } else {
                            // Renamed before we could watch it (right after its creation).
                            watchTree(.trusted(path.split(separator: "/").map(String.init)), report: true)
                        }
                    }
                }
            } else {
                // Moved in from outside the watched tree.
                changes.add(FileChange(path: path, kind: .created, isDirectory: isDirectory))
                if isDirectory { watchTree(.trusted(path.split(separator: "/").map(String.init)), report: true) }
            }
            return
        }
        if isTemp { return }
        if mask & CTANDEM_IN_CREATE != 0 {
            changes.add(FileChange(path: path, kind: .created, isDirectory: isDirectory))
            if isDirectory { watchTree(.trusted(path.split(separator: "/").map(String.init)), report: true) }
        }
        if mask & (CTANDEM_IN_MODIFY | CTANDEM_IN_CLOSE_WRITE) != 0 && !isDirectory {
            changes.add(FileChange(path: path, kind: .modified))
        }
        if mask & CTANDEM_IN_DELETE != 0 {
            changes.add(FileChange(path: path, kind: .deleted, isDirectory: isDirectory))
        }
    }

    private func scheduleFlush() {
        guard flushTimer == nil, !changes.isEmpty || !pendingMoves.isEmpty else { return }
        flushTimer = loop.schedule(afterNanos: windowNanos) { [weak self] in self?.flush() }
    }

    private func flush() {
        flushTimer = nil
        guard inotifyFD >= 0 else { return }
        // Moves whose other half never came left the watched tree.
        for (_, from) in pendingMoves where !from.isTemp {
            changes.add(FileChange(path: from.path, kind: .deleted, isDirectory: from.isDirectory))
            if from.isDirectory { unwatchTree(from.path) }
        }
        pendingMoves = [:]
        let batch = changes.take()
        if !batch.isEmpty { handler(batch) }
    }
}

@available(*, unavailable)
extension WorkspaceWatcher: Sendable {}
