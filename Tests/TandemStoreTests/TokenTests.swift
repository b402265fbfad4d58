import Testing
import TandemCrypto
@testable import TandemStore

@Suite struct TokenTests {
    @Test func createAuthenticateRevoke() throws {
        try withTempDirectory { dir in
            let clock = TestClock(5_000)
            let store = try makeStore(dir, clock: clock)
            let alice = try store.createUser(name: "alice")
            let (token, info) = try store.createToken(user: alice.id, name: "laptop")

            #expect(token.hasPrefix("tdm_"))
            #expect(token.utf8.count == 47)
            #expect(Base64.decode(token.dropFirst(4), url: true)?.count == 32)
            #expect(info.prefix == String(token.prefix(8)))
            #expect(info.user == alice.id && info.name == "laptop" && info.workspaceScope == nil)
            #expect(info.createdAt == 5_000 && info.expiresAt == nil && info.revokedAt == nil && info.lastUsedAt == nil)
            #expect(info.state(at: clock.now) == .active)

            let p = try #require(try store.authenticate(token: token))
            #expect(p.user == alice)
            #expect(p.token == info.id)
            #expect(p.workspaceScope == nil)
            #expect(p.scopeAllows(Workspace.ID("aaaaaaaaaaaa")!))

            #expect(try store.tokens(of: alice.id).map(\.id) == [info.id])
            let revoked = try store.revokeToken(id: info.id, by: alice.id)
            #expect(revoked.revokedAt == 5_000)
            #expect(revoked.state(at: clock.now) == .revoked)
            #expect(try store.authenticate(token: token) == nil)

            // Revoking again keeps the first time.
            clock.advance(10)
            #expect(try store.revokeToken(id: info.id, by: nil).revokedAt == 5_000)
            expectStoreError(.notFound) { try store.revokeToken(id: TokenInfo.ID(999), by: nil) }
        }
    }

