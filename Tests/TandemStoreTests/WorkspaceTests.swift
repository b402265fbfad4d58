import Testing
@testable import TandemStore

@Suite struct WorkspaceTests {
    @Test func createListRenameArchiveDelete() throws {
        try withTempDirectory { dir in
            let clock = TestClock(7_000)
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let other = try store.createUser(name: "other")
            let w = try store.createWorkspace(name: "  Thesis  ", owner: u.id, template: "python", origin: "https://example.org/r.git")
            #expect(Workspace.ID(w.id.rawValue) == w.id)
            #expect(w.id.rawValue.utf8.count == 12)
            #expect(w.name == "Thesis")
            #expect(w.createdBy == u.id && w.createdAt == 7_000 && !w.isArchived)
            #expect(w.template == "python" && w.origin == "https://example.org/r.git")
            #expect(try store.workspace(id: w.id) == w)
            #expect(try store.role(of: u.id, in: w.id) == .owner)
            #expect(try store.role(of: other.id, in: w.id) == nil)

            let plain = try store.createWorkspace(name: "Notes", owner: u.id)
            #expect(plain.template == nil && plain.origin == nil)
            #expect(plain.id != w.id)
            let listed = try store.workspaces(for: u.id)
            #expect(listed.map(\.workspace.name) == ["Notes", "Thesis"])
            #expect(listed.allSatisfy { $0.role == .owner })
            #expect(try store.workspaces(for: other.id).isEmpty)

            let renamed = try store.renameWorkspace(w.id, to: "Dissertation")
            #expect(renamed.name == "Dissertation")
            #expect(try store.workspace(id: w.id)?.name == "Dissertation")
            for bad in ["", "   ", String(repeating: "x", count: 101), "a\u{7}b", "a\nb", "tab\there", "x\u{2028}y", "del\u{7F}"] {
                expectStoreError(.invalidName) { try store.renameWorkspace(w.id, to: bad) }
                expectStoreError(.invalidName) { _ = try store.createWorkspace(name: bad, owner: u.id) }
            }
            #expect(try store.renameWorkspace(w.id, to: String(repeating: "é", count: 100)).name.count == 100)
            #expect(try store.renameWorkspace(w.id, to: "Résumé 👩‍💻").name == "Résumé 👩‍💻")

            try store.archiveWorkspace(w.id)
            #expect(try store.workspace(id: w.id)?.isArchived == true)
            #expect(try store.workspaces(for: u.id).map(\.workspace.id) == [plain.id])
            #expect(try store.workspaces(for: u.id, includeArchived: true).count == 2)
            #expect(try store.allWorkspaces(includeArchived: false).map(\.id) == [plain.id])
            #expect(try store.allWorkspaces().count == 2)
            try store.archiveWorkspace(w.id, archived: false)
            #expect(try store.workspaces(for: u.id).count == 2)

            try store.setMember(workspace: w.id, user: other.id, role: .editor, by: u.id)
            try store.deleteWorkspace(w.id)
            #expect(try store.workspace(id: w.id) == nil)
            #expect(try store.role(of: u.id, in: w.id) == nil)
            #expect(try store.workspaces(for: other.id).isEmpty)
            expectStoreError(.notFound) { try store.deleteWorkspace(w.id) }
            expectStoreError(.notFound) { try store.renameWorkspace(w.id, to: "x") }
            expectStoreError(.notFound) { try store.archiveWorkspace(w.id) }
            expectStoreError(.notFound) { _ = try store.members(of: w.id) }
        }
    }

