// Users: create, look up, list, admin flag, disable.
import TandemSQLite

extension TandemStore {
    /// Creates a user.
    ///
    /// - Parameters:
    ///   - name: The login name, `[a-z0-9][a-z0-9._-]{0,63}`.
    ///   - displayName: Shown to others (1–100 characters, no control characters); default: `name`.
    ///   - isAdmin: May administer the server.
    /// - Throws: `invalid_name` for a bad name or display name, `conflict` when the name is taken.
    public func createUser(name: String, displayName: String? = nil, isAdmin: Bool = false) throws(StoreError) -> User {
        guard Names.isValidUserName(name) else {
            throw StoreError(.invalidName, "a user name is 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
        }
        let display: String
        if let displayName {
            guard let d = Names.cleanText(displayName) else {
                throw StoreError(.invalidName, "a display name is 1-100 characters without control characters")
            }
            display = d
        } else {
            display = name
        }
        let now = clock()
        return try locked { db throws(StoreError) in
            do throws(StoreError) {
                let id = try db.insert(
                    "INSERT INTO users(name, display_name, is_admin, created_at, disabled) VALUES (?, ?, ?, ?, 0)",
                    name, display, isAdmin, now)
                return User(id: User.ID(id), name: name, displayName: display, isAdmin: isAdmin, createdAt: now, isDisabled: false)
            } catch where error.code == .conflict {
                throw StoreError(.conflict, "user \(name) already exists")
            }
        }
    }

    /// The user with this login name, or nil.
    public func user(named name: String) throws(StoreError) -> User? {
        try locked { db throws(StoreError) in try db.row("SELECT \(User.columns) FROM users WHERE name = ?", name, map: { User(row: $0) }) }
    }

    /// The user with this id, or nil.
    public func user(id: User.ID) throws(StoreError) -> User? {
        try locked { db throws(StoreError) in try db.user(id) }
    }

    /// Every user, by name.
    public func users() throws(StoreError) -> [User] {
        try locked { db throws(StoreError) in try db.rows("SELECT \(User.columns) FROM users ORDER BY name", map: { User(row: $0) }) }
    }

    /// How many users exist; 0 on first start.
    public func userCount() throws(StoreError) -> Int {
        try locked { db throws(StoreError) in Int(try db.count("SELECT count(*) FROM users")) }
    }

    /// Grants or withdraws administration.
    ///
    /// - Throws: `not_found` when there is no such user.
    public func setAdmin(_ user: User.ID, _ isAdmin: Bool) throws(StoreError) {
        try locked { db throws(StoreError) in
            guard try db.execute("UPDATE users SET is_admin = ? WHERE id = ?", isAdmin, user) == 1 else { throw .noUser(user) }
        }
    }

    /// Disables (or re-enables) a user. A disabled user's tokens and sessions stop working at
    /// once; disabling also deletes the user's sessions. Tokens are kept (re-enabling restores
    /// them) unless revoked.
    ///
    /// - Throws: `not_found` when there is no such user.
    public func disableUser(_ user: User.ID, disabled: Bool = true) throws(StoreError) {
        try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                guard try db.execute("UPDATE users SET disabled = ? WHERE id = ?", disabled, user) == 1 else { throw .noUser(user) }
                if disabled { try db.execute("DELETE FROM sessions WHERE user_id = ?", user) }
            }
        }
    }
}

extension StoreDatabase {
    func user(_ id: User.ID) throws(StoreError) -> User? {
        try row("SELECT \(User.columns) FROM users WHERE id = ?", id, map: { User(row: $0) })
    }

    /// The user, which must exist and not be disabled.
    func activeUser(_ id: User.ID) throws(StoreError) -> User {
        guard let u = try user(id) else { throw .noUser(id) }
        guard !u.isDisabled else { throw StoreError(.forbidden, "user \(u.name) is disabled") }
        return u
    }
}

extension User {
    /// The columns ``init(row:at:)`` reads, for `SELECT \(User.columns) FROM users`.
    static let columns = "id, name, display_name, is_admin, created_at, disabled"

    /// Reads ``columns`` starting at column `i`.
    init(row s: SQLiteStatement, at i: Int = 0) {
        self.init(
            id: ID(s.int64(i)), name: s.text(i + 1), displayName: s.text(i + 2), isAdmin: s.bool(i + 3),
            createdAt: s.int64(i + 4), isDisabled: s.bool(i + 5))
    }
}

extension StoreError {
    static func noUser(_ id: User.ID) -> StoreError { StoreError(.notFound, "no user \(id)") }
    static func noWorkspace(_ id: Workspace.ID) -> StoreError { StoreError(.notFound, "no workspace \(id)") }
}
