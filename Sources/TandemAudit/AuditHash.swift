// A 32-byte hash value stored inline (no heap allocation), and a reusable SHA-256 context.
internal import COpenSSL
import TandemCrypto

/// A SHA-256 or HMAC-SHA-256 value: 32 bytes, stored inline.
///
/// The four words hold the bytes in memory order (they are copied, not interpreted as
/// numbers), so `withUnsafeBytes` yields the digest exactly as OpenSSL produced it.
public struct AuditHash: Hashable, Sendable, CustomStringConvertible {
    private var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    /// The all-zero value: the `prevHash` of the first entry of a log.
    public static let zero = AuditHash()

    public init() {}

    /// Copies 32 bytes. Returns nil unless `bytes` holds exactly 32.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 32, let base = bytes.baseAddress else { return nil }
        Swift.withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: 32)) }
    }

    /// Copies 32 bytes. Returns nil unless `bytes` holds exactly 32.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        let array = Array(bytes)
        guard let h = array.withUnsafeBytes({ AuditHash(bytes: $0) }) else { return nil }
        self = h
    }

    /// Parses 64 hex digits.
    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex), let h = AuditHash(bytes) else { return nil }
        self = h
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Lower-case hex, 64 digits.
    public var hex: String { Hex.encode(bytes) }

    public var description: String { hex }

    /// Calls `body` with the 32 bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var copy = self
        return try Swift.withUnsafeBytes(of: &copy, body)
    }
}

/// A SHA-256 context that is reused between digests (OpenSSL's EVP API), avoiding the
/// algorithm fetch and context allocation that the one-shot `EVP_Digest` pays on every call.
/// Each thread uses its own instance.
final class SHA256Context {
    private let ctx: OpaquePointer
    private let md: OpaquePointer

    init() {
        guard let ctx = EVP_MD_CTX_new(), let md = EVP_MD_fetch(nil, "SHA256", nil) else {
            fatalError("OpenSSL: cannot create a SHA-256 context")
        }
        self.ctx = ctx
        self.md = md
    }

    deinit {
        EVP_MD_CTX_free(ctx)
        EVP_MD_free(md)
    }

    func begin() {
        let r = EVP_DigestInit_ex2(ctx, md, nil)
        precondition(r == 1, "EVP_DigestInit_ex2 failed")
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let r = EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count)
        precondition(r == 1, "EVP_DigestUpdate failed")
    }

    func update(_ hash: AuditHash) {
        hash.withUnsafeBytes { update($0) }
    }

    func update(byte: UInt8) {
        var b = byte
        Swift.withUnsafeBytes(of: &b) { update($0) }
    }

    func finish() -> AuditHash {
        var out = AuditHash()
        Swift.withUnsafeMutableBytes(of: &out) { p in
            var len: UInt32 = 0
            let r = EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len)
            precondition(r == 1 && len == 32, "EVP_DigestFinal_ex failed")
        }
        return out
    }

    /// SHA-256 of one buffer.
    func hash(_ bytes: UnsafeRawBufferPointer) -> AuditHash {
        begin()
        update(bytes)
        return finish()
    }

    /// SHA-256 of a byte array.
    func hash(_ bytes: [UInt8]) -> AuditHash {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// `SHA-256(prev || encoding)`: the hash-chain step.
    func chain(_ prev: AuditHash, _ encoding: UnsafeRawBufferPointer) -> AuditHash {
        begin()
        update(prev)
        update(encoding)
        return finish()
    }

    /// RFC 6962 leaf hash: `SHA-256(0x00 || data)`; our leaves are entry hashes.
    func leaf(_ entryHash: AuditHash) -> AuditHash {
        begin()
        update(byte: 0)
        update(entryHash)
        return finish()
    }

    /// RFC 6962 interior node: `SHA-256(0x01 || left || right)`.
    func node(_ left: AuditHash, _ right: AuditHash) -> AuditHash {
        begin()
        update(byte: 1)
        update(left)
        update(right)
        return finish()
    }
}

@available(*, unavailable)
extension SHA256Context: Sendable {}
