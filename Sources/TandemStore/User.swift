// Users.

/// A user account.
public struct User: Sendable, Hashable, Identifiable {
    /// A user's id: the row id, stable for the life of the database.
    public struct ID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public let rawValue: Int64
        public init(_ rawValue: Int64) { self.rawValue = rawValue }
        public static func < (a: ID, b: ID) -> Bool { a.rawValue < b.rawValue }
        public var description: String { String(rawValue) }
    }

    public let id: ID
    /// The login name: `[a-z0-9][a-z0-9._-]{0,63}`, unique.
    public var name: String
    /// The name shown to others (1–100 characters, no control characters).
    public var displayName: String
    /// May administer the server (all users, all workspaces).
    public var isAdmin: Bool
    /// Unix seconds.
    public var createdAt: Int64
    /// A disabled user cannot authenticate: tokens and sessions are refused.
    public var isDisabled: Bool

    public init(id: ID, name: String, displayName: String, isAdmin: Bool, createdAt: Int64, isDisabled: Bool) {
        self.id = id
        self.name = name
        self.displayName = displayName
        self.isAdmin = isAdmin
        self.createdAt = createdAt
        self.isDisabled = isDisabled
    }
}
