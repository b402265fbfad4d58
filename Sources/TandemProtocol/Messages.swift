// The tandem.v1 message catalogue: every message a client may send (each a request with an id
// and one reply), its fields and the action it needs; and every message the server sends.
// docs/protocol.md describes them for people, docs/asyncapi.yaml for tools; a test keeps the
// three in step.

public enum TandemProtocol {
    /// The WebSocket subprotocol.
    public static let name = "tandem.v1"
}

/// The type of a message field.
public enum FieldType: String, Sendable {
    case string, integer, boolean, object, array
}

public struct FieldSpec: Sendable {
    public var name: String
    public var type: FieldType
    public var required: Bool

    public static func req(_ name: String, _ type: FieldType) -> FieldSpec { FieldSpec(name: name, type: type, required: true) }
    public static func opt(_ name: String, _ type: FieldType) -> FieldSpec { FieldSpec(name: name, type: type, required: false) }
}

/// One client → server request type.
public struct MessageSpec: Sendable {
    public var type: String
    /// The action checked against the sender's role in `workspace`; nil when the message does
    /// not concern one workspace (checked by the handler: list, create, ping).
    public var action: Action?
    public var fields: [FieldSpec]
    public var summary: String
}

public enum Messages {
    /// Requests clients send.
    public static let client: [MessageSpec] = [
        MessageSpec(type: "ping", action: nil, fields: [], summary: "Liveness check; replies ok."),
        MessageSpec(type: "workspace.list", action: nil, fields: [.opt("archived", .boolean)],
                    summary: "The workspaces the user is a member of, with their role."),
        MessageSpec(type: "workspace.create", action: nil,
                    fields: [.req("name", .string), .opt("template", .string), .opt("git", .string)],
                    summary: "Create a workspace (empty, from a template, or cloned from a git URL); the creator is its owner."),
        MessageSpec(type: "workspace.rename", action: .manageWorkspace, fields: [.req("workspace", .string), .req("name", .string)],
                    summary: "Rename a workspace."),
        MessageSpec(type: "workspace.archive", action: .manageWorkspace, fields: [.req("workspace", .string), .req("archived", .boolean)],
                    summary: "Archive or unarchive a workspace (archived ones are read-only)."),
        MessageSpec(type: "workspace.delete", action: .deleteWorkspace, fields: [.req("workspace", .string)],
                    summary: "Delete a workspace, its kernel and its files."),
        MessageSpec(type: "workspace.members", action: .read, fields: [.req("workspace", .string)],
                    summary: "The members of a workspace and their roles."),
        MessageSpec(type: "member.set", action: .manageMembers,
                    fields: [.req("workspace", .string), .req("user", .string), .req("role", .string), .opt("canRun", .boolean)],
                    summary: "Invite a user or change their role; canRun grants an agent the right to run code."),
        MessageSpec(type: "member.remove", action: .manageMembers, fields: [.req("workspace", .string), .req("user", .string)],
                    summary: "Remove a member."),
        MessageSpec(type: "workspace.join", action: .read, fields: [.req("workspace", .string), .opt("lastSeq", .integer)],
                    summary: "Subscribe to a workspace's kernel and file events; with lastSeq, replay what was missed."),
        MessageSpec(type: "workspace.leave", action: nil, fields: [.req("workspace", .string)],
                    summary: "Stop receiving a workspace's events."),
        MessageSpec(type: "file.tree", action: .read, fields: [.req("workspace", .string), .opt("path", .string)],
                    summary: "The files under a directory, recursively (bounded)."),
        MessageSpec(type: "file.read", action: .read, fields: [.req("workspace", .string), .req("path", .string)],
                    summary: "A file's content (text, or base64 for binary) and its SHA-256."),
        MessageSpec(type: "file.write", action: .writeFiles,
                    fields: [.req("workspace", .string), .req("path", .string), .opt("content", .string), .opt("base64", .string),
                             .opt("baseSha256", .string), .opt("create", .boolean)],
                    summary: "Write a file atomically; with baseSha256, only if it still has that content."),
        MessageSpec(type: "file.mkdir", action: .writeFiles, fields: [.req("workspace", .string), .req("path", .string)],
                    summary: "Create a directory (and its parents)."),
        MessageSpec(type: "file.rename", action: .writeFiles,
                    fields: [.req("workspace", .string), .req("from", .string), .req("to", .string), .opt("overwrite", .boolean)],
                    summary: "Rename or move a file or directory."),
        MessageSpec(type: "file.delete", action: .writeFiles,
                    fields: [.req("workspace", .string), .req("path", .string), .opt("recursive", .boolean)],
                    summary: "Delete a file, or a directory with recursive."),
        MessageSpec(type: "kernel.execute", action: .runKernel,
                    fields: [.req("workspace", .string), .req("code", .string), .opt("kernel", .string)],
                    summary: "Queue code on the workspace's kernel; replies with the execution id, results come as events."),
        MessageSpec(type: "kernel.interrupt", action: .runKernel, fields: [.req("workspace", .string)],
                    summary: "Interrupt the running execution (state is kept); everyone is told who did it."),
        MessageSpec(type: "kernel.restart", action: .runKernel, fields: [.req("workspace", .string), .opt("kernel", .string)],
                    summary: "Replace the kernel with a fresh one (state is lost); everyone is told who did it."),
        MessageSpec(type: "audit.list", action: .readAudit,
                    fields: [.req("workspace", .string), .opt("since", .integer), .opt("afterSeq", .integer), .opt("limit", .integer)],
                    summary: "The workspace's audit entries (metadata and keyed digests only), oldest first."),
        MessageSpec(type: "kernel.complete", action: .runKernel,
                    fields: [.req("workspace", .string), .req("code", .string), .req("cursor", .integer)],
                    summary: "Completions at the cursor."),
    ]

    /// Messages the server sends.
    public static let server: [String] = [
        "hello", "ok", "error",
        "kernel.state", "kernel.started", "kernel.output", "kernel.finished", "kernel.stats", "kernel.notice",
        "kernel.gap", "kernel.action", "file.changed", "workspace.changed",
    ]

    public static let byType: [String: MessageSpec] = Dictionary(uniqueKeysWithValues: client.map { ($0.type, $0) })
}
