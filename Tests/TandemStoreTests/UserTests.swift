import Testing
@testable import TandemStore

@Suite struct UserTests {
    @Test(arguments: ["a", "0", "alice", "bob.smith", "x_y-z", "9lives", String(repeating: "a", count: 64)])
    func validNames(_ name: String) throws {
        #expect(Names.isValidUserName(name))
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: name)
            #expect(u.name == name)
            #expect(u.displayName == name)
        }
    }

    @Test(arguments: [
        "", "Alice", "-a", ".a", "_a", "a b", "a/b", "a:b", "é", "a\u{0}", String(repeating: "a", count: 65), "ａ", "a@b",
    ])
    func invalidNames(_ name: String) throws {
        #expect(!Names.isValidUserName(name))
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            expectStoreError(.invalidName) { _ = try store.createUser(name: name) }
            #expect(try store.userCount() == 0)
        }
    }

    @Test func createLookUpAndList() throws {
        try withTempDirectory { dir in
            let clock = TestClock(1_000)
            let store = try makeStore(dir, clock: clock)
            let bob = try store.createUser(name: "bob", displayName: "  Bob B.  ")
            let alice = try store.createUser(name: "alice", isAdmin: true)
            #expect(bob.displayName == "Bob B.")
            #expect(bob.createdAt == 1_000)
            #expect(!bob.isAdmin && alice.isAdmin)
            #expect(try store.user(named: "bob") == bob)
            #expect(try store.user(id: alice.id) == alice)
            #expect(try store.user(named: "carol") == nil)
            #expect(try store.user(id: User.ID(999)) == nil)
            #expect(try store.users().map(\.name) == ["alice", "bob"])
            #expect(try store.userCount() == 2)

            expectStoreError(.conflict) { _ = try store.createUser(name: "bob") }
            expectStoreError(.invalidName) { _ = try store.createUser(name: "carol", displayName: "a\u{7}b") }
            expectStoreError(.invalidName) { _ = try store.createUser(name: "carol", displayName: "   ") }
            expectStoreError(.invalidName) { _ = try store.createUser(name: "carol", displayName: String(repeating: "x", count: 101)) }
        }
    }

    @Test func adminFlagAndDisabling() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            try store.setAdmin(u.id, true)
            #expect(try store.user(id: u.id)?.isAdmin == true)
            try store.setAdmin(u.id, false)
            #expect(try store.user(id: u.id)?.isAdmin == false)
            try store.disableUser(u.id)
            #expect(try store.user(id: u.id)?.isDisabled == true)
            try store.disableUser(u.id, disabled: false)
            #expect(try store.user(id: u.id)?.isDisabled == false)
            expectStoreError(.notFound) { try store.setAdmin(User.ID(42), true) }
            expectStoreError(.notFound) { try store.disableUser(User.ID(42)) }
        }
    }
}
