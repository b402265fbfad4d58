import Testing
import TandemCrypto
@testable import TandemProtocol
import Foundation

@Suite struct PermissionTests {
    /// The whole matrix, written out: every role × every action.
    static let expected: [WorkspaceRole: Set<Action>] = [
        .owner: Set(Action.allCases),
        .editor: [.read, .writeFiles, .runKernel, .propose, .review],
        .viewer: [.read],
        .agent: [.read, .propose],
    ]

    @Test(arguments: WorkspaceRole.allCases)
    func everyRoleAndAction(role: WorkspaceRole) {
        for action in Action.allCases {
            #expect(Permissions.allows(role, action) == Self.expected[role]!.contains(action), "\(role) \(action)")
        }
    }

    @Test func agentsRunOnlyWhenGranted() {
        #expect(!Permissions.allows(.agent, .runKernel))
        #expect(Permissions.allows(.agent, .runKernel, grants: .run))
        #expect(!Permissions.allows(.agent, .review, grants: .run))
        #expect(!Permissions.allows(.viewer, .runKernel, grants: .run))
    }

    @Test func everyWorkspaceMessageNamesItsWorkspace() {
        for spec in Messages.client where spec.action != nil {
            #expect(spec.fields.contains { $0.name == "workspace" && $0.required }, "\(spec.type)")
        }
        #expect(Set(Messages.client.map(\.type)).count == Messages.client.count)
    }
}

@Suite struct EnvelopeTests {
    func parse(_ s: String) -> Result<Request, EnvelopeFailure> { Envelope.parse(Array(s.utf8)) }

    func code(_ s: String) -> String? {
        if case .failure(let f) = parse(s) { return f.error.code }
        return nil
    }

    @Test func validRequests() throws {
        guard case .success(let r) = parse(#"{"type":"kernel.execute","id":7,"workspace":"w1","code":"1+1"}"#) else {
            Issue.record("did not parse"); return
        }
        #expect(r.type == "kernel.execute")
        #expect(r.id.json == "7")
        #expect(r.workspace == "w1")
        #expect(r.string("code") == "1+1")
        #expect(r.spec.action == .runKernel)
        guard case .success(let s) = parse(#"{"type":"ping","id":"abc"}"#) else { Issue.record("string id"); return }
        #expect(s.id.json == "\"abc\"")
        guard case .success(let j) = parse(#"{"type":"workspace.join","id":1,"workspace":"w","lastSeq":12,"extra":null}"#) else {
            // null for an unknown field is still an unknown field
            return
        }
        Issue.record("accepted an unknown field: \(j.fields)")
    }

    @Test func errorsHaveStableCodes() {
        #expect(code("nonsense") == "bad_message")
        #expect(code("[1,2]") == "bad_message")
        #expect(code(#"{"id":1}"#) == "bad_message")
        #expect(code(#"{"type":"kernel.explode","id":1}"#) == "unknown_type")
        #expect(code(#"{"type":"ping"}"#) == "bad_message")
        #expect(code(#"{"type":"ping","id":1.5}"#) == "bad_message")
        #expect(code(#"{"type":"ping","id":{}}"#) == "bad_message")
        #expect(code(#"{"type":"kernel.execute","id":1,"workspace":"w"}"#) == "missing_field")
        #expect(code(#"{"type":"kernel.execute","id":1,"workspace":"w","code":5}"#) == "invalid_field")
        #expect(code(#"{"type":"kernel.execute","id":1,"workspace":"w","code":"x","colour":"red"}"#) == "unknown_field")
        #expect(code(#"{"type":"workspace.join","id":1,"workspace":"w","lastSeq":1.5}"#) == "invalid_field")
    }

    @Test func errorRepliesKeepTheIdWhenItWasReadable() {
        guard case .failure(let f) = parse(#"{"type":"kernel.explode","id":42}"#) else { Issue.record("parsed"); return }
        let json = Envelope.error(f.id, f.error)
        #expect(json.hasPrefix(#"{"type":"error","id":42,"code":"unknown_type""#))
        #expect(Envelope.error(nil, .badMessage("x")).contains(#""id":null"#))
        #expect(Envelope.ok(RequestID(json: "3"), result: "{\"a\":1}") == #"{"type":"ok","id":3,"result":{"a":1}}"#)
    }
}

/// docs/asyncapi.yaml names exactly the messages the server handles and sends.
@Suite struct AsyncAPITests {
    static let root: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)
        return "/" + parts.joined(separator: "/")
    }()

    @Test func asyncAPIDocumentMatchesTheCatalogue() throws {
        let text = try String(contentsOfFile: Self.root + "/docs/asyncapi.yaml", encoding: .utf8)
        #expect(text.contains("asyncapi: 3.0.0") || text.contains("asyncapi: '3.0.0'") || text.contains("asyncapi: \"3.0.0\""))
        // Every message under components/messages carries `name: <type>`.
        var names = Set<String>()
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("name: ") {
                names.insert(t.dropFirst(6).trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")))
            }
        }
        let catalogue = Set(Messages.client.map(\.type)).union(Messages.server)
        #expect(catalogue.subtracting(names).isEmpty, "missing from asyncapi.yaml: \(catalogue.subtracting(names).sorted())")
        #expect(names.subtracting(catalogue).isEmpty, "in asyncapi.yaml but not handled: \(names.subtracting(catalogue).sorted())")
    }

    @Test func protocolDocumentMentionsEveryMessage() throws {
        let text = try String(contentsOfFile: Self.root + "/docs/protocol.md", encoding: .utf8)
        for t in Messages.client.map(\.type) + Messages.server {
            #expect(text.contains("`\(t)`"), "docs/protocol.md does not describe \(t)")
        }
    }
}
