// What callers hand to the audit log: an action with metadata in clear and content only as
// keyed digests.

/// What happened, as a stable dotted string (`auth.login.failed`, `kernel.execute`, ...).
///
/// A struct over a string rather than an enum, so new actions can be added without breaking
/// callers that switch over the known ones. The string is part of the canonical encoding:
/// never rename one, add a new one instead.
public struct AuditAction: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Any dotted name of lower-case letters, digits, `.`, `_` and `-` (1...64 bytes).
    public init?(rawValue: String) {
        guard AuditAction.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(known: String) { self.rawValue = known }

    static func isValid(_ s: String) -> Bool {
        let check = { (u: UnsafeBufferPointer<UInt8>) -> Bool in
            guard !u.isEmpty, u.count <= 64 else { return false }
            for c in u where !((c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2E || c == 0x5F || c == 0x2D) {
                return false
            }
            return true
        }
        return s.utf8.withContiguousStorageIfAvailable(check) ?? Array(s.utf8).withUnsafeBufferPointer(check)
    }

    public var description: String { rawValue }

    // Authentication and connections.
    public static let authLoginSucceeded = AuditAction(known: "auth.login.succeeded")
    public static let authLoginFailed = AuditAction(known: "auth.login.failed")
    public static let authLogout = AuditAction(known: "auth.logout")
    public static let wsOpen = AuditAction(known: "ws.open")
    public static let wsClose = AuditAction(known: "ws.close")
    // Workspaces and membership.
    public static let workspaceCreate = AuditAction(known: "workspace.create")
    public static let workspaceDelete = AuditAction(known: "workspace.delete")
    public static let workspaceRename = AuditAction(known: "workspace.rename")
    public static let memberAdd = AuditAction(known: "member.add")
    public static let memberRemove = AuditAction(known: "member.remove")
    public static let memberRoleChange = AuditAction(known: "member.role.change")
    // Files and documents.
    public static let fileCreate = AuditAction(known: "file.create")
    public static let fileWrite = AuditAction(known: "file.write")
    public static let fileRename = AuditAction(known: "file.rename")
    public static let fileDelete = AuditAction(known: "file.delete")
    public static let documentSave = AuditAction(known: "document.save")
    // Kernels and runs.
    public static let kernelStart = AuditAction(known: "kernel.start")
    public static let kernelStop = AuditAction(known: "kernel.stop")
    public static let kernelRestart = AuditAction(known: "kernel.restart")
    public static let kernelInterrupt = AuditAction(known: "kernel.interrupt")
    public static let kernelOOMKill = AuditAction(known: "kernel.oom_kill")
    public static let kernelExecute = AuditAction(known: "kernel.execute")
    public static let runOneShot = AuditAction(known: "run.oneshot")
    // Patches.
    public static let patchProposed = AuditAction(known: "patch.proposed")
    public static let patchValidated = AuditAction(known: "patch.validated")
    public static let patchApproved = AuditAction(known: "patch.approved")
    public static let patchRejected = AuditAction(known: "patch.rejected")
    public static let patchApplied = AuditAction(known: "patch.applied")
    public static let patchFailed = AuditAction(known: "patch.failed")
    // LLM, quotas, configuration, the audit log itself.
    public static let llmRequest = AuditAction(known: "llm.request")
    public static let quotaDenied = AuditAction(known: "quota.denied")
    public static let configChange = AuditAction(known: "config.change")
    public static let auditPrune = AuditAction(known: "audit.prune")
    public static let auditKeyRotate = AuditAction(known: "audit.key.rotate")

    /// Every action defined above, for documentation and tests.
    public static let known: [AuditAction] = [
        .authLoginSucceeded, .authLoginFailed, .authLogout, .wsOpen, .wsClose,
        .workspaceCreate, .workspaceDelete, .workspaceRename, .memberAdd, .memberRemove, .memberRoleChange,
        .fileCreate, .fileWrite, .fileRename, .fileDelete, .documentSave,
        .kernelStart, .kernelStop, .kernelRestart, .kernelInterrupt, .kernelOOMKill, .kernelExecute, .runOneShot,
        .patchProposed, .patchValidated, .patchApproved, .patchRejected, .patchApplied, .patchFailed,
        .llmRequest, .quotaDenied, .configChange, .auditPrune, .auditKeyRotate,
    ]
}

/// How the action ended. A struct over a string, like ``AuditAction``.
public struct AuditOutcome: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init?(rawValue: String) {
        guard AuditAction.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }
    private init(known: String) { self.rawValue = known }
    public var description: String { rawValue }

    public static let success = AuditOutcome(known: "success")
    /// The action was attempted and failed (a non-zero exit, a failed patch).
    public static let failure = AuditOutcome(known: "failure")
    /// The action was refused (authorization, quota).
    public static let denied = AuditOutcome(known: "denied")
    /// The server failed while carrying it out.
    public static let error = AuditOutcome(known: "error")
}

