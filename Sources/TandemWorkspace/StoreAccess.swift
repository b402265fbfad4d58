// The store as the workspace server uses it: string workspace ids from the wire, callers, and
// store errors mapped to protocol errors with the same stable codes.
import Synchronization
import TandemProtocol
public import TandemStore
#if canImport(Glibc)
import Glibc
#endif

/// Who is calling: a user, and the workspace their token is limited to (nil for sessions and
/// unrestricted tokens).
public struct Caller: Sendable {
    public var user: User
    public var workspaceScope: String?

    public init(user: User, workspaceScope: String?) {
        self.user = user
        self.workspaceScope = workspaceScope
    }
}

extension ProtocolError {
    init(_ e: StoreError) { self.init("\(e.code)", e.message) }
}

extension TandemStore {
    func caller(token: String) -> Caller? {
        guard let p = try? authenticate(token: token) else { return nil }
        return Caller(user: p.user, workspaceScope: p.workspaceScope?.rawValue)
    }

    func caller(cookie: String) -> Caller? {
        guard let u = try? session(cookie) else { return nil }
        return Caller(user: u, workspaceScope: nil)
    }

    func role(of user: User, in workspace: String) -> Role? {
        guard let id = Workspace.ID(workspace) else { return nil }
        return (try? role(of: user.id, in: id)) ?? nil
    }

    /// Role and grants of `user` in `workspace`, or nil when not a member.
    func membership(of user: User, in workspace: String) -> (role: Role, grants: Grants)? {
        guard let id = Workspace.ID(workspace), let m = (try? member(user.id, in: id)) ?? nil else { return nil }
        return (m.role, m.canRun ? .run : [])
    }

    func workspace(_ workspace: String) -> Workspace? {
        guard let id = Workspace.ID(workspace) else { return nil }
        return (try? self.workspace(id: id)) ?? nil
    }

    func workspaceID(_ workspace: String) throws(ProtocolError) -> Workspace.ID {
        guard let id = Workspace.ID(workspace) else { throw .notFound("no workspace \(workspace) for you") }
        return id
    }
}

/// Failed sign-ins, per address and per user, behind a mutex (loop threads share it).
final class LoginRateLimiterBox: Sendable {
    private let limiter = Mutex(LoginRateLimiter())

    private static func now() -> Int64 { Int64(time(nil)) }

    func allowed(address: String, user: String?) -> Bool {
        limiter.withLock { l in
            if let user { return l.check(address: address, user: user, now: Self.now()).isAllowed }
            return l.check(.address(address), now: Self.now()).isAllowed
        }
    }

    func failed(address: String, user: String?) {
        limiter.withLock { l in
            if let user { l.recordFailure(address: address, user: user, now: Self.now()) } else { l.recordFailure(.address(address), now: Self.now()) }
        }
    }

    func succeeded(address: String, user: String?) {
        limiter.withLock { l in
            if let user { l.recordSuccess(address: address, user: user) } else { l.recordSuccess(.address(address)) }
        }
    }
}
