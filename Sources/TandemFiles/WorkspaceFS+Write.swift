// Atomic writes, directory creation and renames.
//
// Race analysis (a kernel may change the tree at any instant between two of our calls):
// - The parent directory is resolved once with openat2 and every later call names a single
//   entry relative to that descriptor. Swapping a path component for a symlink after that has
//   no effect on us; moving the directory elsewhere moves it within the workspace (a kernel
//   cannot rename across its bind mount), and we keep working in the same directory object.
// - The temp file is created O_CREAT | O_EXCL | O_NOFOLLOW with a random name, so a planted
//   file or symlink of that name makes the create fail instead of being written through.
// - rename(2) never follows a symlink in its last component: if the target became a symlink
//   after our check, the link itself is replaced, and nothing outside the workspace is touched.
// - Readers see the old or the new inode, never a partial file (rename is atomic, the data is
//   fsynced before it).
import CTandemSystem
import TandemCrypto
#if canImport(Glibc)
import Glibc
#endif

extension WorkspaceFS {
    /// Replaces (or creates) the regular file at `path` with `bytes`, atomically: the data goes
    /// to a temp file `.tandem-tmp-<random>` in the same directory, which is fsynced and then
    /// renamed over the target. Returns the SHA-256 of `bytes`.
    ///
    /// - `expectedSHA256`: the hash of the content the caller last read; if the current content
    ///   differs (or the file is gone) the write fails with `conflict`. The check is exact for
    ///   writers that finished before our rename: the new file is swapped in with
    ///   `RENAME_EXCHANGE` and the displaced inode is hashed *after* the swap; on a mismatch the
    ///   swap is undone (if the target is still ours) before `conflict` is thrown. Commits of
    ///   this process to the same file are serialized (``CommitLocks``), so concurrent server
    ///   writers never lose an update.
    /// - `createOnly`: fail with `exists` if anything is there (checked atomically by the
    ///   rename with `RENAME_NOREPLACE`).
    /// - New files get mode 0644 and the workspace ``owner``; a replaced file keeps its
    ///   permission bits (without setuid/setgid/sticky) and its owner.
    /// - Refuses directories (`is_a_directory`), symlinks (`escape`) and other special files
    ///   (`not_a_file`) as targets, and more than `maxBytes` bytes (`file_too_large`).
    @discardableResult
    public func write(_ path: WorkspacePath, _ bytes: [UInt8], expectedSHA256: [UInt8]? = nil, createOnly: Bool = false,
                      maxBytes: Int) throws(FileError) -> [UInt8] {
        let shown = path.string
        guard bytes.count <= maxBytes else {
            throw FileError(.fileTooLarge, "\(shown): \(bytes.count) bytes, the limit is \(maxBytes)")
        }
        let name = try leafName(path)
        let dir = try openParent(of: path, readable: true)
        let current = try Sys.statAt(dir.raw, name, shown: shown)
        if let current {
            try Self.requireRegular(current, shown)
            if createOnly { throw FileError(.exists, "\(shown): already exists") }
        }
        if let expectedSHA256 {
            guard current != nil else { throw Self.conflict(shown, "the file does not exist") }
            guard hashOfEntry(in: dir.raw, name, shown: shown, maxBytes: maxBytes) == expectedSHA256 else {
                throw Self.conflict(shown, "the file has changed")
            }
        }

        let mode = current.map { $0.mode & 0o777 } ?? 0o644
        let fileOwner = current.map { Owner(uid: $0.uid, gid: $0.gid) } ?? owner
        var tmpName = ""
        let tmp = try createTemp(in: dir, name: &tmpName, shown: shown)
        // Whether tmpName still names something of ours to remove (the temp file, or the old
        // file that RENAME_EXCHANGE put there).
        var tmpPresent = true
        defer { if tmpPresent { _ = ctandem_unlinkat(dir.raw, tmpName, 0) } }
        if let fileOwner { try Sys.check(ctandem_fchown(tmp.raw, fileOwner.uid, fileOwner.gid), "fchown", shown: shown) }
        try Sys.check(ctandem_fchmod(tmp.raw, mode), "fchmod", shown: shown)
        let written = bytes.withUnsafeBytes { ctandem_write_all(tmp.raw, $0.baseAddress, $0.count) }
        if written < 0 { throw FileError.from(errno: Int32(-written), "write", path: shown) }
        try Sys.check(ctandem_fsync(tmp.raw), "fsync", shown: shown)
        let ours = try tmp.stat(shown)
        // Closed before the rename, so its IN_CLOSE_WRITE carries the temp name (ignored by the
        // watcher) rather than the target's.
        _ = consume tmp

        let parent = try dir.stat(shown)
        let dirFD = dir.raw
        try CommitLocks.shared.withLock(dev: parent.dev, ino: parent.ino, name: name) { () throws(FileError) in
            if createOnly {
                let r = ctandem_renameat2(dirFD, tmpName, dirFD, name, CTANDEM_RENAME_NOREPLACE)
                try Self.checkRename(r, shown: shown)
                tmpPresent = false
            } else if let expectedSHA256 {
                try exchange(in: dirFD, tmpName: tmpName, ours: ours, name: name, expected: expectedSHA256, shown: shown,
                             maxBytes: maxBytes, tmpPresent: &tmpPresent)
            } else {
                try Self.checkRename(ctandem_renameat2(dirFD, tmpName, dirFD, name, 0), shown: shown)
                tmpPresent = false
            }
        }
        // Make the rename durable too; the data already is.
        _ = ctandem_fsync(dir.raw)
        return Digest.sha256(bytes)
    }

