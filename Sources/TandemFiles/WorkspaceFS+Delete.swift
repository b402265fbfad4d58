// Deletion, recursive deletion included, without ever following a symlink.
//
// The recursive walk holds a descriptor per level and names only single entries relative to
// it: a directory is opened with openat2 (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | O_NOFOLLOW |
// RESOLVE_NO_XDEV) before descending, so if a kernel swaps it for a symlink between our
// getdents and our open, the open fails with ELOOP and we unlink the symlink itself; the files
// it points to are never visited. Mount points are not crossed (EXDEV → `escape`).
import CTandemSystem
#if canImport(Glibc)
import Glibc
#endif

extension WorkspaceFS {
    /// Deepest nesting the recursive delete descends into (one open descriptor per level).
    public static let maxDeleteDepth = 256

    /// Removes the file, symlink (the link itself) or directory at `path` and returns how many
    /// entries were removed. A non-empty directory needs `recursive` (else `not_empty`); the
    /// recursive walk stops with `too_many_entries` after `maxEntries` entries or
    /// ``maxDeleteDepth`` levels, leaving what it has not reached. The root cannot be deleted.
    @discardableResult
    public func delete(_ path: WorkspacePath, recursive: Bool = false, maxEntries: Int = 100_000) throws(FileError) -> Int {
        let name = try leafName(path)
        let dir = try openParent(of: path)
        guard let st = try Sys.statAt(dir.raw, name, shown: path.string) else {
            throw FileError(.notFound, "\(path.string): no such file or directory")
        }
        guard Sys.kind(st.kind) == .directory else {
            try Sys.check(ctandem_unlinkat(dir.raw, name, 0), "unlinkat", shown: path.string)
            return 1
        }
        guard recursive else {
            try Sys.check(ctandem_unlinkat(dir.raw, name, 1), "unlinkat", shown: path.string)
            return 1
        }
        var removed = 0
        var budget = maxEntries
        let sub = try Sys.open(dir.raw, name, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY, shown: path.string)
        var attempt = 0
        while true {
            attempt += 1
            try removeContents(of: sub, path: path.string, depth: 1, budget: &budget, removed: &removed)
            let r = ctandem_unlinkat(dir.raw, name, 1)
            // Refilled by a kernel after we emptied it: empty it again (a few times).
            if r == -ENOTEMPTY && attempt < 4 { continue }
            try Sys.check(r, "unlinkat", shown: path.string)
            return removed + 1
        }
    }

    /// Empties an open directory. Re-reads it until it reads empty, so entries a kernel adds
    /// meanwhile are removed too (each costs budget, so this ends).
    private func removeContents(of dir: borrowing FileDescriptor, path: String, depth: Int, budget: inout Int,
                                removed: inout Int) throws(FileError) {
        guard depth <= Self.maxDeleteDepth else {
            throw FileError(.tooManyEntries, "\(path): nested deeper than \(Self.maxDeleteDepth) levels")
        }
        while true {
            let batch: [Sys.RawEntry]
            do throws(FileError) {
                batch = try Sys.readEntries(dir, limit: max(budget, 0) + 1, shown: path).entries
            } catch {
                // getdents on a directory removed under us fails with ENOENT: nothing left.
                if error.code == .notFound { return }
                throw error
            }
            if batch.isEmpty { return }
            for entry in batch {
                budget -= 1
                if budget < 0 { throw FileError(.tooManyEntries, "\(path): more than the allowed number of entries") }
                let shown = path + "/" + String(decoding: entry.name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let type = UInt32(entry.type)
                if type == Sys.Kind.directory || type == Sys.Kind.unknown {
                    try removeDirectoryEntry(entry.name, in: dir, shown: shown, depth: depth, budget: &budget, removed: &removed)
                } else {
                    let r = ctandem_unlinkat(dir.raw, entry.name, 0)
                    // EISDIR: it became a directory since getdents; the next pass handles it.
                    if r == 0 { removed += 1 } else if r != -ENOENT && r != -EISDIR {
                        throw FileError.from(errno: -r, "unlinkat", path: shown)
                    }
                }
            }
        }
    }

    private func removeDirectoryEntry(_ name: [CChar], in dir: borrowing FileDescriptor, shown: String, depth: Int,
                                      budget: inout Int, removed: inout Int) throws(FileError) {
        let fd = ctandem_openat2(dir.raw, name, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY | CTANDEM_O_NOFOLLOW, 0, Sys.resolve)
        if fd >= 0 {
            let sub = FileDescriptor(raw: fd)
            try removeContents(of: sub, path: shown, depth: depth + 1, budget: &budget, removed: &removed)
            let r = ctandem_unlinkat(dir.raw, name, 1)
            // ENOTEMPTY: refilled after we emptied it; ENOTDIR: replaced by a symlink or file
            // meanwhile. Either way the next pass sees the entry again.
            if r == 0 { removed += 1 } else if r != -ENOENT && r != -ENOTEMPTY && r != -EEXIST && r != -ENOTDIR {
                throw FileError.from(errno: -r, "unlinkat", path: shown)
            }
            return
        }
        switch -fd {
        case ENOENT: return
        case ELOOP, ENOTDIR:
            // A symlink (or a file) now: remove the entry itself, never what it points to.
            let r = ctandem_unlinkat(dir.raw, name, 0)
            if r == 0 { removed += 1 } else if r != -ENOENT && r != -EISDIR {
                throw FileError.from(errno: -r, "unlinkat", path: shown)
            }
        default:
            // EXDEV: a mount point; not ours to empty.
            throw FileError.from(errno: -fd, "openat2", path: shown)
        }
    }
}
