// Browser sessions: a random cookie value, stored as its SHA-256.

extension TandemStore {
    /// Starts a session for `user`.
    ///
    /// - Parameters:
    ///   - user: Must exist and not be disabled.
    ///   - ttl: Lifetime in seconds (> 0).
    /// - Returns: The cookie value (43 characters of base64url, 32 random bytes). Only its
    ///   digest is stored.
    /// - Throws: `invalid_argument`, `not_found`, `forbidden` (disabled user).
    public func createSession(user: User.ID, ttl: Int64) throws(StoreError) -> String {
        guard ttl > 0 else { throw StoreError(.invalidArgument, "a session's lifetime must be positive") }
        let cookie = Secret.newCookie()
        let hash = Secret.digest(cookie)
        let now = clock()
        let expiresAt = now.addingReportingOverflow(ttl).overflow ? Int64.max : now + ttl
        try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                _ = try db.activeUser(user)
                _ = try db.insert(
                    "INSERT INTO sessions(user_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)", user, hash, now, expiresAt)
            }
        }
        return cookie
    }

    private static let sessionSQL = """
        SELECT s.expires_at, \(User.qualifiedColumns("u")) FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?
        """

    /// The user of a valid session, or nil when the cookie is unknown, expired (the session is
    /// then deleted) or its user is disabled.
    public func session(_ cookie: String) throws(StoreError) -> User? {
        guard Secret.looksLikeCookie(cookie) else { return nil }
        let hash = Secret.digest(cookie)
        let now = clock()
        return try locked { db throws(StoreError) -> User? in
            guard let found = try db.row(Self.sessionSQL, hash, map: { (expiresAt: $0.int64(0), user: User(row: $0, at: 1)) }) else {
                return nil
            }
            let (expiresAt, user) = found
            if now >= expiresAt {
                try db.execute("DELETE FROM sessions WHERE hash = ?", hash)
                return nil
            }
            return user.isDisabled ? nil : user
        }
    }

    /// Ends a session (logout). Returns whether it existed.
    @discardableResult
    public func deleteSession(_ cookie: String) throws(StoreError) -> Bool {
        guard Secret.looksLikeCookie(cookie) else { return false }
        let hash = Secret.digest(cookie)
        return try locked { db throws(StoreError) in try db.execute("DELETE FROM sessions WHERE hash = ?", hash) == 1 }
    }

    /// Ends every session of `user`; returns how many there were.
    @discardableResult
    public func deleteSessions(of user: User.ID) throws(StoreError) -> Int {
        try locked { db throws(StoreError) in try db.execute("DELETE FROM sessions WHERE user_id = ?", user) }
    }

    /// Deletes expired sessions (housekeeping; lookups ignore them anyway); returns how many.
    @discardableResult
    public func deleteExpiredSessions() throws(StoreError) -> Int {
        let now = clock()
        return try locked { db throws(StoreError) in try db.execute("DELETE FROM sessions WHERE expires_at <= ?", now) }
    }
}
