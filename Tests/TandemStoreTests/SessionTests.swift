import Testing
@testable import TandemStore

@Suite struct SessionTests {
    @Test func createValidateExpireDelete() throws {
        try withTempDirectory { dir in
            let clock = TestClock(50_000)
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let cookie = try store.createSession(user: u.id, ttl: 3600)
            #expect(cookie.utf8.count == 43)
            #expect(try store.session(cookie) == u)
            #expect(try store.session(cookie + "x") == nil)
            #expect(try store.session("") == nil)
            #expect(try store.session(String(repeating: "A", count: 43)) == nil)

            clock.advance(3599)
            #expect(try store.session(cookie) == u)
            clock.advance(1)
            #expect(try store.session(cookie) == nil)
            // The expired session was deleted on lookup.
            #expect(try store.deleteSession(cookie) == false)

            let second = try store.createSession(user: u.id, ttl: 60)
            #expect(try store.deleteSession(second))
            #expect(try store.session(second) == nil)
            #expect(try store.deleteSession(second) == false)

            expectStoreError(.invalidArgument) { _ = try store.createSession(user: u.id, ttl: 0) }
            expectStoreError(.notFound) { _ = try store.createSession(user: User.ID(9), ttl: 60) }
        }
    }

    @Test func disablingAUserEndsItsSessions() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            let cookie = try store.createSession(user: u.id, ttl: 3600)
            try store.disableUser(u.id)
            #expect(try store.session(cookie) == nil)
            expectStoreError(.forbidden) { _ = try store.createSession(user: u.id, ttl: 60) }
            try store.disableUser(u.id, disabled: false)
            #expect(try store.session(cookie) == nil)
        }
    }

    @Test func housekeeping() throws {
        try withTempDirectory { dir in
            let clock = TestClock(1_000)
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let v = try store.createUser(name: "v")
            _ = try store.createSession(user: u.id, ttl: 10)
            _ = try store.createSession(user: u.id, ttl: 10)
            let long = try store.createSession(user: u.id, ttl: 1000)
            let other = try store.createSession(user: v.id, ttl: 1000)
            clock.advance(10)
            #expect(try store.deleteExpiredSessions() == 2)
            #expect(try store.session(long) == u)
            #expect(try store.deleteSessions(of: u.id) == 1)
            #expect(try store.session(long) == nil)
            #expect(try store.session(other) == v)
        }
    }
}
