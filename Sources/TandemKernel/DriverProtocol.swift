// The framed protocol between the server and the driver inside a container: requests are JSON
// lines on the driver's stdin, events are JSON lines on its fd 3, and the user's output flows
// untouched on fds 1 and 2. Pure codecs; docs/kernels.md has the message reference.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TandemCrypto

/// A request to the driver.
public enum DriverRequest: Sendable, Equatable {
    case execute(id: Int, code: String)
    case complete(id: Int, code: String, cursor: Int)
    case chdir(id: Int, path: String)

    /// One line, newline-terminated.
    public var line: [UInt8] {
        var s: String
        switch self {
        case .execute(let id, let code):
            s = "{\"op\":\"execute\",\"id\":\(id),\"code\":\(JSONText.quote(code))}"
        case .complete(let id, let code, let cursor):
            s = "{\"op\":\"complete\",\"id\":\(id),\"code\":\(JSONText.quote(code)),\"cursor\":\(cursor)}"
        case .chdir(let id, let path):
            s = "{\"op\":\"chdir\",\"id\":\(id),\"path\":\(JSONText.quote(path))}"
        }
        s += "\n"
        return Array(s.utf8)
    }
}

/// How an execution ended.
public enum ExecutionStatus: String, Sendable, Codable {
    case ok, error, interrupted
    /// The kernel died (OOM kill, crash) or was restarted/shut down while it ran or waited.
    case died
    /// Never started: cancelled by a restart or shutdown while queued.
    case cancelled
    /// A one-shot run that hit its timeout.
    case timeout
}

/// An error raised by the user's code.
public struct ExecutionError: Sendable, Equatable, Codable {
    public var name: String
    public var message: String
    public init(name: String, message: String) {
        self.name = name
        self.message = message
    }
}

/// An event from the driver.
public enum DriverEvent: Sendable, Equatable {
    case ready(language: String, version: String)
    case done(id: Int?, status: ExecutionStatus, result: String?, error: ExecutionError?, matches: [String]?, cursorStart: Int?)

    struct Wire: Decodable {
        var ev: String
        var id: Int?
        var status: String?
        var result: String?
        var error: ExecutionError?
        var language: String?
        var version: String?
        var matches: [String]?
        var cursor_start: Int?
    }

    /// Decodes one line (without its newline). Anything malformed is nil: the driver shares its
    /// process with user code, so its events are untrusted input.
    public static func decode(_ line: ArraySlice<UInt8>) -> DriverEvent? {
        guard let w = try? JSONDecoder().decode(Wire.self, from: Data(line)) else { return nil }
        switch w.ev {
        case "ready":
            return .ready(language: w.language ?? "", version: w.version ?? "")
        case "done":
            guard let raw = w.status, let status = ExecutionStatus(rawValue: raw),
                  [.ok, .error, .interrupted].contains(status) else { return nil }
            return .done(id: w.id, status: status, result: w.result, error: w.error, matches: w.matches, cursorStart: w.cursor_start)
        default:
            return nil
        }
    }
}

/// Splits a byte stream into lines, with a bound on line length.
public struct LineSplitter: Sendable {
    private var pending: [UInt8] = []
    public let maxLine: Int
    /// Set once a line exceeded `maxLine`; the stream is then unusable.
    public private(set) var overflowed = false

    public init(maxLine: Int) { self.maxLine = maxLine }

    /// Appends bytes and returns the complete lines (without newlines).
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> [ArraySlice<UInt8>] {
        guard !overflowed else { return [] }
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                lines.append(ArraySlice(bytes[start..<i]))
            } else {
                pending.append(contentsOf: bytes[start..<i])
                lines.append(pending[...])
                pending = []
            }
            start = i + 1
        }
        pending.append(contentsOf: bytes[start..<bytes.count])
        if pending.count > maxLine {
            overflowed = true
            pending = []
        }
        return lines
    }
}
