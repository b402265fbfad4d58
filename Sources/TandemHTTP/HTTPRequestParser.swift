// A strict, incremental HTTP/1.1 request parser (RFC 9112) with limits. Pure: bytes in, events out.

/// The request line and header fields of one request.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request-target as sent (origin-form: path and query).
    public var target: String
    public var versionMinor: Int
    public var headers: HTTPHeaders

    public init(method: String, target: String, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.versionMinor = versionMinor
        self.headers = headers
    }

    /// The path part of the target, before `?`.
    public var path: Substring { target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
    /// The query part of the target, after `?`, if any.
    public var query: Substring? {
        guard let i = target.firstIndex(of: "?") else { return nil }
        return target[target.index(after: i)...]
    }

    /// Whether the connection persists after this request (RFC 9112 §9.3).
    public var keepAlive: Bool {
        if headers.containsToken("Connection", "close") { return false }
        if versionMinor == 0 { return headers.containsToken("Connection", "keep-alive") }
        return true
    }
}

/// Why a request was refused, with the status to answer it with.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let reason: String
    public init(_ status: HTTPStatus, _ reason: String) { self.status = status; self.reason = reason }
    public var description: String { "\(status.code) \(reason)" }
}

/// What the parser found next.
public enum HTTPParserEvent: Sendable, Equatable {
    case head(HTTPRequestHead)
    case body([UInt8])
    case end
}

/// Incremental request parser.
///
/// Feed bytes with ``append(_:)``, then call ``next()`` until it returns nil. A request produces
/// `.head`, zero or more `.body` chunks and `.end`; pipelined requests follow one another. After
/// an error the parser is unusable: answer with the error's status and close.
public struct HTTPRequestParser: Sendable {
    /// Limits applied while parsing; defaults are what Tandem's server uses.
    public struct Limits: Sendable {
        /// Longest request line (method, target, version). Beyond it: 414.
        public var maxRequestLine = 8 * 1024
        /// Largest header section, request line included. Beyond it: 431.
        public var maxHeaderBytes = 32 * 1024
        /// Most header fields. Beyond it: 431.
        public var maxHeaderCount = 100
        /// Largest request body. Beyond it: 413.
        public var maxBodySize = 16 * 1024 * 1024
        public init() {}
    }

    private enum State: Sendable {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataCRLF
        case trailers
        case failed
    }

    public var limits: Limits
    private var state: State = .head
    private var buffer: [UInt8] = []
    private var start = 0
    private var bodyReceived = 0
    private var scanFrom = 0  // where to resume looking for the end of the head