/// Who acted: a user or service id and the role they acted in.
public struct AuditActor: Hashable, Sendable {
    public var id: String
    public var role: String
    public init(id: String, role: String) {
        self.id = id
        self.role = role
    }
    /// The server itself (startup, pruning, key rotation).
    public static let system = AuditActor(id: "system", role: "system")
    /// An unauthenticated peer (failed logins).
    public static func anonymous(_ peer: String = "") -> AuditActor { AuditActor(id: peer, role: "anonymous") }
}

/// One named value of an entry, in clear (numbers and short metadata) or as a keyed digest.
public enum AuditFieldValue: Hashable, Sendable {
    /// A number: sizes in bytes, durations in microseconds or milliseconds (say so in the name),
    /// exit status, token counts, CPU time, peak memory.
    case integer(Int64)
    /// Short metadata in clear: a model name, a kernel id, a language. Never content.
    case text(String)
    /// `HMAC-SHA256(contentKey, content)`: the only way content appears.
    case digest(AuditHash)

    /// The tag byte in the canonical encoding.
    var tag: UInt8 {
        switch self {
        case .integer: 1
        case .text: 2
        case .digest: 3
        }
    }
}

/// One named value of an event.
public struct AuditField: Hashable, Sendable {
    public var name: String
    public var value: AuditFieldValue
    public init(name: String, value: AuditFieldValue) {
        self.name = name
        self.value = value
    }
}

/// An action to record, as a caller builds it. The log adds the sequence number, the time and
/// the chain hash when it is appended.
///
/// Content (code, output, file content, diffs, prompts, responses) can only be added through
/// ``addDigest(_:of:key:)``, which keeps `HMAC-SHA256(key, content)` and nothing else:
///
/// ```swift
/// var event = AuditEvent(.kernelExecute, actor: AuditActor(id: "u42", role: "editor"), workspace: "w7", outcome: .success)
/// event.add("duration_us", 12_500)
/// event.add("exit_status", 0)
/// event.addDigest("code", of: Array(code.utf8), key: log.contentKey)
/// event.addDigest("output", of: outputBytes, key: log.contentKey)
/// try log.append(event)
/// ```
public struct AuditEvent: Sendable, Equatable {
    public var action: AuditAction
    public var actor: AuditActor
    /// The workspace acted on; empty for actions outside any workspace.
    public var workspace: String
    public var outcome: AuditOutcome
    /// Named values, kept sorted by name (bytewise), names unique.
    public private(set) var fields: [AuditField] = []
    /// The id of the key the digests were made with (nil while there are none).
    public private(set) var contentKeyID: String?

    public init(_ action: AuditAction, actor: AuditActor, workspace: String = "", outcome: AuditOutcome = .success) {
        self.action = action
        self.actor = actor
        self.workspace = workspace
        self.outcome = outcome
    }

    /// Adds a number (size, duration, status, count). Replaces a field of the same name.
    public mutating func add(_ name: String, _ value: Int64) {
        precondition(AuditEvent.isValidFieldName(name), "invalid audit field name")
        set(name, .integer(value))
    }

    /// Adds a number (size, duration, status, count). Replaces a field of the same name.
    public mutating func add(_ name: String, _ value: Int) { add(name, Int64(value)) }

    /// Adds short metadata in clear (model name, kernel id). Never pass content here: content
    /// goes through ``addDigest(_:of:key:)``.
    public mutating func add(_ name: String, text: String) {
        precondition(AuditEvent.isValidFieldName(name), "invalid audit field name")
        set(name, .text(text))
    }

    /// Adds `HMAC-SHA256(key, content)` under `name`; the content itself is not kept.
    ///
    /// All digests of one event must use the same key (the entry records one key id).
    public mutating func addDigest(_ name: String, of content: some Collection<UInt8>, key: AuditContentKey) {
        addDigest(name, key.digest(content), keyID: key.id)
    }

    /// Adds a digest computed earlier with the key whose id is `keyID`.
    public mutating func addDigest(_ name: String, _ digest: AuditHash, keyID: String) {
        precondition(AuditEvent.isValidFieldName(name), "invalid audit field name")
        precondition(contentKeyID == nil || contentKeyID == keyID, "digests of one audit event must share one key")
        contentKeyID = keyID
        set(name, .digest(digest))
    }

    /// Adds an identifier (a file path, a workspace name): in clear, or as a digest when
    /// `hashed` (the `audit.hashIdentifiers` setting).
    public mutating func addIdentifier(_ name: String, _ value: String, hashed: Bool, key: AuditContentKey) {
        if hashed {
            addDigest(name, of: Array(value.utf8), key: key)
        } else {
            add(name, text: value)
        }
    }

    /// Inserts or replaces, keeping `fields` sorted (events have a handful of fields).
    private mutating func set(_ name: String, _ value: AuditFieldValue) {
        var i = fields.count
        while i > 0 {
            let existing = fields[i - 1].name
            if existing == name {
                fields[i - 1].value = value
                return
            }
            if existing.utf8.lexicographicallyPrecedes(name.utf8) { break }
            i -= 1
        }
        fields.insert(AuditField(name: name, value: value), at: i)
    }

    /// Field names: 1...64 bytes of lower-case letters, digits, `_`, `.` and `-`.
    static func isValidFieldName(_ name: String) -> Bool { AuditAction.isValid(name) }
}
