// Workspaces and their members. Every workspace keeps at least one owner.
import TandemSQLite

extension TandemStore {
    /// Creates a workspace with a fresh random id; `owner` becomes its first member, as owner.
    ///
    /// - Parameters:
    ///   - name: 1–100 characters, no control characters (surrounding whitespace is trimmed).
    ///   - owner: Must exist and not be disabled.
    ///   - template: The template it starts from (1–100 characters), if any.
    ///   - origin: The git URL it is cloned from (up to 2048 characters), if any.
    /// - Throws: `invalid_name`, `invalid_argument`, `not_found`, `forbidden` (disabled owner).
    public func createWorkspace(
        name: String, owner: User.ID, template: String? = nil, origin: String? = nil
    ) throws(StoreError) -> Workspace {
        let name = try Self.workspaceName(name)
        let template = try template.map { (t: String) throws(StoreError) -> String in
            guard let t = Names.cleanText(t) else { throw StoreError(.invalidArgument, "a template name is 1-100 characters") }
            return t
        }
        let origin = try origin.map { (o: String) throws(StoreError) -> String in
            guard let o = Names.cleanText(o, maxCharacters: 2048) else {
                throw StoreError(.invalidArgument, "an origin is 1-2048 characters without control characters")
            }
            return o
        }
        let now = clock()
        // 60 random bits: a collision is all but impossible, but retry rather than fail.
        let candidates = (0..<4).map { _ in Workspace.ID.random() }
        return try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                _ = try db.activeUser(owner)
                for id in candidates {
                    if try db.workspace(id) != nil { continue }
                    try db.execute(
                        "INSERT INTO workspaces(id, name, created_by, created_at, archived, template, origin) VALUES (?, ?, ?, ?, 0, ?, ?)",
                        id, name, owner, now, template, origin)
                    try db.execute(
                        "INSERT INTO members(workspace_id, user_id, role, added_by, added_at) VALUES (?, ?, 'owner', ?, ?)",
                        id, owner, owner, now)
                    return Workspace(
                        id: id, name: name, createdBy: owner, createdAt: now, isArchived: false, template: template, origin: origin)
                }
                throw StoreError(.conflict, "could not find a free workspace id")
            }
        }
    }

    /// The workspace, or nil.
    public func workspace(id: Workspace.ID) throws(StoreError) -> Workspace? {
        try locked { db throws(StoreError) in try db.workspace(id) }
    }

    /// The workspaces `user` is a member of, with the user's role, by name.
    ///
    /// - Parameter includeArchived: Include archived workspaces.
    public func workspaces(for user: User.ID, includeArchived: Bool = false) throws(StoreError) -> [(workspace: Workspace, role: Role)] {
        try locked { db throws(StoreError) in
            try db.rows(
                """
                SELECT \(Workspace.columns("w")), m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id
                WHERE m.user_id = ? AND (? OR w.archived = 0) ORDER BY w.name, w.id
                """, user, includeArchived
            ) { s in (workspace: Workspace(row: s), role: Role(stored: s.text(7))) }
        }
    }

    /// Every workspace (administration), by name.
    public func allWorkspaces(includeArchived: Bool = true) throws(StoreError) -> [Workspace] {
        try locked { db throws(StoreError) in
            try db.rows(
                "SELECT \(Workspace.columns("w")) FROM workspaces w WHERE (? OR w.archived = 0) ORDER BY w.name, w.id", includeArchived
            ) { Workspace(row: $0) }
        }
    }

    /// Renames a workspace.
    ///
    /// - Throws: `invalid_name`, `not_found`.
    @discardableResult
    public func renameWorkspace(_ id: Workspace.ID, to name: String) throws(StoreError) -> Workspace {
        let name = try Self.workspaceName(name)
        return try locked { db throws(StoreError) in
            guard try db.execute("UPDATE workspaces SET name = ? WHERE id = ?", name, id) == 1, let w = try db.workspace(id) else {
                throw .noWorkspace(id)
            }
            return w
        }
    }

    /// Archives or restores a workspace.
    ///
    /// - Throws: `not_found`.
    public func archiveWorkspace(_ id: Workspace.ID, archived: Bool = true) throws(StoreError) {
        try locked { db throws(StoreError) in
            guard try db.execute("UPDATE workspaces SET archived = ? WHERE id = ?", archived, id) == 1 else { throw .noWorkspace(id) }
        }
    }

    /// Deletes a workspace's rows: the workspace, its members, and the tokens scoped to it.
    /// Its files are the caller's to remove.
    ///
    /// - Throws: `not_found`.
    public func deleteWorkspace(_ id: Workspace.ID) throws(StoreError) {
        try locked { db throws(StoreError) in
            guard try db.execute("DELETE FROM workspaces WHERE id = ?", id) == 1 else { throw .noWorkspace(id) }
        }
    }

    /// `user`'s role in `workspace`, or nil when not a member (or either does not exist).
    public func role(of user: User.ID, in workspace: Workspace.ID) throws(StoreError) -> Role? {
        try locked { db throws(StoreError) in try db.role(user, workspace) }
    }

    /// Adds a member or changes a member's role.
    ///
    /// The store enforces only that the last owner stays an owner; who may add whom is the
    /// caller's policy (check ``role(of:in:)`` of `by` first).
    ///
    /// - Parameters:
    ///   - by: Who makes the change (recorded as `added_by` for new members); nil: the operator.
    /// - Returns: The member after the change.
    /// - Throws: `not_found` (workspace or user), `conflict` (demoting the last owner).
    /// A member (role and grants), or nil when not a member.
    public func member(_ user: User.ID, in workspace: Workspace.ID) throws(StoreError) -> Member? {
        try locked { db throws(StoreError) in try db.member(workspace, user) }
    }

    /// Grants or withdraws running code beyond the role (used for agents).
    /// - Throws: `not_found` when `user` is not a member.
    public func setCanRun(workspace: Workspace.ID, user: User.ID, _ canRun: Bool) throws(StoreError) {
        try locked { db throws(StoreError) in
            guard try db.execute("UPDATE members SET can_run = ? WHERE workspace_id = ? AND user_id = ?", Int64(canRun ? 1 : 0), workspace, user) == 1 else {
                throw StoreError(.notFound, "user \(user) is not a member of workspace \(workspace)")
            }
        }
    }

    @discardableResult
    public func setMember(workspace: Workspace.ID, user: User.ID, role: Role, by actor: User.ID?) throws(StoreError) -> Member {
        let now = clock()
        return try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                guard try db.workspace(workspace) != nil else { throw .noWorkspace(workspace) }
                guard try db.user(user) != nil else { throw .noUser(user) }
                if let current = try db.role(user, workspace) {
                    if current == .owner && role != .owner { try db.requireAnotherOwner(workspace, besides: user) }
                    try db.execute("UPDATE members SET role = ? WHERE workspace_id = ? AND user_id = ?", role, workspace, user)
                } else {
                    try db.execute(
                        "INSERT INTO members(workspace_id, user_id, role, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
                        workspace, user, role, actor, now)
                }
                guard let m = try db.member(workspace, user) else { throw StoreError(.database, "member vanished") }
                return m
            }
        }
    }

    /// Removes a member.
    ///
    /// - Throws: `not_found` when `user` is not a member, `conflict` when it is the last owner.
    public func removeMember(workspace: Workspace.ID, user: User.ID) throws(StoreError) {
        try locked { db throws(StoreError) in
            try db.transaction { () throws(StoreError) in
                guard let current = try db.role(user, workspace) else {
                    throw StoreError(.notFound, "user \(user) is not a member of workspace \(workspace)")
                }
                if current == .owner { try db.requireAnotherOwner(workspace, besides: user) }
                try db.execute("DELETE FROM members WHERE workspace_id = ? AND user_id = ?", workspace, user)
            }
        }
    }

    /// The members of a workspace: owners first, then by name.
    ///
    /// - Throws: `not_found` when the workspace does not exist.
    public func members(of workspace: Workspace.ID) throws(StoreError) -> [Member] {
        try locked { db throws(StoreError) in
            let members = try db.rows(
                """
                SELECT \(Member.columns) FROM members m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ?
                ORDER BY m.role <> 'owner', u.name
                """, workspace
            ) { Member(row: $0) }
            // A workspace always has an owner, so no rows means no workspace.
            if members.isEmpty, try db.workspace(workspace) == nil { throw .noWorkspace(workspace) }
            return members
        }
    }

    static func workspaceName(_ name: String) throws(StoreError) -> String {
        guard let n = Names.cleanText(name) else {
            throw StoreError(.invalidName, "a workspace name is 1-100 characters without control characters")
        }
        return n
    }
}