    public init(limits: Limits = Limits()) { self.limits = limits }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start == buffer.count { buffer.removeAll(keepingCapacity: buffer.capacity <= 4096); start = 0; scanFrom = 0 }
        buffer.append(contentsOf: bytes)
    }
    public mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Bytes received but not consumed (after an upgrade these belong to the new protocol).
    public mutating func takeRemainingBytes() -> [UInt8] {
        let rest = Array(buffer[start...])
        buffer = []; start = 0; scanFrom = 0
        return rest
    }

    /// Whether the parser sits between requests with nothing buffered.
    public var isIdle: Bool {
        if case .head = state { return start == buffer.count }
        return false
    }

    public mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        do {
            return try step()
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPParserEvent? {
        switch state {
        case .failed:
            throw HTTPParseError(.badRequest, "parser failed earlier")
        case .head:
            return try parseHead()
        case .body(let remaining):
            let available = buffer.count - start
            if remaining == 0 { state = .head; return .end }
            if available == 0 { return nil }
            let n = min(available, remaining)
            let chunk = Array(buffer[start..<start + n])
            start += n
            state = .body(remaining: remaining - n)
            return .body(chunk)
        case .chunkSize:
            guard let lineEnd = findCRLF(from: start) else {
                if buffer.count - start > 1024 { throw HTTPParseError(.badRequest, "chunk size line too long") }
                return nil
            }
            var size = 0
            var i = start
            var digits = 0
            while i < lineEnd, let v = hexValue(buffer[i]) {
                size = size &* 16 &+ Int(v); digits += 1; i += 1
                if digits > 15 { throw HTTPParseError(.contentTooLarge, "chunk too large") }
            }
            guard digits > 0 else { throw HTTPParseError(.badRequest, "invalid chunk size") }
            if i < lineEnd && buffer[i] != UInt8(ascii: ";") { throw HTTPParseError(.badRequest, "invalid chunk size") }
            start = lineEnd + 2
            if size == 0 { state = .trailers; return try step() }
            if bodyReceived + size > limits.maxBodySize { throw HTTPParseError(.contentTooLarge, "body exceeds \(limits.maxBodySize) bytes") }
            bodyReceived += size
            state = .chunkData(remaining: size)
            return try step()
        case .chunkData(let remaining):
            let available = buffer.count - start
            if available == 0 { return nil }
            let n = min(available, remaining)
            let chunk = Array(buffer[start..<start + n])
            start += n
            state = remaining - n == 0 ? .chunkDataCRLF : .chunkData(remaining: remaining - n)
            return .body(chunk)
        case .chunkDataCRLF:
            if buffer.count - start < 2 { return nil }
            guard buffer[start] == 13, buffer[start + 1] == 10 else { throw HTTPParseError(.badRequest, "missing CRLF after chunk") }
            start += 2
            state = .chunkSize
            return try step()
        case .trailers:
            // Trailer fields are read and discarded; an empty line ends the message.
            guard let lineEnd = findCRLF(from: start) else {
                if buffer.count - start > limits.maxHeaderBytes { throw HTTPParseError(.headerFieldsTooLarge, "trailers too large") }
                return nil
            }
            let empty = lineEnd == start
            start = lineEnd + 2
            if empty { state = .head; return .end }
            return try step()
        }
    }

    private func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }

    private func findCRLF(from: Int) -> Int? {
        var i = from
        while i + 1 < buffer.count {
            if buffer[i] == 13 {
                if buffer[i + 1] == 10 { return i }
            }
            i += 1
        }
        return nil
    }

    private mutating func parseHead() throws(HTTPParseError) -> HTTPParserEvent? {
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        while buffer.count - start >= 2, buffer[start] == 13, buffer[start + 1] == 10 { start += 2 }
        if start == buffer.count { return nil }
        // Find the end of the header section, checking limits as bytes arrive.
        var i = max(start, scanFrom)
        var end = -1
        while i + 3 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { end = i; break }
            i += 1
        }
        if end < 0 {
            scanFrom = max(start, buffer.count - 3)
            let pending = buffer.count - start
            if let lineEnd = findCRLF(from: start) {
                if lineEnd - start > limits.maxRequestLine { throw HTTPParseError(.uriTooLong, "request line too long") }
            } else if pending > limits.maxRequestLine {
                throw HTTPParseError(.uriTooLong, "request line too long")
            }
            if pending > limits.maxHeaderBytes { throw HTTPParseError(.headerFieldsTooLarge, "header section too large") }
            return nil
        }
        if end - start > limits.maxHeaderBytes { throw HTTPParseError(.headerFieldsTooLarge, "header section too large") }
        let head = try buffer.withUnsafeBufferPointer { (b) throws(HTTPParseError) -> HTTPRequestHead in
            try Self.parseHeadBytes(UnsafeBufferPointer(rebasing: b[start..<end + 2]), limits: limits)
        }
        start = end + 4
        scanFrom = start
        bodyReceived = 0
        // Message body length (RFC 9112 §6.3).
        let te = head.headers.values("Transfer-Encoding")
        let cl = head.headers.values("Content-Length")
        if !te.isEmpty {
            if !cl.isEmpty { throw HTTPParseError(.badRequest, "both Transfer-Encoding and Content-Length") }
            let codings = head.headers.listElements("Transfer-Encoding")
            guard codings.count == 1, asciiCaseInsensitiveEquals(codings[0], "chunked") else {
                throw HTTPParseError(.notImplemented, "unsupported transfer coding")
            }
            state = .chunkSize
        } else if !cl.isEmpty {
            var length: Int? = nil
            for v in cl {
                for part in v.split(separator: ",", omittingEmptySubsequences: false) {
                    let t = part.trimmingOWS()
                    guard !t.isEmpty, t.utf8.count <= 15, t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(t) else {
                        throw HTTPParseError(.badRequest, "invalid Content-Length")
                    }
                    if let l = length, l != n { throw HTTPParseError(.badRequest, "conflicting Content-Length") }
                    length = n
                }
            }
            let n = length ?? 0
            if n > limits.maxBodySize { throw HTTPParseError(.contentTooLarge, "body exceeds \(limits.maxBodySize) bytes") }
            state = .body(remaining: n)
        } else {
            state = .body(remaining: 0)
        }
        return .head(head)
    }

    // tchar (RFC 9110 §5.6.2)
    private static let tokenTable: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for c in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(c)] = true }
        for c in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(c)] = true }
        for c in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(c)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { t[Int(c)] = true }
        return t
    }()

    /// Parses `request-line CRLF *(field-line CRLF)` (the final empty line excluded).
    static func parseHeadBytes(_ b: UnsafeBufferPointer<UInt8>, limits: Limits) throws(HTTPParseError) -> HTTPRequestHead {
        var lines: [Range<Int>] = []
        var lineStart = 0
        var i = 0
        while i < b.count {
            if b[i] == 13 {
                guard i + 1 < b.count, b[i + 1] == 10 else { throw HTTPParseError(.badRequest, "bare CR") }
                lines.append(lineStart..<i)
                i += 2
                lineStart = i
                continue
            }
            if b[i] == 10 { throw HTTPParseError(.badRequest, "bare LF") }
            if b[i] == 0 { throw HTTPParseError(.badRequest, "NUL in header section") }
            i += 1
        }
        guard let requestLine = lines.first else { throw HTTPParseError(.badRequest, "empty request") }
        if requestLine.count > limits.maxRequestLine { throw HTTPParseError(.uriTooLong, "request line too long") }
        // method SP request-target SP HTTP-version
        let rl = b[requestLine]
        guard let sp1 = rl.firstIndex(of: 32) else { throw HTTPParseError(.badRequest, "malformed request line") }
        guard let sp2 = rl[(sp1 + 1)...].firstIndex(of: 32) else { throw HTTPParseError(.badRequest, "malformed request line") }
        let methodBytes = b[requestLine.lowerBound..<sp1]
        let targetBytes = b[(sp1 + 1)..<sp2]
        let versionBytes = b[(sp2 + 1)..<requestLine.upperBound]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy({ tokenTable[Int($0)] }) else {
            throw HTTPParseError(.badRequest, "invalid method")
        }
        guard !targetBytes.isEmpty, targetBytes.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw HTTPParseError(.badRequest, "invalid request target")
        }
        let version = Array(versionBytes)
        guard version.count == 8, version[0..<5].elementsEqual("HTTP/".utf8), version[6] == UInt8(ascii: "."),
              (48...57).contains(version[5]), (48...57).contains(version[7])
        else { throw HTTPParseError(.badRequest, "invalid HTTP version") }
        guard version[5] == UInt8(ascii: "1") else { throw HTTPParseError(.versionNotSupported, "only HTTP/1.x is supported") }
        let minor = Int(version[7] - 48)

        var headers = HTTPHeaders()
        if lines.count - 1 > limits.maxHeaderCount { throw HTTPParseError(.headerFieldsTooLarge, "too many header fields") }
        for line in lines.dropFirst() {
            let l = b[line]
            guard let first = l.first else { throw HTTPParseError(.badRequest, "empty header line") }
            if first == 32 || first == 9 { throw HTTPParseError(.badRequest, "obsolete line folding") }
            guard let colon = l.firstIndex(of: UInt8(ascii: ":")) else { throw HTTPParseError(.badRequest, "header without colon") }
            let name = b[line.lowerBound..<colon]
            guard !name.isEmpty, name.allSatisfy({ tokenTable[Int($0)] }) else { throw HTTPParseError(.badRequest, "invalid header name") }
            var vs = colon + 1, ve = line.upperBound
            while vs < ve, b[vs] == 32 || b[vs] == 9 { vs += 1 }
            while ve > vs, b[ve - 1] == 32 || b[ve - 1] == 9 { ve -= 1 }
            let value = b[vs..<ve]
            // field-value: VCHAR, obs-text, SP, HTAB; never CTLs.
            guard value.allSatisfy({ $0 >= 32 && $0 != 127 || $0 == 9 }) else { throw HTTPParseError(.badRequest, "invalid header value") }
            headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        }
        let head = HTTPRequestHead(
            method: String(decoding: methodBytes, as: UTF8.self),
            target: String(decoding: targetBytes, as: UTF8.self),
            versionMinor: minor,
            headers: headers)
        if minor >= 1 {
            let hosts = headers.values("Host")
            guard hosts.count == 1 else { throw HTTPParseError(.badRequest, hosts.isEmpty ? "missing Host" : "multiple Host fields") }
        }
        return head
    }
}
