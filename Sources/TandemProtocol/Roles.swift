// Who may do what in a workspace. Pure: the server checks every message against this table,
// and a test covers every role × every action.

/// A member's role in one workspace.
public enum WorkspaceRole: String, Sendable, CaseIterable, Codable {
    /// Everything, including members, rename, archive and delete.
    case owner
    /// Files, documents, run, interrupt, restart, propose and review patches.
    case editor
    /// Read files and output, see presence; no edits, no runs.
    case viewer
    /// Read and propose; never approve, never run (unless granted, per member).
    case agent
}

/// Everything a message can ask for, grouped by what it touches.
public enum Action: String, Sendable, CaseIterable {
    /// See the workspace: join, list members, read files, see kernel output and presence.
    case read
    /// Create, write, rename and delete files; save documents.
    case writeFiles
    /// Execute code, complete, interrupt and restart the kernel.
    case runKernel
    /// Propose a patch.
    case propose
    /// Approve or reject a patch.
    case review
    /// Rename and archive the workspace.
    case manageWorkspace
    /// Add, change and remove members.
    case manageMembers
    /// Delete the workspace.
    case deleteWorkspace
    /// List the workspace's audit entries (owners; server admins too).
    case readAudit
}

/// Extra rights a member may be granted beyond the role (agents only run when granted).
public struct Grants: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let run = Grants(rawValue: 1)
}

public enum Permissions {
    /// Whether `role` (with `grants`) may perform `action`.
    public static func allows(_ role: WorkspaceRole, _ action: Action, grants: Grants = []) -> Bool {
        switch role {
        case .owner:
            return true
        case .editor:
            return [.read, .writeFiles, .runKernel, .propose, .review].contains(action)
        case .viewer:
            return action == .read
        case .agent:
            return action == .read || action == .propose || (action == .runKernel && grants.contains(.run))
        }
    }
}
