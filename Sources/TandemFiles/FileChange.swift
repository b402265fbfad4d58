// Changes in a workspace tree as the watcher reports them, and the coalescing of bursts.
// Pure value types: the merge rules are tested without inotify.

/// One change, relative to the workspace root.
public struct FileChange: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case created
        /// Content changed (written in place, or replaced by a rename such as
        /// ``WorkspaceFS/write(_:_:expectedSHA256:createOnly:maxBytes:)``'s).
        case modified
        case deleted
        /// Moved within the workspace from `from`.
        case renamed(from: String)
        /// The kernel's event queue overflowed and changes were lost: rescan (`path` is `""`).
        case overflow
        /// The watch bound was reached: changes in the directory at `path` and below are not
        /// reported.
        case unwatched
    }

    /// Workspace-relative path, components joined by `/`.
    public let path: String
    public let kind: Kind
    public let isDirectory: Bool

    public init(path: String, kind: Kind, isDirectory: Bool = false) {
        self.path = path
        self.kind = kind
        self.isDirectory = isDirectory
    }
}

/// Collects changes for one delivery window and merges repeated ones for the same path, so a
/// file written in many chunks gives one `modified` and a file created and removed within the
/// window gives nothing. Order is kept; a rename ends merging for both of its paths.
struct ChangeCoalescer {
    /// In arrival order; nil where a change was merged away.
    private var pending: [FileChange?] = []
    /// The index of the latest mergeable change per path.
    private var latest: [String: Int] = [:]

    var isEmpty: Bool { pending.allSatisfy { $0 == nil } }

    mutating func add(_ change: FileChange) {
        switch change.kind {
        case .renamed(let from):
            latest[from] = nil
            append(change, mergeable: false)
            latest[change.path] = nil
            return
        case .overflow:
            if !pending.contains(where: { $0?.kind == .overflow }) { append(change, mergeable: false) }
            return
        case .unwatched:
            if !pending.contains(change) { append(change, mergeable: false) }
            return
        case .created, .modified, .deleted:
            break
        }
        guard let i = latest[change.path], let old = pending[i], old.isDirectory == change.isDirectory else {
            append(change, mergeable: true)
            return
        }
        switch (old.kind, change.kind) {
        case (.created, .modified), (.modified, .modified), (.created, .created), (.modified, .created):
            return  // already reported within this window
        case (.created, .deleted):
            // Came and went within the window: nothing to report.
            pending[i] = nil
            latest[change.path] = nil
        case (.modified, .deleted):
            pending[i] = change
        case (.deleted, .created), (.deleted, .modified):
            // Replaced: the path exists with new content.
            pending[i] = FileChange(path: change.path, kind: .modified, isDirectory: change.isDirectory)
        case (.deleted, .deleted):
            return
        default:
            append(change, mergeable: true)
        }
    }

    private mutating func append(_ change: FileChange, mergeable: Bool) {
        pending.append(change)
        if mergeable { latest[change.path] = pending.count - 1 }
    }

    /// The merged changes, in order; empties the window.
    mutating func take() -> [FileChange] {
        let out = pending.compactMap { $0 }
        pending = []
        latest = [:]
        return out
    }
}