    @Test func creationChecksOwnerAndFields() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let u = try store.createUser(name: "u")
            expectStoreError(.notFound) { _ = try store.createWorkspace(name: "W", owner: User.ID(99)) }
            expectStoreError(.invalidArgument) { _ = try store.createWorkspace(name: "W", owner: u.id, template: "") }
            expectStoreError(.invalidArgument) { _ = try store.createWorkspace(name: "W", owner: u.id, origin: "a\nb") }
            try store.disableUser(u.id)
            expectStoreError(.forbidden) { _ = try store.createWorkspace(name: "W", owner: u.id) }
            #expect(try store.allWorkspaces().isEmpty)
        }
    }

    @Test func workspaceIDs() {
        #expect(Workspace.ID("abcdefgh2345") != nil)
        #expect(Workspace.ID("abcdefgh234") == nil)
        #expect(Workspace.ID("abcdefgh23456") == nil)
        #expect(Workspace.ID("abcdefgh2341") == nil)  // 1 is not base32
        #expect(Workspace.ID("ABCDEFGH2345") == nil)
        #expect(Workspace.ID("../../etc/pw") == nil)
        var seen = Set<Workspace.ID>()
        for _ in 0..<1000 {
            let id = Workspace.ID.random()
            #expect(Workspace.ID(id.rawValue) == id)
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }

    @Test func roles() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let owner = try store.createUser(name: "owner")
            let ed = try store.createUser(name: "ed", displayName: "Ed")
            let bot = try store.createUser(name: "bot")
            let w = try store.createWorkspace(name: "W", owner: owner.id)

            let m = try store.setMember(workspace: w.id, user: ed.id, role: .editor, by: owner.id)
            #expect(m.role == .editor && m.addedBy == owner.id && m.userName == "ed" && m.displayName == "Ed")
            try store.setMember(workspace: w.id, user: bot.id, role: .agent, by: nil)
            #expect(try store.role(of: ed.id, in: w.id) == .editor)
            #expect(try store.role(of: bot.id, in: w.id) == .agent)
            #expect(try store.setMember(workspace: w.id, user: ed.id, role: .viewer, by: owner.id).role == .viewer)
            #expect(try store.role(of: ed.id, in: w.id) == .viewer)

            let members = try store.members(of: w.id)
            #expect(members.map(\.userName) == ["owner", "bot", "ed"])
            #expect(members.map(\.role) == [.owner, .agent, .viewer])
            #expect(members[1].addedBy == nil)
            #expect(try store.workspaces(for: ed.id).map(\.role) == [.viewer])

            try store.removeMember(workspace: w.id, user: ed.id)
            #expect(try store.role(of: ed.id, in: w.id) == nil)
            expectStoreError(.notFound) { try store.removeMember(workspace: w.id, user: ed.id) }
            expectStoreError(.notFound) { try store.setMember(workspace: w.id, user: User.ID(99), role: .viewer, by: nil) }
            expectStoreError(.notFound) {
                try store.setMember(workspace: Workspace.ID("zzzzzzzzzzzz")!, user: ed.id, role: .viewer, by: nil)
            }
            #expect(Role.allCases.map(\.rawValue) == ["owner", "editor", "viewer", "agent"])
        }
    }

    @Test func lastOwnerCannotBeRemovedOrDemoted() throws {
        try withTempDirectory { dir in
            let store = try makeStore(dir)
            let a = try store.createUser(name: "a")
            let b = try store.createUser(name: "b")
            let w = try store.createWorkspace(name: "W", owner: a.id)

            expectStoreError(.conflict) { try store.removeMember(workspace: w.id, user: a.id) }
            for role in [Role.editor, .viewer, .agent] {
                expectStoreError(.conflict) { try store.setMember(workspace: w.id, user: a.id, role: role, by: a.id) }
            }
            #expect(try store.role(of: a.id, in: w.id) == .owner)
            // Re-asserting owner is fine.
            try store.setMember(workspace: w.id, user: a.id, role: .owner, by: a.id)

            // With a second owner, the first may step down; then the second is the last.
            try store.setMember(workspace: w.id, user: b.id, role: .owner, by: a.id)
            try store.setMember(workspace: w.id, user: a.id, role: .editor, by: b.id)
            expectStoreError(.conflict) { try store.removeMember(workspace: w.id, user: b.id) }
            expectStoreError(.conflict) { try store.setMember(workspace: w.id, user: b.id, role: .viewer, by: b.id) }
            try store.removeMember(workspace: w.id, user: a.id)
            #expect(try store.members(of: w.id).map(\.userName) == ["b"])
        }
    }
}
