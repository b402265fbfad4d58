// The store's schema: one migration per version (`PRAGMA user_version`). Never edit a released
// migration; append a new one.

enum StoreSchema {
    static let migrations: [String] = [
        // 1: users, tokens, sessions, workspaces, members, usage.
        """
        CREATE TABLE users(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
            created_at INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
        ) STRICT;

        CREATE TABLE workspaces(
            id TEXT PRIMARY KEY CHECK (length(id) = 12),
            name TEXT NOT NULL,
            created_by INTEGER NOT NULL REFERENCES users(id),
            created_at INTEGER NOT NULL,
            archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
            template TEXT,
            origin TEXT
        ) STRICT;

        CREATE TABLE members(
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer', 'agent')),
            added_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            added_at INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, user_id)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX members_by_user ON members(user_id);

        CREATE TABLE tokens(
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
            prefix TEXT NOT NULL,
            workspace_scope TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            last_used_at INTEGER,
            expires_at INTEGER,
            revoked_at INTEGER
        ) STRICT;
        CREATE INDEX tokens_by_user ON tokens(user_id);
        CREATE INDEX tokens_by_scope ON tokens(workspace_scope) WHERE workspace_scope IS NOT NULL;

        CREATE TABLE sessions(
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX sessions_by_user ON sessions(user_id);
        CREATE INDEX sessions_by_expiry ON sessions(expires_at);

        CREATE TABLE usage(
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            executions INTEGER NOT NULL DEFAULT 0 CHECK (executions >= 0),
            cpu_ms INTEGER NOT NULL DEFAULT 0 CHECK (cpu_ms >= 0),
            PRIMARY KEY (user_id, day)
        ) STRICT, WITHOUT ROWID;
        """,
        // 2: per-member grants beyond the role (agents run code only when granted).
        """
        ALTER TABLE members ADD COLUMN can_run INTEGER NOT NULL DEFAULT 0 CHECK (can_run IN (0, 1));
        """,
    ]
}
