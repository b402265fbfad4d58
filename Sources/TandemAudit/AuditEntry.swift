// A stored entry and its canonical byte encoding (docs/audit.md, "Canonical encoding").

/// One entry of the log as stored: the event plus its sequence number, time and chain hashes.
public struct AuditEntry: Sendable, Equatable {
    /// 1, 2, 3, ... without gaps. Entry `seq` is leaf `seq - 1` of the Merkle tree.
    public var seq: UInt64
    /// UTC, microseconds since 1970-01-01T00:00:00Z. Never decreases along the log.
    public var timeMicros: Int64
    public var actor: AuditActor
    public var action: String
    public var workspace: String
    public var outcome: String
    /// The id of the content key the digests were made with (the current key when there are none).
    public var contentKeyID: String
    /// The fields block exactly as stored and hashed (see ``AuditFields``).
    public var fieldsEncoding: [UInt8]
    /// The previous entry's ``entryHash`` (``AuditHash/zero`` for entry 1).
    public var prevHash: AuditHash
    /// `SHA-256(prevHash || canonicalEncoding)`.
    public var entryHash: AuditHash

    /// The decoded fields, or nil when the stored block is malformed.
    public var fields: [(name: String, value: AuditFieldValue)]? { AuditFields.decode(fieldsEncoding) }
}

/// The canonical encoding (format version 1). All integers big-endian; `str` and `bytes` are a
/// 4-byte length followed by that many bytes (strings as UTF-8):
///
/// ```
/// u8    version = 0x01
/// u64   seq
/// i64   timeMicros
/// str   actor id
/// str   actor role
/// str   action
/// str   workspace id
/// str   outcome
/// str   content key id
/// bytes fields block
/// ```
///
/// The fields block is the fields sorted by name (bytewise), each:
/// `u8 tag (1 integer, 2 text, 3 digest) · str name · value` where the value is an `i64`, a
/// `str`, or 32 raw bytes. `entryHash = SHA-256(prevHash || encoding)`.
public enum AuditEncoding {
    public static let version: UInt8 = 1

    /// The encoding of an entry's clear fields, written into `buffer` (which is cleared first
    /// and keeps its capacity, so a loop can reuse one buffer).
    public static func encode(
        seq: UInt64, timeMicros: Int64, actorID: some StringProtocol, actorRole: some StringProtocol, action: some StringProtocol,
        workspace: some StringProtocol, outcome: some StringProtocol, contentKeyID: some StringProtocol,
        fields: UnsafeRawBufferPointer, into buffer: inout [UInt8]
    ) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(version)
        appendUInt64(seq, to: &buffer)
        appendUInt64(UInt64(bitPattern: timeMicros), to: &buffer)
        appendString(actorID, to: &buffer)
        appendString(actorRole, to: &buffer)
        appendString(action, to: &buffer)
        appendString(workspace, to: &buffer)
        appendString(outcome, to: &buffer)
        appendString(contentKeyID, to: &buffer)
        appendUInt32(UInt32(fields.count), to: &buffer)
        buffer.append(contentsOf: fields)
    }

    /// The canonical encoding of a stored entry.
    public static func encode(_ e: AuditEntry) -> [UInt8] {
        var out: [UInt8] = []
        e.fieldsEncoding.withUnsafeBytes { f in
            encode(seq: e.seq, timeMicros: e.timeMicros, actorID: e.actor.id, actorRole: e.actor.role, action: e.action,
                   workspace: e.workspace, outcome: e.outcome, contentKeyID: e.contentKeyID, fields: f, into: &out)
        }
        return out
    }

    @inline(__always)
    static func appendUInt64(_ v: UInt64, to b: inout [UInt8]) {
        var be = v.bigEndian
        withUnsafeBytes(of: &be) { b.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendUInt32(_ v: UInt32, to b: inout [UInt8]) {
        var be = v.bigEndian
        withUnsafeBytes(of: &be) { b.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendString(_ s: some StringProtocol, to b: inout [UInt8]) {
        var s = String(s)
        s.withUTF8 { u in
            appendUInt32(UInt32(u.count), to: &b)
            b.append(contentsOf: u)
        }
    }
}

/// The fields block of the canonical encoding.
public enum AuditFields {
    /// Encodes fields sorted by name.
    public static func encode(_ fields: [String: AuditFieldValue]) -> [UInt8] {
        encode(fields.map { AuditField(name: $0.key, value: $0.value) })
    }

    /// Encodes fields, sorting them by name (bytewise) unless they already are. Names must be
    /// unique.
    public static func encode(_ fields: [AuditField]) -> [UInt8] {
        // Sort by UTF-8 bytes: the encoding must not depend on the standard library's collation.
        let inOrder = zip(fields, fields.dropFirst()).allSatisfy { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let sorted = inOrder ? fields : fields.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(sorted.count * 48)
        for f in sorted {
            let value = f.value
            out.append(value.tag)
            AuditEncoding.appendString(f.name, to: &out)
            switch value {
            case .integer(let v): AuditEncoding.appendUInt64(UInt64(bitPattern: v), to: &out)
            case .text(let t): AuditEncoding.appendString(t, to: &out)
            case .digest(let d): d.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Decodes a fields block; nil when it is malformed (truncated, unknown tag, bad UTF-8,
    /// names out of order or repeated).
    public static func decode(_ bytes: [UInt8]) -> [(name: String, value: AuditFieldValue)]? {
        var reader = ByteReader(bytes)
        var out: [(name: String, value: AuditFieldValue)] = []
        var previous: [UInt8]? = nil
        while !reader.isAtEnd {
            guard let tag = reader.readUInt8(), let nameBytes = reader.readLengthPrefixed() else { return nil }
            if let previous, !previous.lexicographicallyPrecedes(nameBytes) { return nil }
            previous = nameBytes
            guard let name = String(validating: nameBytes, as: UTF8.self) else { return nil }
            switch tag {
            case 1:
                guard let v = reader.readUInt64() else { return nil }
                out.append((name, .integer(Int64(bitPattern: v))))
            case 2:
                guard let t = reader.readLengthPrefixed(), let s = String(validating: t, as: UTF8.self) else { return nil }
                out.append((name, .text(s)))
            case 3:
                guard let d = reader.readBytes(32), let h = AuditHash(d) else { return nil }
                out.append((name, .digest(h)))
            default:
                return nil
            }
        }
        return out
    }
}

/// Reads big-endian integers and length-prefixed byte strings.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var isAtEnd: Bool { offset >= bytes.count }

    mutating func readUInt8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readBytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, bytes.count - offset >= n else { return nil }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    mutating func readUInt32() -> UInt32? {
        guard let b = readBytes(4) else { return nil }
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func readUInt64() -> UInt64? {
        guard let b = readBytes(8) else { return nil }
        return b.reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func readLengthPrefixed() -> [UInt8]? {
        guard let n = readUInt32() else { return nil }
        return readBytes(Int(n))
    }
}