    /// Swaps the temp file in with RENAME_EXCHANGE and checks the displaced content.
    private func exchange(in dir: Int32, tmpName: String, ours: ctandem_file_stat, name: String,
                          expected: [UInt8], shown: String, maxBytes: Int, tmpPresent: inout Bool) throws(FileError) {
        let r = ctandem_renameat2(dir, tmpName, dir, name, CTANDEM_RENAME_EXCHANGE)
        if r == -ENOENT { throw Self.conflict(shown, "the file was removed") }
        if r == -EINVAL || r == -EOPNOTSUPP {
            // A file system without RENAME_EXCHANGE: check again just before a plain rename.
            // A writer that slips into the microseconds between the two is overwritten.
            guard hashOfEntry(in: dir, name, shown: shown, maxBytes: maxBytes) == expected else {
                throw Self.conflict(shown, "the file has changed")
            }
            try Self.checkRename(ctandem_renameat2(dir, tmpName, dir, name, 0), shown: shown)
            tmpPresent = false
            return
        }
        try Self.checkRename(r, shown: shown)
        // tmpName now holds whatever we displaced; the deferred unlink removes it either way.
        if hashOfEntry(in: dir, tmpName, shown: shown, maxBytes: maxBytes) == expected { return }
        // Someone (a kernel: our own writers hold the commit lock) changed the file between our
        // check and the swap. Put theirs back, unless the target has been replaced again since
        // (then theirs was superseded anyway). The check and the swap back are two calls; a
        // kernel rename landing between them is the one interleaving this cannot undo.
        if let now = try? Sys.statAt(dir, name, shown: shown), now.dev == ours.dev && now.ino == ours.ino {
            _ = ctandem_renameat2(dir, tmpName, dir, name, CTANDEM_RENAME_EXCHANGE)
        }
        throw Self.conflict(shown, "the file has changed")
    }

    /// Creates a fresh temp file next to the target: O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600
    /// until the caller has set owner and mode.
    private func createTemp(in dir: borrowing FileDescriptor, name: inout String, shown: String) throws(FileError) -> FileDescriptor {
        var attempt = 0
        while true {
            attempt += 1
            name = Sys.tempPrefix + Hex.encode(SecureRandom.bytes(12))
            let fd = ctandem_openat2(dir.raw, name, CTANDEM_O_WRONLY | CTANDEM_O_CREAT | CTANDEM_O_EXCL | CTANDEM_O_NOFOLLOW,
                                     0o600, Sys.resolve)
            if fd >= 0 { return FileDescriptor(raw: fd) }
            if fd == -EEXIST && attempt < 4 { continue }
            throw FileError.from(errno: -fd, "openat2(temp)", path: shown)
        }
    }

    /// SHA-256 of the regular file `name` in `dir`; nil when it is missing, not a regular file
    /// or over `maxBytes` (none of which can match a hash a client got from ``read(_:maxBytes:)``).
    private func hashOfEntry(in dir: Int32, _ name: String, shown: String, maxBytes: Int) -> [UInt8]? {
        do throws(FileError) {
            let fd = try Sys.open(dir, name, CTANDEM_O_PATH, shown: shown)
            return Digest.sha256(try readRegular(fd, shown: shown, maxBytes: maxBytes).0)
        } catch {
            return nil
        }
    }

    static func requireRegular(_ st: ctandem_file_stat, _ shown: String) throws(FileError) {
        switch Sys.kind(st.kind) {
        case .file: return
        case .directory: throw FileError(.isADirectory, "\(shown): is a directory")
        case .symlink: throw FileError(.escape, "\(shown): \(FileError.escapeMessage)")
        case .other: throw FileError(.notAFile, "\(shown): not a regular file")
        }
    }

