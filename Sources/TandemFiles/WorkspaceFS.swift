// Race-free file operations inside one workspace directory.
//
// Kernels write to the workspace concurrently and may plant symlinks anywhere, so no operation
// ever passes a multi-component path to a plain *at call: every path is resolved with openat2
// beneath the root with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV, and operations that change a directory (create, rename, delete) resolve the
// parent that way and then act on a single name relative to that parent's descriptor, without
// following it.
import CTandemSystem
import TandemCrypto
#if canImport(Glibc)
import Glibc
#endif

/// File access for one workspace. Holds an `O_PATH` descriptor of the root, opened once; every
/// method is synchronous, small, and safe to call from any thread (descriptor operations are
/// thread-safe and the object has no mutable state).
public final class WorkspaceFS: Sendable {
    /// The uid/gid that new files and directories are given (the kernel user), when set.
    public struct Owner: Sendable, Equatable {
        public let uid: UInt32
        public let gid: UInt32
        public init(uid: UInt32, gid: UInt32) {
            self.uid = uid
            self.gid = gid
        }
    }

    /// The host path the root was opened from (for logs; never used to resolve).
    public let rootPath: String
    public let owner: Owner?
    let rootFD: Int32

    /// Opens `root`, which must be a directory. The root path itself is trusted (it comes from
    /// the server's configuration, not from a client or a kernel).
    public init(root: String, owner: (uid: UInt32, gid: UInt32)? = nil) throws(FileError) {
        let fd = ctandem_openat2(AT_FDCWD, root, CTANDEM_O_PATH | CTANDEM_O_DIRECTORY, 0, 0)
        if fd < 0 { throw FileError.from(errno: -fd, "open", path: root) }
        rootFD = fd
        rootPath = root
        self.owner = owner.map { Owner(uid: $0.uid, gid: $0.gid) }
    }

    deinit { _ = ctandem_close(rootFD) }

    // MARK: Resolution

    /// Opens `path` beneath the root (O_NOFOLLOW and the workspace resolve flags always added).
    func open(_ path: WorkspacePath, _ flags: Int32) throws(FileError) -> FileDescriptor {
        try Sys.open(rootFD, path.string, flags, shown: path.string)
    }

    /// The last component of `path`; refuses the root, which no operation may create, rename
    /// or delete.
    func leafName(_ path: WorkspacePath) throws(FileError) -> String {
        guard let name = path.name else { throw FileError(.invalidPath, "the workspace root cannot be used here") }
        return name
    }

    /// Opens the directory that contains `path` (not the root). `readable` opens it O_RDONLY
    /// (for getdents or fsync) instead of O_PATH.
    func openParent(of path: WorkspacePath, readable: Bool = false) throws(FileError) -> FileDescriptor {
        guard let parent = path.parent else { throw FileError(.invalidPath, "the workspace root cannot be used here") }
        let flags = (readable ? CTANDEM_O_RDONLY : CTANDEM_O_PATH) | CTANDEM_O_DIRECTORY
        return try Sys.open(rootFD, parent.string, flags, shown: parent.string)
    }

    // MARK: Reading

    /// The entry at `path`; a symlink is reported as a symlink, not followed.
    public func stat(_ path: WorkspacePath) throws(FileError) -> FileEntry {
        // With O_PATH | O_NOFOLLOW, openat2 returns a descriptor of a trailing symlink itself
        // (RESOLVE_NO_SYMLINKS still refuses symlinks before it).
        let fd = try open(path, CTANDEM_O_PATH)
        return Sys.entry(try fd.stat(path.string), path: path.string, name: path.name ?? "")
    }

    /// The entries of the directory at `path`, sorted by name (byte order). Names a
    /// ``WorkspacePath`` cannot address (not UTF-8, control characters) and the temporary files
    /// of ``write(_:_:expectedSHA256:createOnly:maxBytes:)`` are left out.
    public func list(_ path: WorkspacePath, maxEntries: Int = 100_000) throws(FileError) -> [FileEntry] {
        let fd = try open(path, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY)
        let (listed, complete) = try entries(of: fd, path: path, limit: maxEntries)
        guard complete else {
            throw FileError(.tooManyEntries, "\(path.string.isEmpty ? "/" : path.string): more than \(maxEntries) entries")
        }
        return listed
    }

    /// A flattened recursive listing of the whole workspace, pre-order, each directory sorted.
    /// Stops after `maxEntries` entries and does not descend below `maxDepth` components
    /// (at most ``WorkspacePath/maxComponents``); either sets `truncated`. Directories that
    /// vanish or turn into symlinks while being walked are skipped.
    public func tree(maxEntries: Int = 10_000, maxDepth: Int = 16) throws(FileError) -> FileTree {
        let depth = min(max(maxDepth, 1), WorkspacePath.maxComponents)
        var out: [FileEntry] = []
        var truncated = false
        let root = try open(.root, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY)
        try walk(root, path: .root, maxEntries: maxEntries, maxDepth: depth, into: &out, truncated: &truncated)
        return FileTree(entries: out, truncated: truncated)
    }

