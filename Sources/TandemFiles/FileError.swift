// Errors of the workspace file layer, each with a stable code for the wire.
#if canImport(Glibc)
import Glibc
#endif

/// A refused or failed file operation. `code` is stable and goes to clients as the JSON error
/// code; `message` is for people and never contains file contents.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound = "not_found"
        case exists = "exists"
        case notADirectory = "not_a_directory"
        case isADirectory = "is_a_directory"
        /// The target is neither a regular file nor a directory (a FIFO, socket or device), or
        /// a regular file was expected.
        case notAFile = "not_a_file"
        /// A directory that is not empty where an empty one is required.
        case notEmpty = "not_empty"
        /// Malformed path: not UTF-8, control characters, absolute, `..`, or the workspace root
        /// where a file is needed.
        case invalidPath = "invalid_path"
        /// More than ``WorkspacePath/maxBytes`` bytes or a component over
        /// ``WorkspacePath/maxComponentBytes``.
        case pathTooLong = "path_too_long"
        /// More than ``WorkspacePath/maxComponents`` components.
        case pathTooDeep = "path_too_deep"
        /// The path leaves the workspace or goes through a symbolic link or mount point.
        case escape = "escape"
        case fileTooLarge = "file_too_large"
        /// The file's content is not the one the caller expected (`expectedSHA256`).
        case conflict = "conflict"
        /// A recursive operation met more entries (or deeper nesting) than its bound.
        case tooManyEntries = "too_many_entries"
        /// Any other system-call failure; `errno` says which.
        case io = "io"
    }

    public let code: Code
    public let message: String
    /// The errno behind the error, when a system call failed.
    public let errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// What a concurrent change produces between listing an entry and opening it: it was
    /// removed, or replaced by a symlink or by something of another kind.
    var isRace: Bool { code == .notFound || code == .escape || code == .notADirectory }

    static let escapeMessage = "path leaves the workspace or goes through a symbolic link"

    /// Maps the errno of a failed call on `path` (a workspace-relative path, for the message).
    static func from(errno e: Int32, _ function: StaticString, path: String) -> FileError {
        let shown = path.isEmpty ? "/" : path
        switch e {
        case ENOENT: return FileError(.notFound, "\(shown): no such file or directory", errno: e)
        case EEXIST: return FileError(.exists, "\(shown): already exists", errno: e)
        case ENOTDIR: return FileError(.notADirectory, "\(shown): a path component is not a directory", errno: e)
        case EISDIR: return FileError(.isADirectory, "\(shown): is a directory", errno: e)
        case ENOTEMPTY: return FileError(.notEmpty, "\(shown): directory not empty", errno: e)
        // ELOOP: RESOLVE_NO_SYMLINKS / O_NOFOLLOW met a symlink; EXDEV: RESOLVE_BENEATH or
        // RESOLVE_NO_XDEV refused (escape, magic link, mount point).
        case ELOOP, EXDEV: return FileError(.escape, "\(shown): \(escapeMessage)", errno: e)
        case ENAMETOOLONG: return FileError(.pathTooLong, "\(shown): name too long", errno: e)
        case EFBIG: return FileError(.fileTooLarge, "\(shown): file too large", errno: e)
        default:
            return FileError(.io, "\(shown): \(function): \(String(cString: strerror(e))) (errno \(e))", errno: e)
        }
    }
}