extension StoreDatabase {
    func workspace(_ id: Workspace.ID) throws(StoreError) -> Workspace? {
        try row("SELECT \(Workspace.columns("w")) FROM workspaces w WHERE w.id = ?", id) { Workspace(row: $0) }
    }

    func role(_ user: User.ID, _ workspace: Workspace.ID) throws(StoreError) -> Role? {
        try row("SELECT role FROM members WHERE workspace_id = ? AND user_id = ?", workspace, user) { Role(stored: $0.text(0)) }
    }

    func member(_ workspace: Workspace.ID, _ user: User.ID) throws(StoreError) -> Member? {
        try row(
            "SELECT \(Member.columns) FROM members m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ? AND m.user_id = ?",
            workspace, user
        ) { Member(row: $0) }
    }

    /// Throws `conflict` unless `workspace` has an owner other than `user`.
    func requireAnotherOwner(_ workspace: Workspace.ID, besides user: User.ID) throws(StoreError) {
        let others = try count(
            "SELECT count(*) FROM members WHERE workspace_id = ? AND role = 'owner' AND user_id <> ?", workspace, user)
        if others == 0 {
            throw StoreError(.conflict, "workspace \(workspace) must keep at least one owner")
        }
    }
}

extension Workspace {
    static func columns(_ alias: String) -> String {
        ["id", "name", "created_by", "created_at", "archived", "template", "origin"].map { "\(alias).\($0)" }.joined(separator: ", ")
    }

    /// Reads ``columns(_:)`` from column 0.
    init(row s: SQLiteStatement) {
        self.init(
            id: ID(stored: s.text(0)), name: s.text(1), createdBy: User.ID(s.int64(2)), createdAt: s.int64(3),
            isArchived: s.bool(4), template: s.optionalText(5), origin: s.optionalText(6))
    }
}

extension Member {
    static let columns = "m.workspace_id, m.user_id, u.name, u.display_name, m.role, m.added_by, m.added_at, m.can_run"

    init(row s: SQLiteStatement) {
        self.init(
            workspace: Workspace.ID(stored: s.text(0)), user: User.ID(s.int64(1)), userName: s.text(2),
            displayName: s.text(3), role: Role(stored: s.text(4)), addedBy: s.optionalInt64(5).map(User.ID.init),
            addedAt: s.int64(6), canRun: s.int64(7) != 0)
    }
}

extension Role {
    /// A role read from the table, whose CHECK admits only the four names; anything else
    /// (a damaged file) reads as the least privileged role.
    init(stored: String) { self = Role(rawValue: stored) ?? .viewer }
}
