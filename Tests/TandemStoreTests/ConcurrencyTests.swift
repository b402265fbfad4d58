import Foundation
import Synchronization
import Testing
@testable import TandemStore

@Suite struct ConcurrencyTests {
    /// Several threads authenticate known tokens while one thread creates tokens and sessions:
    /// every authentication succeeds, nothing deadlocks, every created token works afterwards.
    @Test func authenticateWhileCreating() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let users = try (0..<4).map { try store.createUser(name: "u\($0)") }
            let known = try users.map { try store.createToken(user: $0.id, name: "known").plaintext }
            let readers = 4
            let rounds = 500
            let shared = Shared()
            let group = DispatchGroup()

            for r in 0..<readers {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    for i in 0..<rounds {
                        let token = known[(r + i) % known.count]
                        let ok = (try? store.authenticate(token: token))?.user.name == "u\((r + i) % known.count)"
                        if !ok { shared.failures.add(1, ordering: .relaxed) }
                    }
                }
            }
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for i in 0..<100 {
                    do {
                        let (t, _) = try store.createToken(user: users[i % users.count].id, name: "new\(i)")
                        _ = try store.createSession(user: users[i % users.count].id, ttl: 60)
                        shared.created.withLock { $0.append(t) }
                    } catch {
                        shared.failures.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(group.wait(timeout: .now() + 120) == .success)
            #expect(shared.failures.load(ordering: .relaxed) == 0)
            let tokens = shared.created.withLock { $0 }
            #expect(tokens.count == 100)
            for t in tokens { #expect(try store.authenticate(token: t) != nil) }
            #expect(try store.tokens(of: nil).count == 104)
        }
    }

    /// A second store on the same file (another process, e.g. the command line) sees the
    /// first one's writes, and its tokens authenticate in the first.
    @Test func twoConnectionsShareTheFile() throws {
        try withTempDirectory { dir in
            let server = try makeStore(dir)
            let cli = try makeStore(dir)
            let u = try cli.createUser(name: "admin", isAdmin: true)
            let (token, _) = try cli.createToken(user: u.id, name: "cli")
            #expect(try server.authenticate(token: token)?.user.name == "admin")
            let w = try server.createWorkspace(name: "W", owner: u.id)
            #expect(try cli.role(of: u.id, in: w.id) == .owner)
        }
    }

    /// The hot path stays cheap: authentication, session and role lookups, averaged. The bound
    /// is loose (debug build, shared machine); the measured figure is printed.
    @Test func lookupsAreCheap() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            let w = try store.createWorkspace(name: "W", owner: u.id)
            let (token, _) = try store.createToken(user: u.id, name: "t")
            let cookie = try store.createSession(user: u.id, ttl: 3600)
            for _ in 0..<100 { _ = try store.authenticate(token: token) }
            let n = 5000
            let clock = ContinuousClock()
            let auth = try clock.measure { for _ in 0..<n { _ = try store.authenticate(token: token) } }
            let sess = try clock.measure { for _ in 0..<n { _ = try store.session(cookie) } }
            let role = try clock.measure { for _ in 0..<n { _ = try store.role(of: u.id, in: w.id) } }
            func micros(_ d: Duration) -> Double {
                Double(d.components.seconds) * 1e6 / Double(n) + Double(d.components.attoseconds) / 1e12 / Double(n)
            }
            print("store lookups (µs each): authenticate \(micros(auth)), session \(micros(sess)), role \(micros(role))")
            #expect(micros(auth) < 500)
            #expect(micros(sess) < 500)
            #expect(micros(role) < 500)
        }
    }
}

/// State the test's threads share.
private final class Shared: Sendable {
    let failures = Atomic<Int>(0)
    let created = Mutex<[String]>([])
}
