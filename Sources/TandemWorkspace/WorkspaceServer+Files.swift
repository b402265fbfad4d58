// Files through the protocol and REST: every path goes through WorkspaceFS (openat2 beneath the
// workspace root, no symbolic links), writes are atomic, and everyone in the workspace hears
// about changes (from people here, from kernels through the watcher).
import TandemAudit
import TandemCrypto
import TandemFiles
import TandemProtocol
import TandemStore

extension ProtocolError {
    init(_ e: FileError) { self.init(e.code.rawValue, e.message) }
}

extension WorkspaceServer {
    func fs(_ workspace: String) throws(ProtocolError) -> WorkspaceFS {
        if let f = fileSystemsGet(workspace) { return f }
        do {
            let f = try WorkspaceFS(root: directory(workspace), owner: settings.fileOwner)
            fileSystemsPut(workspace, f)
            return f
        } catch {
            throw ProtocolError(error)
        }
    }

    func path(_ raw: String) throws(ProtocolError) -> WorkspacePath {
        do { return try WorkspacePath(raw) } catch { throw ProtocolError(error) }
    }

    func fileTree(_ workspace: String, path raw: String) throws(ProtocolError) -> String {
        let fs = try fs(workspace)
        let prefix = try path(raw).string
        let tree: FileTree
        do { tree = try fs.tree(maxEntries: 10_000, maxDepth: 32) } catch { throw ProtocolError(error) }
        let items = tree.entries.filter { prefix.isEmpty || $0.path == prefix || $0.path.hasPrefix(prefix + "/") }.map { e in
            "{\"path\":\(JSONText.quote(e.path)),\"kind\":\"\(e.kind.rawValue)\",\"size\":\(e.size),\"mtime\":\(e.mtimeNanos / 1_000_000)}"
        }
        return "{\"entries\":[\(items.joined(separator: ","))],\"truncated\":\(tree.truncated)}"
    }

    func rawFile(_ workspace: String, path raw: String) throws(ProtocolError) -> (bytes: [UInt8], sha256: String) {
        let fs = try fs(workspace)
        let p = try path(raw)
        do {
            let c = try fs.read(p, maxBytes: settings.maxFileBytes)
            return (c.bytes, Hex.encode(c.sha256))
        } catch {
            throw ProtocolError(error)
        }
    }

    func readFile(_ workspace: String, path raw: String) throws(ProtocolError) -> String {
        let file = try rawFile(workspace, path: raw)
        let shown = JSONText.quote(raw)
        if let text = String(validating: file.bytes, as: UTF8.self) {
            return "{\"path\":\(shown),\"content\":\(JSONText.quote(text)),\"sha256\":\"\(file.sha256)\",\"size\":\(file.bytes.count)}"
        }
        return "{\"path\":\(shown),\"base64\":\"\(Base64.encode(file.bytes))\",\"sha256\":\"\(file.sha256)\",\"size\":\(file.bytes.count)}"
    }

    func writeFile(_ workspace: String, path raw: String, bytes: [UInt8], baseSHA256: String?, createOnly: Bool,
                   by p: Caller) throws(ProtocolError) -> String {
        let fs = try fs(workspace)
        let target = try path(raw)
        if overQuota.withLock({ $0.contains(workspace) }) {
            audit?.record(.quotaDenied, p, workspace: workspace, outcome: .denied) { e in e.add("quota", text: "workspace_disk") }
            throw ProtocolError("workspace_quota_exceeded", "the workspace is over its disk quota (kernels.diskQuotaMB = \(kernels.settings.diskQuotaMB)); delete files first")
        }
        defer { kernels.checkDisk(workspace: workspace, directory: directory(workspace)) }
        var expected: [UInt8]?
        if let base = baseSHA256 {
            guard let b = Hex.decode(base), b.count == 32 else { throw .invalid("baseSha256 must be 64 hex digits") }
            expected = b
        }
        let sha: [UInt8]
        do {
            sha = try fs.write(target, bytes, expectedSHA256: expected, createOnly: createOnly, maxBytes: settings.maxFileBytes)
        } catch where error.code == .notFound && target.components.count > 1 && expected == nil {
            // A new file in a new directory: create the directories (beneath the root, no links).
            do {
                try fs.mkdir(try WorkspacePath(target.components.dropLast().joined(separator: "/")), parents: true)
                sha = try fs.write(target, bytes, expectedSHA256: nil, createOnly: createOnly, maxBytes: settings.maxFileBytes)
            } catch {
                throw ProtocolError(error)
            }
        } catch {
            throw ProtocolError(error)
        }
        fileChanged(workspace, [(target.string, "modified")], by: p)
        audit?.record(.fileWrite, p, workspace: workspace) { [audit] e in
            audit?.identifier(&e, "path", target.string)
            e.add("bytes", bytes.count)
            if let audit { e.addDigest("content", of: bytes, key: audit.key) }
        }
        return "{\"sha256\":\"\(Hex.encode(sha))\",\"size\":\(bytes.count)}"
    }