    private func walk(_ dir: borrowing FileDescriptor, path: WorkspacePath, maxEntries: Int, maxDepth: Int,
                      into out: inout [FileEntry], truncated: inout Bool) throws(FileError) {
        let listed: [FileEntry]
        do throws(FileError) {
            let (all, complete) = try entries(of: dir, path: path, limit: maxEntries - out.count)
            listed = all
            if !complete { truncated = true }
        } catch {
            // A subdirectory removed while we walk it (getdents: ENOENT) is skipped.
            if error.isRace && !path.isRoot { return }
            throw error
        }
        for e in listed {
            if out.count >= maxEntries {
                truncated = true
                return
            }
            out.append(e)
            guard e.kind == .directory else { continue }
            let child = WorkspacePath.trusted(path.components + [e.name])
            guard child.components.count < maxDepth else {
                truncated = true
                continue
            }
            let sub: FileDescriptor
            do throws(FileError) {
                sub = try Sys.open(dir.raw, e.name, CTANDEM_O_RDONLY | CTANDEM_O_DIRECTORY, shown: child.string)
            } catch {
                // Removed, replaced by a symlink or a file since it was listed: skip it.
                if error.isRace { continue }
                throw error
            }
            try walk(sub, path: child, maxEntries: maxEntries, maxDepth: maxDepth, into: &out, truncated: &truncated)
        }
    }

    /// Reads the entries of an open directory with their metadata, sorted by name.
    func entries(of fd: borrowing FileDescriptor, path: WorkspacePath, limit: Int) throws(FileError) -> ([FileEntry], Bool) {
        let (raw, complete) = try Sys.readEntries(fd, limit: max(limit, 0), shown: path.string) { r in
            !r.isTempFile && r.addressableName != nil
        }
        var out: [FileEntry] = []
        out.reserveCapacity(raw.count)
        for r in raw {
            guard let name = r.addressableName else { continue }
            let childPath = path.isRoot ? name : path.string + "/" + name
            // Gone since getdents: skip.
            guard let st = try Sys.statAt(fd.raw, name, shown: childPath) else { continue }
            out.append(Sys.entry(st, path: childPath, name: name))
        }
        out.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return (out, complete)
    }

    /// The content of the regular file at `path` and its SHA-256. Refuses directories
    /// (`is_a_directory`), symlinks (`escape`), FIFOs, sockets and devices (`not_a_file`), and
    /// files over `maxBytes` (`file_too_large`). The file is opened `O_PATH` first and only
    /// reopened for reading once it is known to be a regular file, so the server never opens a
    /// FIFO or device a kernel planted.
    public func read(_ path: WorkspacePath, maxBytes: Int) throws(FileError) -> FileContents {
        let fd = try open(path, CTANDEM_O_PATH)
        let (bytes, st) = try readRegular(fd, shown: path.string, maxBytes: maxBytes)
        return FileContents(bytes: bytes, sha256: Digest.sha256(bytes), entry: Sys.entry(st, path: path.string, name: path.name ?? ""))
    }

    /// Reads the regular file an O_PATH descriptor refers to, up to `maxBytes`.
    func readRegular(_ pathFD: borrowing FileDescriptor, shown: String, maxBytes: Int) throws(FileError) -> ([UInt8], ctandem_file_stat) {
        let st = try pathFD.stat(shown)
        switch Sys.kind(st.kind) {
        case .file: break
        case .directory: throw FileError(.isADirectory, "\(shown): is a directory")
        case .symlink: throw FileError(.escape, "\(shown): \(FileError.escapeMessage)")
        case .other: throw FileError(.notAFile, "\(shown): not a regular file")
        }
        guard st.size <= Int64(maxBytes) else {
            throw FileError(.fileTooLarge, "\(shown): \(st.size) bytes, the limit is \(maxBytes)")
        }
        let r = ctandem_reopen(pathFD.raw, CTANDEM_O_RDONLY | CTANDEM_O_NOCTTY | CTANDEM_O_NONBLOCK)
        if r < 0 { throw FileError.from(errno: -r, "open", path: shown) }
        let fd = FileDescriptor(raw: r)
        // One byte more than allowed, to notice a file that grew since fstat.
        var bytes = [UInt8](repeating: 0, count: Int(st.size) + 1)
        var total = 0
        while true {
            if total == bytes.count {
                if total > maxBytes { break }
                bytes.append(contentsOf: repeatElement(0, count: min(max(total, 4096), maxBytes + 1 - total)))
            }
            let n = bytes.withUnsafeMutableBytes { b in
                ctandem_read_full(fd.raw, b.baseAddress! + total, b.count - total)
            }
            if n < 0 { throw FileError.from(errno: Int32(-n), "read", path: shown) }
            total += n
            if total < bytes.count { break }  // end of file
        }
        guard total <= maxBytes else {
            throw FileError(.fileTooLarge, "\(shown): more than \(maxBytes) bytes")
        }
        bytes.removeLast(bytes.count - total)
        return (bytes, st)
    }
}
