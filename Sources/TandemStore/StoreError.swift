// Errors of the metadata store.
import TandemSQLite

/// An error of the metadata store, with a stable ``code`` for wire replies and a message for
/// people. Messages name what failed; they never contain tokens, cookies or other secrets.
///
/// A struct with an open set of codes, so codes can be added without breaking callers:
///
/// ```swift
/// do { try store.removeMember(workspace: ws, user: u) }
/// catch let e where e.code == .conflict { ... }
/// ```
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure. `description` is the stable wire string (`"not_found"`, ...).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }
        /// The wire string, e.g. `"not_found"`.
        public var rawValue: String { raw }

        /// The user, token, session or workspace does not exist (or is not visible to the caller).
        public static let notFound = Code("not_found")
        /// The change contradicts what is stored: a taken user name, removing or demoting the
        /// last owner of a workspace.
        public static let conflict = Code("conflict")
        /// A user, workspace or token name breaks the naming rules.
        public static let invalidName = Code("invalid_name")
        /// Any other argument is out of range (a negative duration, a malformed value).
        public static let invalidArgument = Code("invalid_argument")
        /// The operation is refused for this user (e.g. a token for a disabled user).
        public static let forbidden = Code("forbidden")
        /// Another process held the database lock past the busy timeout; retrying may work.
        public static let busy = Code("busy")
        /// SQLite failed otherwise (I/O, corruption, a schema newer than this program).
        public static let database = Code("database")
    }

    /// The stable code.
    public let code: Code
    /// A human-readable explanation.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "store \(code): \(message)" }

    /// The HTTP status a server should answer with for this error: 404, 409, 400, 403, 503, 500.
    public var httpStatus: Int {
        switch code {
        case .notFound: 404
        case .conflict: 409
        case .invalidName, .invalidArgument: 400
        case .forbidden: 403
        case .busy: 503
        default: 500
        }
    }

    /// Maps a SQLite error: constraint violations become `conflict` (unique, primary key),
    /// `not_found` (foreign key) or `invalid_argument` (check, not null); lock time-outs `busy`;
    /// everything else `database`.
    init(_ e: SQLiteError) {
        switch e.constraint {
        case .unique?, .primaryKey?:
            self.init(.conflict, "already exists")
        case .foreignKey?:
            self.init(.notFound, "a referenced user or workspace does not exist")
        case .check?, .notNull?:
            self.init(.invalidArgument, "a value is out of range")
        case .other?:
            self.init(.conflict, e.message)
        case nil:
            self.init(e.isBusy ? .busy : .database, e.description)
        }
    }
}
