// Signed tree heads (checkpoints).

/// A signed tree head: the Merkle root over the first ``treeSize`` entries, the hash of entry
/// ``treeSize`` (the chain head), the time, and an Ed25519 signature over all of it.
///
/// The signed message (format version 1), integers big-endian:
///
/// ```
/// 19 bytes  ASCII "tandem-audit-sth-v1"
/// u64       treeSize
/// i64       timeMicros
/// 32 bytes  root        (RFC 6962 Merkle tree hash over the leaf hashes SHA-256(0x00 || entryHash))
/// 32 bytes  chainHead   (entryHash of entry treeSize)
/// str       key id      (u32 length + ASCII hex)
/// ```
public struct AuditTreeHead: Sendable, Equatable {
    public var treeSize: UInt64
    public var timeMicros: Int64
    public var root: AuditHash
    public var chainHead: AuditHash
    /// The id of the signing key (first 8 bytes of SHA-256 of its public key, hex).
    public var keyID: String
    /// 64 bytes.
    public var signature: [UInt8]

    public init(treeSize: UInt64, timeMicros: Int64, root: AuditHash, chainHead: AuditHash, keyID: String, signature: [UInt8]) {
        self.treeSize = treeSize
        self.timeMicros = timeMicros
        self.root = root
        self.chainHead = chainHead
        self.keyID = keyID
        self.signature = signature
    }

    public static let domain = "tandem-audit-sth-v1"

    /// The bytes the signature covers.
    public static func signedMessage(treeSize: UInt64, timeMicros: Int64, root: AuditHash, chainHead: AuditHash, keyID: String) -> [UInt8] {
        var m = Array(domain.utf8)
        AuditEncoding.appendUInt64(treeSize, to: &m)
        AuditEncoding.appendUInt64(UInt64(bitPattern: timeMicros), to: &m)
        root.withUnsafeBytes { m.append(contentsOf: $0) }
        chainHead.withUnsafeBytes { m.append(contentsOf: $0) }
        AuditEncoding.appendString(keyID, to: &m)
        return m
    }

    public var signedMessage: [UInt8] {
        AuditTreeHead.signedMessage(treeSize: treeSize, timeMicros: timeMicros, root: root, chainHead: chainHead, keyID: keyID)
    }

    /// Signs a new tree head.
    public static func sign(treeSize: UInt64, timeMicros: Int64, root: AuditHash, chainHead: AuditHash, key: AuditSigningKey) -> AuditTreeHead {
        let m = signedMessage(treeSize: treeSize, timeMicros: timeMicros, root: root, chainHead: chainHead, keyID: key.id)
        return AuditTreeHead(
            treeSize: treeSize, timeMicros: timeMicros, root: root, chainHead: chainHead, keyID: key.id, signature: key.sign(m))
    }

    /// Whether the signature verifies with `key` (whose id must match ``keyID``).
    public func verify(with key: AuditPublicKey) -> Bool {
        key.id == keyID && key.verify(signature: signature, message: signedMessage)
    }
}
