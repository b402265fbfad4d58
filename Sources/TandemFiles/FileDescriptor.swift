// An owned descriptor and the few system calls the file layer makes through CTandemSystem.
// Every call site names the workspace path it works on, for the error message.
import CTandemSystem
#if canImport(Glibc)
import Glibc
#endif

/// An open descriptor that closes itself: noncopyable, so it has exactly one owner and no
/// error path can leak it.
struct FileDescriptor: ~Copyable {
    let raw: Int32

    init(raw: Int32) { self.raw = raw }

    deinit { _ = ctandem_close(raw) }

    func stat(_ shown: String) throws(FileError) -> ctandem_file_stat {
        var st = ctandem_file_stat()
        let r = ctandem_fstat(raw, &st)
        if r < 0 { throw FileError.from(errno: -r, "fstat", path: shown) }
        return st
    }
}

/// Scoped resolution and *at calls. Every `name` is one directory entry (no `/`), every `path`
/// a normalized ``WorkspacePath`` string.
enum Sys {
    static let resolve = CTANDEM_RESOLVE_WORKSPACE

    /// `openat2(dirfd, path, flags | O_NOFOLLOW, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    /// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`.
    static func open(_ dirfd: Int32, _ path: String, _ flags: Int32, mode: UInt32 = 0, shown: String) throws(FileError) -> FileDescriptor {
        let target = path.isEmpty ? "." : path
        let fd = ctandem_openat2(dirfd, target, flags | CTANDEM_O_NOFOLLOW, mode, resolve)
        if fd >= 0 { return FileDescriptor(raw: fd) }
        // O_DIRECTORY | O_NOFOLLOW on a trailing symlink fails with ENOTDIR, not ELOOP: look at
        // what is there, so a symlink is reported as one.
        if fd == -ENOTDIR && flags & CTANDEM_O_DIRECTORY != 0 {
            let link = ctandem_openat2(dirfd, target, CTANDEM_O_PATH | CTANDEM_O_NOFOLLOW, 0, resolve)
            if link >= 0 {
                var st = ctandem_file_stat()
                let isLink = ctandem_fstat(link, &st) == 0 && st.kind == Kind.symlink
                _ = ctandem_close(link)
                if isLink { throw FileError.from(errno: ELOOP, "openat2", path: shown) }
            }
        }
        throw FileError.from(errno: -fd, "openat2", path: shown)
    }

    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; nil when there is no such entry.
    static func statAt(_ dirfd: Int32, _ name: String, shown: String) throws(FileError) -> ctandem_file_stat? {
        var st = ctandem_file_stat()
        let r = ctandem_fstatat_nofollow(dirfd, name, &st)
        if r == -ENOENT { return nil }
        if r < 0 { throw FileError.from(errno: -r, "fstatat", path: shown) }
        return st
    }

    static func check(_ r: Int32, _ function: StaticString, shown: String) throws(FileError) {
        if r < 0 { throw FileError.from(errno: -r, function, path: shown) }
    }

    static func kind(_ k: UInt32) -> FileEntry.Kind {
        switch k {
        case Kind.file: return .file
        case Kind.directory: return .directory
        case Kind.symlink: return .symlink
        default: return .other
        }
    }

    /// CTANDEM_KIND_* as UInt32.
    enum Kind {
        static let other = UInt32(CTANDEM_KIND_OTHER)
        static let file = UInt32(CTANDEM_KIND_FILE)
        static let directory = UInt32(CTANDEM_KIND_DIRECTORY)
        static let symlink = UInt32(CTANDEM_KIND_SYMLINK)
        static let unknown = UInt32(CTANDEM_KIND_UNKNOWN)
    }

    static func entry(_ st: ctandem_file_stat, path: String, name: String) -> FileEntry {
        FileEntry(path: path, name: name, kind: kind(st.kind), size: st.size, mtimeNanos: st.mtime_ns, mode: st.mode)
    }

    /// The entries of a directory opened for reading (not O_PATH), from the start, without `.`
    /// and `..`: raw NUL-terminated names with their d_type kind (CTANDEM_KIND_*). Stops after
    /// `limit` entries that pass `include`; `complete` says whether the whole directory was read.
    static func readEntries(_ fd: borrowing FileDescriptor, limit: Int, shown: String,
                            include: (RawEntry) -> Bool = { _ in true }) throws(FileError) -> (entries: [RawEntry], complete: Bool) {
        try check(ctandem_rewind_dir(fd.raw), "lseek", shown: shown)
        let size = 32 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        var out: [RawEntry] = []
        while true {
            let n = ctandem_getdents(fd.raw, buffer, size)
            if n < 0 { throw FileError.from(errno: Int32(-n), "getdents64", path: shown) }
            if n == 0 { return (out, true) }
            var pos = 0
            var name: UnsafePointer<CChar>?
            var type: UInt8 = 0
            while ctandem_dirent_next(buffer, Int(n), &pos, &name, &type) == 1, let name {
                let len = strlen(name)
                let entry = RawEntry(name: Array(UnsafeBufferPointer(start: name, count: len + 1)), type: type)
                guard include(entry) else { continue }
                if out.count == limit { return (out, false) }
                out.append(entry)
            }
        }
    }

    struct RawEntry {
        /// NUL-terminated, for the *at calls.
        var name: [CChar]
        /// CTANDEM_KIND_* from d_type (CTANDEM_KIND_UNKNOWN when the file system does not say).
        var type: UInt8

        var isTempFile: Bool { name.starts(with: tempPrefixC) }

        /// The name as a String when a ``WorkspacePath`` can address it.
        var addressableName: String? {
            name.withUnsafeBufferPointer { p -> String? in
                p.withMemoryRebound(to: UInt8.self) { u -> String? in
                    let bytes = UnsafeBufferPointer(rebasing: u.dropLast())
                    guard WorkspacePath.isAddressable(name: bytes) else { return nil }
                    return String(decoding: bytes, as: UTF8.self)
                }
            }
        }
    }

    /// Temporary files of ``WorkspaceFS/write(_:_:expectedSHA256:createOnly:maxBytes:)``:
    /// hidden from listings and from the watcher.
    static let tempPrefix = ".tandem-tmp-"
    static let tempPrefixC: [CChar] = tempPrefix.utf8.map { CChar(bitPattern: $0) }
}
