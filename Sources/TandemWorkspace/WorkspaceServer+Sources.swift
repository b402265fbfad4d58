// Where a new workspace's files come from: nothing, a template under config/templates, or a git
// clone (network URLs when allowed; file:// URLs and paths only under the configured clone roots,
// so a user cannot copy out arbitrary repositories of the server's machine). And the watcher
// that turns the kernel's own file changes into `file.changed` events.
import TandemFiles
import TandemLoop
import TandemProtocol
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import Foundation

enum WorkspaceSource: Sendable {
    case empty
    case template(String)
    case git(String)
}

extension WorkspaceServer {
    /// Template names, for `GET /api/v1/templates`.
    public func templateNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: settings.templates)) ?? [])
            .filter { !$0.hasPrefix(".") }.sorted()
    }

    func templateDirectory(_ name: String) throws(ProtocolError) -> String {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix("."), templateNames().contains(name) else {
            throw .notFound("no template \(name) (have: \(templateNames().joined(separator: ", ")))")
        }
        return settings.templates + "/" + name
    }

    func checkCloneURL(_ url: String) throws(ProtocolError) -> String {
        guard !url.hasPrefix("-"), url.utf8.count < 2048 else { throw .invalid("not a git URL") }
        if url.hasPrefix("https://") || url.hasPrefix("http://") {
            guard settings.allowNetworkClone else { throw .forbidden("cloning from the network is disabled (workspaces.allowNetworkClone)") }
            return url
        }
        var path = url
        if url.hasPrefix("file://") { path = String(url.dropFirst(7)) }
        guard path.hasPrefix("/") else { throw .invalid("git URLs are https://, http://, file:// or an absolute path") }
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard settings.cloneRoots.contains(where: { real == $0 || real.hasPrefix($0 + "/") }) else {
            throw .forbidden("local repositories can only be cloned from workspaces.cloneRoots")
        }
        return real
    }

    func populate(_ dir: String, from source: WorkspaceSource) async throws(ProtocolError) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: false)
        } catch {
            throw ProtocolError("io", "cannot create the workspace directory")
        }
        switch source {
        case .empty:
            break
        case .template(let t):
            do {
                for item in try fm.contentsOfDirectory(atPath: t) {
                    try fm.copyItem(atPath: t + "/" + item, toPath: dir + "/" + item)
                }
            } catch {
                throw ProtocolError("io", "copying the template failed")
            }
        case .git(let url):
            let result = await runGit(["clone", "--quiet", "--depth", "1", "--no-hardlinks", "--", url, dir + "/.clone"])
            guard result.ok else { throw ProtocolError("clone_failed", "git clone failed: \(result.output.suffix(300))") }
            do {
                for item in try fm.contentsOfDirectory(atPath: dir + "/.clone") {
                    try fm.moveItem(atPath: dir + "/.clone/" + item, toPath: dir + "/" + item)
                }
                try fm.removeItem(atPath: dir + "/.clone")
            } catch {
                throw ProtocolError("io", "moving the clone into place failed")
            }
        }
        if let owner = settings.fileOwner { chownTree(dir, uid: owner.uid, gid: owner.gid) }
    }

    private func runGit(_ args: [String]) async -> (ok: Bool, output: String) {
        await withCheckedContinuation { cont in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            p.arguments = ["-c", "protocol.file.allow=always", "-c", "core.symlinks=true"] + args
            p.environment = ["PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": "/nonexistent", "LANG": "C"]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            p.standardInput = FileHandle.nullDevice
            let finished = Flag()
            p.terminationHandler = { proc in
                finished.set()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                cont.resume(returning: (proc.terminationStatus == 0, String(decoding: data, as: UTF8.self)))
            }
            do {
                try p.run()
                // A clone that hangs (a slow or malicious server) is stopped after two minutes.
                let pid = p.processIdentifier
                DispatchQueue.global().asyncAfter(deadline: .now() + 120) { if !finished.isSet { kill(pid, SIGKILL) } }
            } catch {
                cont.resume(returning: (false, "cannot run git: \(error)"))
            }
        }
    }

    /// Gives a freshly created tree to the kernels' user (lchown, real directories only).
    private func chownTree(_ dir: String, uid: UInt32, gid: UInt32) {
        _ = lchown(dir, uid, gid)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names {
            let p = dir + "/" + n
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { chownTree(p, uid: uid, gid: gid) } else { _ = lchown(p, uid, gid) }
        }
    }

    /// Starts the inotify watcher of a workspace (once): changes the kernel (or anything else)
    /// makes reach everyone as `file.changed` events.
    func startWatching(_ workspace: String) {
        let server = self
        kernels.loop.execute { l in
            let watchers = WatcherRegistry.on(l)
            guard watchers.watchers[workspace] == nil else { return }
            do {
                let w = try WorkspaceWatcher(fs: server.fs(workspace), loop: l, maxWatches: 4096) { changes in
                    server.fileChanged(workspace, changes.flatMap(\.wireChanges), by: nil)
                }
                watchers.watchers[workspace] = w
            } catch {
                server.logger.warning("cannot watch workspace files", metadata: ["workspace": "\(workspace)", "error": "\(error)"])
            }
        }
    }

    func stopWatching(_ workspace: String) {
        kernels.loop.execute { l in WatcherRegistry.on(l).watchers.removeValue(forKey: workspace)?.cancel() }
    }
}

/// The file watchers, on the kernel loop. Loop-confined.
final class WatcherRegistry {
    var watchers: [String: WorkspaceWatcher] = [:]
    static func on(_ loop: Loop) -> WatcherRegistry {
        loop.local("tandem.watchers") { WatcherRegistry() }
    }
}

@available(*, unavailable)
extension WatcherRegistry: Sendable {}

extension FileChange {
    /// As `file.changed` entries: a rename is the old path deleted and the new one created.
    var wireChanges: [(path: String, kind: String)] {
        switch kind {
        case .created: [(path, "created")]
        case .modified: [(path, "modified")]
        case .deleted: [(path, "deleted")]
        case .renamed(let from): [(from, "deleted"), (path, "created")]
        case .overflow: [("", "rescan")]
        case .unwatched: [(path, "unwatched")]
        }
    }
}

/// A one-way flag shared across threads.
final class Flag: Sendable {
    private let value = Synchronization.Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