    static func conflict(_ shown: String, _ why: String) -> FileError {
        FileError(.conflict, "\(shown): \(why) since it was read")
    }

    static func checkRename(_ r: Int32, shown: String) throws(FileError) {
        if r == 0 { return }
        switch -r {
        case EINVAL: throw FileError(.invalidPath, "\(shown): cannot move a directory into itself")
        // Renaming a directory onto a non-empty one reports either.
        case ENOTEMPTY: throw FileError(.notEmpty, "\(shown): directory not empty", errno: -r)
        default: throw FileError.from(errno: -r, "renameat2", path: shown)
        }
    }

    // MARK: Directories

    /// Creates the directory at `path` (mode 0755, owned by ``owner``). Without `parents`, the
    /// parent must exist and `path` must not (`exists`); with `parents`, missing directories on
    /// the way are created and an existing directory is success (like `mkdir -p`). Each step
    /// is resolved relative to the previous directory's descriptor.
    public func mkdir(_ path: WorkspacePath, parents: Bool = false) throws(FileError) {
        guard let name = path.name else {
            if parents { return }
            throw FileError(.exists, "/: already exists")
        }
        if !parents {
            let dir = try openParent(of: path)
            try Sys.check(ctandem_mkdirat(dir.raw, name, 0o755), "mkdirat", shown: path.string)
            adopt(directory: name, in: dir)
            return
        }
        var current = try open(.root, CTANDEM_O_PATH | CTANDEM_O_DIRECTORY)
        var done: [String] = []
        for component in path.components {
            done.append(component)
            let shown = done.joined(separator: "/")
            var attempt = 0
            while true {
                attempt += 1
                do throws(FileError) {
                    let next = try Sys.open(current.raw, component, CTANDEM_O_PATH | CTANDEM_O_DIRECTORY, shown: shown)
                    current = next
                    break
                } catch {
                    guard error.code == .notFound && attempt <= 3 else { throw error }
                }
                let r = ctandem_mkdirat(current.raw, component, 0o755)
                if r == 0 {
                    adopt(directory: component, in: current)
                } else if r != -EEXIST {  // EEXIST: created concurrently; open it
                    throw FileError.from(errno: -r, "mkdirat", path: shown)
                }
            }
        }
    }

    /// Gives a directory we just created mode 0755 and the workspace owner. Best effort: if it
    /// was already replaced (by a symlink or anything else), nothing is changed.
    private func adopt(directory name: String, in dir: borrowing FileDescriptor) {
        let fd = ctandem_openat2(dir.raw, name, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY | CTANDEM_O_NOFOLLOW, 0, Sys.resolve)
        guard fd >= 0 else { return }
        _ = ctandem_fchmod(fd, 0o755)
        if let owner { _ = ctandem_fchown(fd, owner.uid, owner.gid) }
        _ = ctandem_close(fd)
    }

    // MARK: Renames

    /// Moves `from` to `to` (files, directories, or a symlink itself; the root is refused).
    /// Without `overwrite` an existing target fails with `exists`, atomically
    /// (`RENAME_NOREPLACE`); with it, a file is replaced and an empty directory may be.
    /// A symlink as target is refused with `escape`; if one appears after that check, rename(2)
    /// replaces the link itself and never follows it.
    public func rename(from: WorkspacePath, to: WorkspacePath, overwrite: Bool = false) throws(FileError) {
        let fromName = try leafName(from)
        let toName = try leafName(to)
        if to != from && to.isWithin(from) {
            throw FileError(.invalidPath, "\(to.string): cannot move a directory into itself")
        }
        let src = try openParent(of: from)
        let dst = try openParent(of: to)
        guard try Sys.statAt(src.raw, fromName, shown: from.string) != nil else {
            throw FileError(.notFound, "\(from.string): no such file or directory")
        }
        if let target = try Sys.statAt(dst.raw, toName, shown: to.string) {
            if Sys.kind(target.kind) == .symlink { throw FileError(.escape, "\(to.string): \(FileError.escapeMessage)") }
            if !overwrite { throw FileError(.exists, "\(to.string): already exists") }
        }
        let r = ctandem_renameat2(src.raw, fromName, dst.raw, toName, overwrite ? 0 : CTANDEM_RENAME_NOREPLACE)
        if r == -ENOENT { throw FileError(.notFound, "\(from.string): no such file or directory") }
        try Self.checkRename(r, shown: to.string)
    }
}
