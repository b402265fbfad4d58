// API tokens, principals, and the secrets behind tokens and session cookies.
import TandemCrypto

/// What the store keeps about an API token. The token itself is never stored: only its
/// SHA-256 and its first 8 characters (for listings).
public struct TokenInfo: Sendable, Hashable, Identifiable {
    /// A token's id (its row id), for listing and revoking.
    public struct ID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public let rawValue: Int64
        public init(_ rawValue: Int64) { self.rawValue = rawValue }
        public static func < (a: ID, b: ID) -> Bool { a.rawValue < b.rawValue }
        public var description: String { String(rawValue) }
    }

    /// Whether a token can be used.
    public enum State: String, Sendable, Hashable {
        case active, expired, revoked
    }

    public let id: ID
    public var user: User.ID
    /// A label chosen by its owner (1–100 characters).
    public var name: String
    /// The first 8 characters of the token (`tdm_` and 4 more), to recognise it.
    public var prefix: String
    /// The only workspace the token may be used for; nil: every workspace of its user.
    public var workspaceScope: Workspace.ID?
    /// Unix seconds. `lastUsedAt` is updated at most once a minute.
    public var createdAt: Int64
    public var lastUsedAt: Int64?
    public var expiresAt: Int64?
    public var revokedAt: Int64?

    public init(
        id: ID, user: User.ID, name: String, prefix: String, workspaceScope: Workspace.ID?, createdAt: Int64,
        lastUsedAt: Int64?, expiresAt: Int64?, revokedAt: Int64?
    ) {
        self.id = id
        self.user = user
        self.name = name
        self.prefix = prefix
        self.workspaceScope = workspaceScope
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// The token's state at `now` (unix seconds): revoked wins over expired. A token expires at
    /// `expiresAt` exactly.
    public func state(at now: Int64) -> State {
        if revokedAt != nil { return .revoked }
        if let expiresAt, now >= expiresAt { return .expired }
        return .active
    }
}

/// Who a request acts for: a user, authenticated by a token (possibly limited to one workspace)
/// or by a session.
public struct Principal: Sendable, Hashable {
    public var user: User
    /// The only workspace the request may touch; nil: every workspace of the user.
    public var workspaceScope: Workspace.ID?
    /// The token that authenticated the request; nil for a session.
    public var token: TokenInfo.ID?

    public init(user: User, workspaceScope: Workspace.ID?, token: TokenInfo.ID? = nil) {
        self.user = user
        self.workspaceScope = workspaceScope
        self.token = token
    }

    /// Whether the token's scope admits `workspace`. The caller still checks the user's role.
    public func scopeAllows(_ workspace: Workspace.ID) -> Bool {
        workspaceScope == nil || workspaceScope == workspace
    }
}

/// Random secrets and their digests. Only digests reach the database.
enum Secret {
    /// The prefix of every API token; lets secret scanners recognise leaked tokens.
    static let tokenPrefix = "tdm_"
    /// `tdm_` + 43 characters of unpadded base64url (32 random bytes).
    static let tokenLength = 4 + 43
    /// Unpadded base64url of 32 random bytes.
    static let cookieLength = 43
    /// Characters of a token kept in clear for listings.
    static let listedPrefixLength = 8

    /// A fresh API token.
    static func newToken() -> String { tokenPrefix + Base64.encode(SecureRandom.bytes(32), url: true) }

    /// A fresh session cookie value.
    static func newCookie() -> String { Base64.encode(SecureRandom.bytes(32), url: true) }

    /// SHA-256 of the secret's UTF-8 bytes.
    static func digest(_ secret: String) -> [UInt8] { Digest.sha256(secret.utf8) }

    /// Cheap shape check before hashing: a token is `tdm_` + 43 base64url characters.
    static func looksLikeToken(_ s: String) -> Bool {
        let u = s.utf8
        return u.count == tokenLength && s.hasPrefix(tokenPrefix) && u.dropFirst(4).allSatisfy(isBase64URL)
    }

    /// Cheap shape check for a cookie value: 43 base64url characters.
    static func looksLikeCookie(_ s: String) -> Bool {
        s.utf8.count == cookieLength && s.utf8.allSatisfy(isBase64URL)
    }

    private static func isBase64URL(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}
