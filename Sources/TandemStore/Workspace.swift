// Workspaces, roles and members.
import TandemCrypto

/// A workspace's metadata (its files live elsewhere).
public struct Workspace: Sendable, Hashable, Identifiable {
    /// A workspace id: 12 characters of lowercase base32 (`a-z`, `2-7`), 60 random bits.
    public struct ID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public let rawValue: String

        /// Parses an id; nil unless it is exactly 12 characters of `[a-z2-7]`.
        public init?(_ string: some StringProtocol) {
            guard Self.isValid(string) else { return nil }
            self.rawValue = String(string)
        }

        /// An id read from the database: written only by ``random()``, so not checked again.
        init(stored: String) { self.rawValue = stored }

        public static func < (a: ID, b: ID) -> Bool { a.rawValue < b.rawValue }
        public var description: String { rawValue }

        /// The id alphabet: RFC 4648 base32, lowercased.
        static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        static let length = 12

        static func isValid(_ s: some StringProtocol) -> Bool {
            var n = 0
            for c in s.utf8 {
                guard (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "2") && c <= UInt8(ascii: "7")) else {
                    return false
                }
                n += 1
            }
            return n == length
        }

        /// A fresh random id (each byte's low 5 bits pick a character: 256 is a multiple of 32,
        /// so the choice is unbiased).
        static func random() -> ID {
            let bytes = SecureRandom.bytes(length)
            return ID(stored: String(decoding: bytes.map { alphabet[Int($0 & 31)] }, as: UTF8.self))
        }
    }

    public let id: ID
    /// 1–100 characters, no control characters, no surrounding whitespace.
    public var name: String
    public var createdBy: User.ID
    /// Unix seconds.
    public var createdAt: Int64
    /// Archived workspaces are hidden from ``TandemStore/workspaces(for:includeArchived:)`` by default.
    public var isArchived: Bool
    /// The template it was created from, if any.
    public var template: String?
    /// The git URL it was cloned from, if any.
    public var origin: String?

    public init(
        id: ID, name: String, createdBy: User.ID, createdAt: Int64, isArchived: Bool, template: String?, origin: String?
    ) {
        self.id = id
        self.name = name
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.isArchived = isArchived
        self.template = template
        self.origin = origin
    }
}

/// A member's role in a workspace. What each role may do is the server's policy; the store only
/// keeps the invariant that every workspace has at least one owner.
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Manages members, renames, archives and deletes the workspace.
    case owner
    /// Edits documents and runs code.
    case editor
    /// Reads.
    case viewer
    /// An automated participant (a bot or an AI agent acting for someone).
    case agent
}

/// One member of a workspace.
public struct Member: Sendable, Hashable {
    public var workspace: Workspace.ID
    public var user: User.ID
    /// The member's login name and display name, for listings.
    public var userName: String
    public var displayName: String
    public var role: Role
    /// Who added the member (nil: the command line or the system).
    public var addedBy: User.ID?
    /// Unix seconds.
    public var addedAt: Int64
    /// Granted running code beyond the role (meaningful for agents; other roles decide by role).
    public var canRun: Bool = false

    public init(
        workspace: Workspace.ID, user: User.ID, userName: String, displayName: String, role: Role, addedBy: User.ID?,
        addedAt: Int64, canRun: Bool = false
    ) {
        self.canRun = canRun
        self.workspace = workspace
        self.user = user
        self.userName = userName
        self.displayName = displayName
        self.role = role
        self.addedBy = addedBy
        self.addedAt = addedAt
    }
}
