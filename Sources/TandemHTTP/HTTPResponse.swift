// Serialising responses.

/// A response head: status and header fields.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.headers = headers
    }

    /// Appends `HTTP/1.1 code reason CRLF fields CRLF CRLF` to `out`.
    public func serialize(into out: inout [UInt8]) {
        out.append(contentsOf: "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n".utf8)
        for (name, value) in headers {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
    }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        serialize(into: &out)
        return out
    }
}

/// Decodes a percent-encoded path segment string (RFC 3986 §2.1). Returns nil for malformed escapes.
public func percentDecode(_ s: some StringProtocol) -> String? {
    var out: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let c = it.popFirst() {
        if c == UInt8(ascii: "%") {
            guard it.count >= 2 else { return nil }
            let h = it.popFirst()!, l = it.popFirst()!
            func v(_ c: UInt8) -> UInt8? {
                switch c { case 48...57: c - 48; case 97...102: c - 87; case 65...70: c - 55; default: nil }
            }
            guard let hv = v(h), let lv = v(l) else { return nil }
            out.append(hv << 4 | lv)
        } else {
            out.append(c)
        }
    }
    return String(validating: out, as: UTF8.self)
}

/// Parses a response head (for clients): status line and fields up to the empty line.
public enum HTTPResponseHeadParser {
    public struct Parsed: Sendable, Equatable {
        public var status: Int
        public var headers: HTTPHeaders
        /// Bytes of the head including the final CRLF CRLF.
        public var consumed: Int
    }

    /// nil when more bytes are needed; throws when the head is malformed or over `maxBytes`.
    public static func parse(_ bytes: [UInt8], maxBytes: Int = 64 * 1024) throws(HTTPParseError) -> Parsed? {
        var end = -1
        var i = 0
        while i + 3 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { end = i; break }
            i += 1
        }
        if end < 0 {
            if bytes.count > maxBytes { throw HTTPParseError(.headerFieldsTooLarge, "response head too large") }
            return nil
        }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let statusLine = lines.first else { throw HTTPParseError(.badRequest, "empty response") }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...599).contains(status) else {
            throw HTTPParseError(.badRequest, "malformed status line")
        }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw HTTPParseError(.badRequest, "malformed header line") }
            headers.add(String(line[..<colon]), String(line[line.index(after: colon)...].trimmingOWS()))
        }
        return Parsed(status: status, headers: headers, consumed: end + 4)
    }
}
