// TandemStore: the server's metadata (users, API tokens, sessions, workspaces, members, daily
// usage) in one SQLite file.
//
// Codemap:
// - TandemStore              the Sendable face: one connection behind a Mutex, the clock
// - StoreDatabase            the connection, cached statements, binding, transactions
// - StoreSchema              migrations (PRAGMA user_version)
// - TandemStore+Users/+Tokens/+Sessions/+Workspaces/+Usage   the operations
// - User, TokenInfo, Principal, Workspace, Role, Member, Usage   value types returned
// - StoreError               stable codes, HTTP status
// - LoginRateLimiter         failures per address and per user name, clock passed in
//
// Invariants: tokens and cookies are stored only as SHA-256 digests (plus the first 8 token
// characters); every workspace keeps at least one owner; each public operation holds the lock
// for a few indexed statements and nothing else (no hashing, no random generation inside it).
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The metadata store. Thread-safe: every operation takes the store's lock, runs a few small
/// indexed statements on its one SQLite connection and returns value types. Operations are
/// meant to be cheap enough for event-loop threads (a few µs for lookups; writes append to the
/// WAL without fsync). A write can wait up to the busy timeout when another process (the
/// command line) holds the write lock.
///
/// ```swift
/// let store = try TandemStore(path: data + "/.tandem/tandem.db")
/// let alice = try store.createUser(name: "alice")
/// let (token, _) = try store.createToken(user: alice.id, name: "laptop")
/// let principal = try store.authenticate(token: token)   // Principal(user: alice, ...)
/// ```
public final class TandemStore: Sendable {
    /// The connection and its statements; the lock makes their single-thread use safe.
    private let database: Mutex<StoreDatabase>
    /// Unix seconds now; injected for tests.
    let clock: @Sendable () -> Int64
    /// The database file.
    public let path: String

    /// Opens the store, creating the file (mode 0600) and the schema when missing, and migrating
    /// an older schema.
    ///
    /// - Parameters:
    ///   - path: The SQLite file. Its directory must exist.
    ///   - busyTimeoutMilliseconds: How long a statement waits for another process's lock.
    ///   - clock: Unix seconds now; tests pass a controllable clock.
    /// - Throws: `StoreError` (`database`) when the file cannot be opened or its schema is newer
    ///   than this program's.
    public init(
        path: String, busyTimeoutMilliseconds: Int32 = 2000,
        clock: @escaping @Sendable () -> Int64 = TandemStore.systemClock
    ) throws(StoreError) {
        self.path = path
        self.clock = clock
        self.database = Mutex(try StoreDatabase(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds))
    }

    /// The schema version the file is at (the number of migrations applied).
    public func schemaVersion() throws(StoreError) -> Int {
        try locked { db throws(StoreError) in try db.schemaVersion() }
    }

    /// Wall-clock unix seconds, the default clock.
    public static let systemClock: @Sendable () -> Int64 = { Int64(time(nil)) }

    /// The schema version this program writes.
    public static var currentSchemaVersion: Int { StoreSchema.migrations.count }

    /// Runs `body` with the database under the lock.
    func locked<R: Sendable>(_ body: (StoreDatabase) throws(StoreError) -> R) throws(StoreError) -> R {
        try database.withLock { db throws(StoreError) -> R in try body(db) }
    }
}
