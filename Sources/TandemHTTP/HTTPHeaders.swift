// HTTP header fields: an ordered list with case-insensitive lookup (RFC 9110 §5).

/// Header fields in the order they arrived or will be sent. Names compare case-insensitively.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public var count: Int { fields.count }
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    /// Replaces every field called `name` with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        fields.append((name: name, value: value))
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// The first value of `name`.
    public subscript(_ name: String) -> String? {
        fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { asciiCaseInsensitiveEquals($0.name, name) }.map(\.value)
    }

    /// The comma-separated list elements of every `name` field (RFC 9110 §5.6.1), trimmed, empty
    /// elements dropped.
    public func listElements(_ name: String) -> [Substring] {
        var out: [Substring] = []
        for v in values(name) {
            for part in v.split(separator: ",", omittingEmptySubsequences: true) {
                let t = part.trimmingOWS()
                if !t.isEmpty { out.append(t) }
            }
        }
        return out
    }

    /// Whether a list-valued header contains `token`, case-insensitively (`Connection: keep-alive, Upgrade`).
    public func containsToken(_ name: String, _ token: String) -> Bool {
        listElements(name).contains { asciiCaseInsensitiveEquals($0, token) }
    }
}

/// ASCII case-insensitive comparison without allocating lowercase copies.
public func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let au = a.utf8, bu = b.utf8
    guard au.count == bu.count else { return false }
    for (x, y) in zip(au, bu) where x != y {
        let lx = x >= 65 && x <= 90 ? x | 0x20 : x
        let ly = y >= 65 && y <= 90 ? y | 0x20 : y
        if lx != ly { return false }
    }
    return true
}

extension StringProtocol {
    /// Trims optional white space (SP and HTAB) at both ends.
    public func trimmingOWS() -> SubSequence {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