    func mkdir(_ workspace: String, path raw: String, by p: Caller) throws(ProtocolError) -> String {
        let fs = try fs(workspace)
        let target = try path(raw)
        do { try fs.mkdir(target, parents: true) } catch { throw ProtocolError(error) }
        fileChanged(workspace, [(target.string, "created")], by: p)
        audit?.record(.fileCreate, p, workspace: workspace) { [audit] e in
            audit?.identifier(&e, "path", target.string)
            e.add("kind", text: "directory")
        }
        return "{}"
    }

    func renameFile(_ workspace: String, from: String, to: String, overwrite: Bool, by p: Caller) throws(ProtocolError) -> String {
        let fs = try fs(workspace)
        let a = try path(from), b = try path(to)
        do { try fs.rename(from: a, to: b, overwrite: overwrite) } catch { throw ProtocolError(error) }
        fileChanged(workspace, [(a.string, "deleted"), (b.string, "created")], by: p)
        audit?.record(.fileRename, p, workspace: workspace) { [audit] e in
            audit?.identifier(&e, "from", a.string)
            audit?.identifier(&e, "to", b.string)
        }
        return "{}"
    }

    func deleteFile(_ workspace: String, path raw: String, recursive: Bool, by p: Caller) throws(ProtocolError) -> String {
        let fs = try fs(workspace)
        let target = try path(raw)
        guard !target.isRoot else { throw .invalid("the workspace root cannot be deleted this way") }
        let n: Int
        do { n = try fs.delete(target, recursive: recursive) } catch { throw ProtocolError(error) }
        kernels.checkDisk(workspace: workspace, directory: directory(workspace))
        fileChanged(workspace, [(target.string, "deleted")], by: p)
        audit?.record(.fileDelete, p, workspace: workspace) { [audit] e in
            audit?.identifier(&e, "path", target.string)
            e.add("entries", n)
        }
        return "{\"deleted\":\(n)}"
    }

    /// `file.changed` to everyone in the workspace; `by` is nil for changes the kernel made.
    /// Changes made here are announced at once with their author, and the watcher's report of
    /// the same paths in the next second is not repeated.
    func fileChanged(_ workspace: String, _ changes: [(path: String, kind: String)], by p: Caller?) {
        let now = ContinuousClock.now
        var changes = changes
        if p != nil {
            recentWrites.withLock { r in
                for c in changes { r[workspace + "\u{0}" + c.path] = now }
            }
        } else {
            changes = recentWrites.withLock { r in
                r = r.filter { now - $0.value < .seconds(1) }
                return changes.filter { r[workspace + "\u{0}" + $0.path] == nil }
            }
            if changes.isEmpty { return }
        }
        let list = changes.map { "{\"path\":\(JSONText.quote($0.path)),\"kind\":\"\($0.kind)\"}" }.joined(separator: ",")
        let json = "{\"type\":\"file.changed\",\"workspace\":\(JSONText.quote(workspace)),\"changes\":[\(list)],\"by\":\(p.map { JSONText.quote($0.user.name) } ?? "null")}"
        channel(workspace).broadcast(Delivery(workspace: workspace, seq: nil, kind: .control, json: json, outputBytes: 0))
    }
}
