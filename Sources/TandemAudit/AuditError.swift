// Errors of the audit subsystem.
import TandemSQLite
#if canImport(Glibc)
import Glibc
#endif

/// An error of the audit log. The message names what failed and where; it never contains
/// content, key material or bound values.
///
/// A struct with an open set of codes, so codes can be added without breaking callers:
///
/// ```swift
/// do { try log.appendAndWait(event) } catch let e where e.code == .closed { ... }
/// ```
public struct AuditError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// A file could not be read, written or created.
        public static let io = Code("io")
        /// A key file or key variable is malformed.
        public static let badKey = Code("bad_key")
        /// A key file is readable or writable by group or others.
        public static let keyPermissions = Code("key_permissions")
        /// A key needed for the operation is not available.
        public static let missingKey = Code("missing_key")
        /// SQLite reported an error.
        public static let database = Code("database")
        /// The log has been closed.
        public static let closed = Code("closed")
        /// Another process holds the log open for writing.
        public static let locked = Code("locked")
        /// Verification found the log tampered with or damaged.
        public static let tampered = Code("tampered")
        /// The requested entry or tree head does not exist.
        public static let notFound = Code("not_found")
        /// An argument is out of range.
        public static let invalidArgument = Code("invalid_argument")
        /// A proof file is malformed or a proof does not verify.
        public static let badProof = Code("bad_proof")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "audit \(code): \(message)" }

    static func database(_ e: SQLiteError) -> AuditError { AuditError(.database, e.description) }

    static func posix(_ function: String, _ path: String, _ err: Int32 = errno) -> AuditError {
        AuditError(.io, "\(function)(\(path)): \(String(cString: strerror(err)))")
    }
}