    @Test func onlyTheOwnerOrAnAdminRevokes() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let alice = try store.createUser(name: "alice")
            let mallory = try store.createUser(name: "mallory")
            let root = try store.createUser(name: "root", isAdmin: true)
            let (token, info) = try store.createToken(user: alice.id, name: "t")
            expectStoreError(.notFound) { try store.revokeToken(id: info.id, by: mallory.id) }
            #expect(try store.authenticate(token: token) != nil)
            try store.revokeToken(id: info.id, by: root.id)
            #expect(try store.authenticate(token: token) == nil)
        }
    }

    @Test func expiredTokenFails() throws {
        try withTempDirectory { dir in
            let clock = TestClock(10_000)
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let (token, info) = try store.createToken(user: u.id, name: "short", expiresIn: 60)
            #expect(info.expiresAt == 10_060)
            clock.advance(59)
            #expect(try store.authenticate(token: token) != nil)
            clock.advance(1)
            #expect(try store.authenticate(token: token) == nil)
            #expect(try store.token(id: info.id)?.state(at: clock.now) == .expired)
            expectStoreError(.invalidArgument) { _ = try store.createToken(user: u.id, name: "x", expiresIn: 0) }
            expectStoreError(.invalidArgument) { _ = try store.createToken(user: u.id, name: "x", expiresIn: -5) }
        }
    }

    @Test func disabledUserFails() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            let (token, _) = try store.createToken(user: u.id, name: "t")
            try store.disableUser(u.id)
            #expect(try store.authenticate(token: token) == nil)
            expectStoreError(.forbidden) { _ = try store.createToken(user: u.id, name: "t2") }
            try store.disableUser(u.id, disabled: false)
            #expect(try store.authenticate(token: token)?.user.id == u.id)
        }
    }

    @Test func badArgumentsAndUnknownTokens() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            expectStoreError(.notFound) { _ = try store.createToken(user: User.ID(77), name: "t") }
            expectStoreError(.invalidName) { _ = try store.createToken(user: u.id, name: "") }
            expectStoreError(.invalidName) { _ = try store.createToken(user: u.id, name: "a\nb") }
            expectStoreError(.notFound) { _ = try store.createToken(user: u.id, name: "t", workspace: Workspace.ID("abcdefghijkl")!) }
            let (token, _) = try store.createToken(user: u.id, name: "t")
            for bad in ["", "tdm_", "Bearer " + token, token + "x", String(token.dropLast()), "tdm_" + String(repeating: "!", count: 43),
                "xyz_" + token.dropFirst(4), "tdm_" + String(repeating: "A", count: 43)]
            {
                #expect(try store.authenticate(token: bad) == nil, "\(bad.prefix(8))")
            }
        }
    }

    @Test func plaintextIsNeverStored() throws {
        try withTempDirectory { dir in
            var secrets: [String] = []
            do {
                let store = try makeStore(dir)
                let u = try store.createUser(name: "u")
                let w = try store.createWorkspace(name: "W", owner: u.id)
                for i in 0..<5 {
                    secrets.append(try store.createToken(user: u.id, name: "t\(i)", workspace: i == 0 ? w.id : nil).plaintext)
                }
                secrets.append(try store.createSession(user: u.id, ttl: 3600))
                for s in secrets.dropLast() { #expect(try store.authenticate(token: s) != nil) }
                // While open: the WAL holds the recent pages.
                let files = try rawBytes(of: dir)
                #expect(files.contains { $0.name.hasSuffix("-wal") })
                for s in secrets { check(files, s) }
                // The digest is what is stored.
                #expect(files.contains { contains($0.bytes, Digest.sha256(secrets[0].utf8)) })
            }
            // After close: checkpointed into the main file.
            for s in secrets { check(try rawBytes(of: dir), s) }
        }
    }

    @Test func scopedTokenYieldsScopedPrincipal() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            let a = try store.createWorkspace(name: "A", owner: u.id)
            let b = try store.createWorkspace(name: "B", owner: u.id)
            let (token, info) = try store.createToken(user: u.id, name: "ci", workspace: a.id)
            #expect(info.workspaceScope == a.id)
            let p = try #require(try store.authenticate(token: token))
            #expect(p.workspaceScope == a.id)
            #expect(p.scopeAllows(a.id))
            #expect(!p.scopeAllows(b.id))
            #expect(try store.tokens(of: u.id).first?.workspaceScope == a.id)
            // Deleting the workspace deletes the tokens limited to it.
            try store.deleteWorkspace(a.id)
            #expect(try store.authenticate(token: token) == nil)
            #expect(try store.token(id: info.id) == nil)
        }
    }

    @Test func lastUsedIsWrittenAtMostOnceAMinute() throws {
        try withTempDirectory { dir in
            let clock = TestClock(100_000)
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let (token, info) = try store.createToken(user: u.id, name: "t")
            _ = try store.authenticate(token: token)
            #expect(try store.token(id: info.id)?.lastUsedAt == 100_000)
            clock.advance(59)
            _ = try store.authenticate(token: token)
            #expect(try store.token(id: info.id)?.lastUsedAt == 100_000)
            clock.advance(1)
            _ = try store.authenticate(token: token)
            #expect(try store.token(id: info.id)?.lastUsedAt == 100_060)
        }
    }

    @Test func listingAllAndPerUser() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let a = try store.createUser(name: "a")
            let b = try store.createUser(name: "b")
            let t1 = try store.createToken(user: a.id, name: "1").info
            let t2 = try store.createToken(user: b.id, name: "2").info
            let t3 = try store.createToken(user: a.id, name: "3").info
            #expect(try store.tokens(of: a.id).map(\.id) == [t3.id, t1.id])
            #expect(try store.tokens(of: b.id).map(\.id) == [t2.id])
            #expect(try store.tokens(of: nil).map(\.id) == [t3.id, t2.id, t1.id])
        }
    }
}

/// Expects no file to contain `secret`, the part of it after the 8 listed characters, or its
/// last 16 characters.
private func check(_ files: [(name: String, bytes: [UInt8])], _ secret: String) {
    let tail = Array(secret.utf8.suffix(39))
    for f in files {
        #expect(!contains(f.bytes, Array(secret.utf8)), "secret found in \(f.name)")
        #expect(!contains(f.bytes, tail), "secret tail found in \(f.name)")
        #expect(!contains(f.bytes, Array(secret.utf8.suffix(16))), "secret suffix found in \(f.name)")
    }
}
