// What the file layer reports about files: value types only.

/// One directory entry or stat result. Symlinks are reported as symlinks, never followed.
public struct FileEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case file, directory, symlink
        /// FIFO, socket or device node.
        case other
    }

    /// Workspace-relative path, components joined by `/` (`""` for the root).
    public let path: String
    /// The last component (`""` for the root).
    public let name: String
    public let kind: Kind
    /// Size in bytes (for symlinks: the length of the target).
    public let size: Int64
    /// Modification time, nanoseconds since the Unix epoch.
    public let mtimeNanos: Int64
    /// Permission bits (`mode & 0o7777`).
    public let mode: UInt32

    public init(path: String, name: String, kind: Kind, size: Int64, mtimeNanos: Int64, mode: UInt32) {
        self.path = path
        self.name = name
        self.kind = kind
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.mode = mode
    }
}

/// A flattened recursive listing (pre-order, each directory's entries sorted by name).
public struct FileTree: Sendable, Equatable {
    public let entries: [FileEntry]
    /// Set when ``WorkspaceFS/tree(maxEntries:maxDepth:)`` stopped at one of its bounds.
    public let truncated: Bool
}

/// A file's bytes and their SHA-256, the value to pass back as `expectedSHA256`.
public struct FileContents: Sendable, Equatable {
    public let bytes: [UInt8]
    public let sha256: [UInt8]
    public let entry: FileEntry
}
