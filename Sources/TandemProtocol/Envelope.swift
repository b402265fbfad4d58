// Reading one client message: a JSON object with a `type`, an `id` and the fields its spec
// names, checked strictly (unknown types and fields are errors, never ignored). Pure.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import TandemCrypto

/// A protocol-level error with a stable code.
public struct ProtocolError: Error, Sendable, Equatable {
    public var code: String
    public var message: String
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func badMessage(_ m: String) -> ProtocolError { ProtocolError("bad_message", m) }
    public static func forbidden(_ m: String) -> ProtocolError { ProtocolError("forbidden", m) }
    public static func notFound(_ m: String) -> ProtocolError { ProtocolError("not_found", m) }
    public static func invalid(_ m: String) -> ProtocolError { ProtocolError("invalid_field", m) }
}

/// A request id as the client sent it (a number or a short string), echoed in the reply.
public struct RequestID: Sendable, Equatable {
    /// The id as JSON text.
    public let json: String
}

/// A parsed, checked request.
public struct Request: Sendable {
    public var type: String
    public var id: RequestID
    public var spec: MessageSpec
    public var fields: [String: JSONValue]

    public func string(_ name: String) -> String? {
        if case .string(let s)? = fields[name] { return s }
        return nil
    }
    public func int(_ name: String) -> Int? {
        if case .number(let n)? = fields[name] { return Int(n) }
        return nil
    }
    public func bool(_ name: String) -> Bool? {
        if case .bool(let b)? = fields[name] { return b }
        return nil
    }
    /// The `workspace` field (every message with an action has one).
    public var workspace: String? { string("workspace") }
}

/// A message that could not be accepted, with its id when that could be read (so the error can
/// still be matched to its request).
public struct EnvelopeFailure: Error, Sendable {
    public var error: ProtocolError
    public var id: RequestID?
}

public enum Envelope {
    /// Parses and checks a text message. On failure the id is returned when it could be read,
    /// so the error can still be matched to its request.
    public static func parse(_ bytes: [UInt8]) -> Result<Request, EnvelopeFailure> {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            return .failure(EnvelopeFailure(error: ProtocolError.badMessage("not valid JSON"), id: nil))
        }
        guard case .object(let obj) = value else { return .failure(EnvelopeFailure(error: ProtocolError.badMessage("a message is a JSON object"), id: nil)) }
        var id: RequestID?
        switch obj["id"] {
        case .number(let n)? where n == n.rounded() && abs(n) < 1e15:
            id = RequestID(json: String(Int64(n)))
        case .string(let s)? where !s.isEmpty && s.utf8.count <= 64:
            id = RequestID(json: JSONText.quote(s))
        case nil:
            break
        default:
            return .failure(EnvelopeFailure(error: ProtocolError.badMessage("id must be an integer or a string of 1-64 bytes"), id: nil))
        }
        guard case .string(let type)? = obj["type"] else { return .failure(EnvelopeFailure(error: ProtocolError.badMessage("missing \"type\""), id: id)) }
        guard let spec = Messages.byType[type] else {
            return .failure(EnvelopeFailure(error: ProtocolError("unknown_type", "unknown message type \"\(type.prefix(64))\""), id: id))
        }
        guard let id else { return .failure(EnvelopeFailure(error: ProtocolError.badMessage("\(type) is a request and needs an \"id\""), id: nil)) }
        var fields = obj
        fields["type"] = nil
        fields["id"] = nil
        for name in fields.keys.sorted() where !spec.fields.contains(where: { $0.name == name }) {
            return .failure(EnvelopeFailure(error: ProtocolError("unknown_field", "\(type) has no field \"\(name.prefix(64))\""), id: id))
        }
        for f in spec.fields {
            guard let v = fields[f.name], v != .null else {
                if f.required { return .failure(EnvelopeFailure(error: ProtocolError("missing_field", "\(type) needs \"\(f.name)\""), id: id)) }
                fields[f.name] = nil
                continue
            }
            let ok: Bool
            switch (f.type, v) {
            case (.string, .string), (.boolean, .bool), (.object, .object), (.array, .array): ok = true
            case (.integer, .number(let n)): ok = n == n.rounded() && abs(n) < 1e15
            default: ok = false
            }
            if !ok { return .failure(EnvelopeFailure(error: ProtocolError.invalid("\"\(f.name)\" must be \(f.type.rawValue == "integer" ? "an" : "a") \(f.type.rawValue)"), id: id)) }
        }
        return .success(Request(type: type, id: id, spec: spec, fields: fields))
    }

    /// `{"type":"ok","id":…,"result":…}` with `result` as JSON text.
    public static func ok(_ id: RequestID, result: String = "{}") -> String {
        "{\"type\":\"ok\",\"id\":\(id.json),\"result\":\(result)}"
    }

    /// `{"type":"error","id":…,"code":…,"message":…}`; the id is null when it was unreadable.
    public static func error(_ id: RequestID?, _ e: ProtocolError) -> String {
        "{\"type\":\"error\",\"id\":\(id?.json ?? "null"),\"code\":\(JSONText.quote(e.code)),\"message\":\(JSONText.quote(e.message))}"
    }
}
