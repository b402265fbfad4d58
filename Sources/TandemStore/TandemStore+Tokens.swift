// API tokens: create (the plaintext is returned once), authenticate, list, revoke.
import TandemSQLite

extension TandemStore {
    /// How often `last_used_at` is written at most, in seconds: authentication stays a read on
    /// the hot path.
    static let lastUsedResolution: Int64 = 60

    /// Creates an API token: `tdm_` + 43 characters of base64url (32 random bytes).
    ///
    /// - Parameters:
    ///   - user: The owner; must exist and not be disabled.
    ///   - name: A label (1–100 characters, no control characters).
    ///   - workspace: Limit the token to this workspace (it must exist); nil: every workspace of
    ///     the user. The store does not check membership: the server checks the user's role at
    ///     each use.
    ///   - expiresIn: Seconds until it expires (> 0); nil: never.
    /// - Returns: The token, to show once (only its digest is stored), and its record.
    /// - Throws: `invalid_name`, `invalid_argument`, `not_found` (user or workspace), `forbidden`
    ///   (disabled user).
    public func createToken(
        user: User.ID, name: String, workspace: Workspace.ID? = nil, expiresIn: Int64? = nil
    ) throws(StoreError) -> (plaintext: String, info: TokenInfo) {
        guard let label = Names.cleanText(name) else {
            throw StoreError(.invalidName, "a token name is 1-100 characters without control characters")
        }
        if let expiresIn, expiresIn <= 0 { throw StoreError(.invalidArgument, "a token's lifetime must be positive") }
        let plaintext = Secret.newToken()
        let hash = Secret.digest(plaintext)
        let prefix = String(plaintext.prefix(Secret.listedPrefixLength))
        let now = clock()
        let expiresAt = expiresIn.map { now.addingReportingOverflow($0).overflow ? Int64.max : now + $0 }
        let info = try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                _ = try db.activeUser(user)
                if let workspace, try db.workspace(workspace) == nil { throw .noWorkspace(workspace) }
                let id = try db.insert(
                    """
                    INSERT INTO tokens(user_id, name, hash, prefix, workspace_scope, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, user, label, hash, prefix, workspace, now, expiresAt)
                return TokenInfo(
                    id: TokenInfo.ID(id), user: user, name: label, prefix: prefix, workspaceScope: workspace, createdAt: now,
                    lastUsedAt: nil, expiresAt: expiresAt, revokedAt: nil)
            }
        }
        return (plaintext, info)
    }

    private static let authenticateSQL = """
        SELECT t.id, t.workspace_scope, t.expires_at, t.revoked_at, t.last_used_at, \(User.qualifiedColumns("u"))
        FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?
        """

    /// The principal a token stands for, or nil when the token is unknown, revoked, expired, or
    /// its user is disabled. Records the use (`last_used_at`) at most once a minute.
    ///
    /// Cost: a SHA-256 outside the lock, one indexed lookup inside it, and once a minute per
    /// token a one-row UPDATE.
    public func authenticate(token: String) throws(StoreError) -> Principal? {
        guard Secret.looksLikeToken(token) else { return nil }
        let hash = Secret.digest(token)
        let now = clock()
        return try locked { db throws(StoreError) -> Principal? in
            let found = try db.row(Self.authenticateSQL, hash) { s in
                (
                    id: TokenInfo.ID(s.int64(0)), scope: s.optionalText(1).map(Workspace.ID.init(stored:)),
                    expiresAt: s.optionalInt64(2), revoked: !s.isNull(3), lastUsedAt: s.optionalInt64(4), user: User(row: s, at: 5)
                )
            }
            guard let found, !found.revoked, !found.user.isDisabled else { return nil }
            if let e = found.expiresAt, now >= e { return nil }
            if found.lastUsedAt.map({ now - $0 >= Self.lastUsedResolution || now < $0 }) ?? true {
                // Best effort: a valid token is not refused because the bookkeeping write failed
                // (e.g. another process held the write lock past the busy timeout).
                _ = try? db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", now, found.id)
            }
            return Principal(user: found.user, workspaceScope: found.scope, token: found.id)
        }
    }

    /// One token's record, or nil.
    public func token(id: TokenInfo.ID) throws(StoreError) -> TokenInfo? {
        try locked { db throws(StoreError) in try db.token(id) }
    }

    /// The tokens of `user` (nil: of every user), newest first, revoked and expired ones included.
    public func tokens(of user: User.ID?) throws(StoreError) -> [TokenInfo] {
        try locked { db throws(StoreError) in
            if let user {
                return try db.rows(
                    "SELECT \(TokenInfo.columns) FROM tokens WHERE user_id = ? ORDER BY id DESC", user, map: { TokenInfo(row: $0) })
            }
            return try db.rows("SELECT \(TokenInfo.columns) FROM tokens ORDER BY id DESC", map: { TokenInfo(row: $0) })
        }
    }

    /// Revokes a token. Revoking a revoked token changes nothing (the first time is kept).
    ///
    /// - Parameters:
    ///   - id: The token.
    ///   - by: Who revokes it: its owner or an admin; nil for the operator (command line).
    /// - Returns: The token's record after the change.
    /// - Throws: `not_found` when the token does not exist or `by` is neither its owner nor an
    ///   admin (the existence of other users' tokens is not revealed).
    @discardableResult
    public func revokeToken(id: TokenInfo.ID, by actor: User.ID?) throws(StoreError) -> TokenInfo {
        let now = clock()
        return try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                let notFound = StoreError(.notFound, "no token \(id)")
                guard var info = try db.token(id) else { throw notFound }
                if let actor, actor != info.user {
                    guard let u = try db.user(actor), u.isAdmin, !u.isDisabled else { throw notFound }
                }
                if info.revokedAt == nil {
                    try db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", now, id)
                    info.revokedAt = now
                }
                return info
            }
        }
    }
}

extension StoreDatabase {
    func token(_ id: TokenInfo.ID) throws(StoreError) -> TokenInfo? {
        try row("SELECT \(TokenInfo.columns) FROM tokens WHERE id = ?", id, map: { TokenInfo(row: $0) })
    }
}

extension TokenInfo {
    static let columns = "id, user_id, name, prefix, workspace_scope, created_at, last_used_at, expires_at, revoked_at"

    init(row s: SQLiteStatement) {
        self.init(
            id: ID(s.int64(0)), user: User.ID(s.int64(1)), name: s.text(2), prefix: s.text(3),
            workspaceScope: s.optionalText(4).map(Workspace.ID.init(stored:)), createdAt: s.int64(5), lastUsedAt: s.optionalInt64(6),
            expiresAt: s.optionalInt64(7), revokedAt: s.optionalInt64(8))
    }
}

extension User {
    /// ``columns`` qualified with a table alias.
    static func qualifiedColumns(_ alias: String) -> String {
        columns.split(separator: ",").map { "\(alias).\($0.trimmingPrefix(" "))" }.joined(separator: ", ")
    }
}
