// The audit keys: the content key (HMAC-SHA-256) and the tree-head signing key (Ed25519). Both
// live outside the database, in files with mode 0600 (or the content key in an environment
// variable), are generated on first start, and carry an id so they can rotate.
internal import COpenSSL
import TandemCrypto
#if canImport(Glibc)
import Glibc
#endif

/// The key for content digests: `HMAC-SHA256(key, content)`.
///
/// Its ``id`` is the first 8 bytes, in hex, of `SHA-256("tandem-audit-content-key-v1" || key)`:
/// it names the key without revealing anything that helps guess content.
public struct AuditContentKey: Sendable, Equatable, CustomStringConvertible {
    private let key: [UInt8]
    private let hmac: HMACSHA256Template
    /// 16 hex digits.
    public let id: String

    /// A key of 32 bytes (shorter keys are refused: at least 16 bytes; at most 64).
    public init?(bytes: [UInt8]) {
        guard bytes.count >= 16, bytes.count <= 64 else { return nil }
        self.key = bytes
        self.hmac = HMACSHA256Template(key: bytes)
        self.id = Hex.encode(Digest.sha256(Array("tandem-audit-content-key-v1".utf8) + bytes).prefix(8))
    }

    public static func == (a: AuditContentKey, b: AuditContentKey) -> Bool { a.key == b.key }

    /// A new random key.
    public static func generate() -> AuditContentKey { AuditContentKey(bytes: SecureRandom.bytes(32))! }

    /// `HMAC-SHA256(key, content)` (RFC 2104), from SHA-256 states precomputed for this key.
    public func digest(_ content: some Collection<UInt8>) -> AuditHash {
        if let d = content.withContiguousStorageIfAvailable({ hmac.mac(UnsafeRawBufferPointer($0)) }) { return d }
        return Array(content).withUnsafeBytes { hmac.mac($0) }
    }

    /// An incremental `HMAC-SHA256(key, …)` for content that arrives in pieces (a kernel's
    /// output): same result as ``digest(_:)`` of the concatenation.
    public func streamingDigest() -> AuditDigester { AuditDigester(hmac) }

    /// The key in hex, for writing the key file.
    var hex: String { Hex.encode(key) }

    /// Never prints the key.
    public var description: String { "AuditContentKey(id: \(id))" }
}

/// A digest in progress (see ``AuditContentKey/streamingDigest()``). Used by one owner at a time.
public final class AuditDigester {
    private let template: HMACSHA256Template
    private let ctx: OpaquePointer
    private var finished = false
    /// Bytes digested so far.
    public private(set) var count = 0

    init(_ template: HMACSHA256Template) {
        self.template = template
        guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        ctx = c
        template.beginInner(ctx)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: some Collection<UInt8>) {
        precondition(!finished, "update after finish")
        count += bytes.count
        if bytes.withContiguousStorageIfAvailable({ b in _ = EVP_DigestUpdate(ctx, b.baseAddress, b.count) }) == nil {
            Array(bytes).withUnsafeBytes { b in _ = EVP_DigestUpdate(ctx, b.baseAddress, b.count) }
        }
    }

    /// The MAC of everything given to ``update(_:)``; the digester cannot be used afterwards.
    public func finish() -> AuditHash {
        precondition(!finished, "finish twice")
        finished = true
        return template.finishOuter(ctx)
    }
}

@available(*, unavailable)
extension AuditDigester: Sendable {}

/// HMAC-SHA-256 with the key's inner and outer SHA-256 states computed once (RFC 2104:
/// `H((K ^ opad) || H((K ^ ipad) || m))`); each MAC copies them, avoiding OpenSSL 3's
/// per-call algorithm fetch and key setup (the one-shot `HMAC()` cost about three times more).
///
/// `@unchecked Sendable`: the two contexts are written only in `init` and afterwards only read
/// (as the source of `EVP_MD_CTX_copy_ex`, which does not modify it), so concurrent use from
/// several threads is safe; they are freed in `deinit`.
final class HMACSHA256Template: @unchecked Sendable {
    private let inner: OpaquePointer
    private let outer: OpaquePointer

    init(key: [UInt8]) {
        precondition(key.count <= 64, "HMAC keys longer than the block size are not used here")
        guard let md = EVP_MD_fetch(nil, "SHA256", nil), let i = EVP_MD_CTX_new(), let o = EVP_MD_CTX_new() else {
            fatalError("OpenSSL: cannot set up HMAC-SHA-256")
        }
        defer { EVP_MD_free(md) }
        var ipad = [UInt8](repeating: 0x36, count: 64), opad = [UInt8](repeating: 0x5C, count: 64)
        for (n, b) in key.enumerated() {
            ipad[n] ^= b
            opad[n] ^= b
        }
        precondition(EVP_DigestInit_ex2(i, md, nil) == 1 && EVP_DigestInit_ex2(o, md, nil) == 1)
        precondition(EVP_DigestUpdate(i, ipad, 64) == 1 && EVP_DigestUpdate(o, opad, 64) == 1)
        inner = i
        outer = o
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    /// Starts `ctx` as the inner hash (then feed it the message).
    func beginInner(_ ctx: OpaquePointer) {
        precondition(EVP_MD_CTX_copy_ex(ctx, inner) == 1)
    }

    /// Finishes the inner hash in `ctx` and returns the MAC.
    func finishOuter(_ ctx: OpaquePointer) -> AuditHash {
        var innerHash = AuditHash(), out = AuditHash()
        var len: UInt32 = 0
        withUnsafeMutableBytes(of: &innerHash) { p in
            precondition(EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1)
        }
        precondition(EVP_MD_CTX_copy_ex(ctx, outer) == 1)
        innerHash.withUnsafeBytes { p in precondition(EVP_DigestUpdate(ctx, p.baseAddress, 32) == 1) }
        withUnsafeMutableBytes(of: &out) { p in
            precondition(EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1)
        }
        return out
    }

    func mac(_ message: UnsafeRawBufferPointer) -> AuditHash {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        var innerHash = AuditHash(), out = AuditHash()
        var len: UInt32 = 0
        precondition(EVP_MD_CTX_copy_ex(ctx, inner) == 1)
        if message.count > 0 { precondition(EVP_DigestUpdate(ctx, message.baseAddress, message.count) == 1) }
        withUnsafeMutableBytes(of: &innerHash) { p in
            precondition(EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1)
        }
        precondition(EVP_MD_CTX_copy_ex(ctx, outer) == 1)
        innerHash.withUnsafeBytes { p in precondition(EVP_DigestUpdate(ctx, p.baseAddress, 32) == 1) }
        withUnsafeMutableBytes(of: &out) { p in
            precondition(EVP_DigestFinal_ex(ctx, p.baseAddress!.assumingMemoryBound(to: UInt8.self), &len) == 1)
        }
        return out
    }
}

/// An Ed25519 public key that tree-head signatures are checked with.
public struct AuditPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte raw public key (RFC 8032).
    public let bytes: [UInt8]
    /// First 8 bytes of `SHA-256(publicKey)`, hex.
    public let id: String

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
        self.id = Hex.encode(Digest.sha256(bytes).prefix(8))
    }

    public var description: String { "AuditPublicKey(id: \(id), \(Hex.encode(bytes)))" }

    /// Checks an Ed25519 signature over `message`.
    public func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        guard let pkey = bytes.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(ctandem_EVP_PKEY_ED25519(), nil, $0.baseAddress, 32) })
        else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else { return false }
        let r = signature.withUnsafeBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                EVP_DigestVerify(ctx, s.baseAddress, 64, m.baseAddress ?? UnsafePointer(bitPattern: 1), m.count)
            }
        }
        return r == 1
    }
}

/// An Ed25519 private key for signing tree heads.
public struct AuditSigningKey: Sendable, CustomStringConvertible {
    private let seed: [UInt8]
    public let publicKey: AuditPublicKey

    /// The 32-byte private key (RFC 8032 "secret key", the seed). Nil if OpenSSL refuses it.
    public init?(seed: [UInt8]) {
        guard seed.count == 32 else { return nil }
        guard let pkey = seed.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(ctandem_EVP_PKEY_ED25519(), nil, $0.baseAddress, 32) })
        else { return nil }
        defer { EVP_PKEY_free(pkey) }
        var pub = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard pub.withUnsafeMutableBufferPointer({ EVP_PKEY_get_raw_public_key(pkey, $0.baseAddress, &len) }) == 1, len == 32,
            let pk = AuditPublicKey(bytes: pub)
        else { return nil }
        self.seed = seed
        self.publicKey = pk
    }

    /// A new random key.
    public static func generate() -> AuditSigningKey { AuditSigningKey(seed: SecureRandom.bytes(32))! }

    /// The public key's id.
    public var id: String { publicKey.id }

    /// The Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        guard let pkey = seed.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(ctandem_EVP_PKEY_ED25519(), nil, $0.baseAddress, 32) })
        else { fatalError("OpenSSL refused an Ed25519 key it accepted before") }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1, "EVP_DigestSignInit failed")
        var sig = [UInt8](repeating: 0, count: 64)
        var len = 64
        let r = sig.withUnsafeMutableBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                EVP_DigestSign(ctx, s.baseAddress, &len, m.baseAddress ?? UnsafePointer(bitPattern: 1), m.count)
            }
        }
        precondition(r == 1 && len == 64, "EVP_DigestSign failed")
        return sig
    }

    var hex: String { Hex.encode(seed) }

    /// Never prints the private key.
    public var description: String { "AuditSigningKey(id: \(id))" }
}

/// Where the keys live.
///
/// The standard layout for a data directory `<data>` is `<data>/audit/hmac.key` (content keys),
/// `<data>/audit/signing.key` (the current signing key) and `<data>/audit/signing.pub` (every
/// public key whose signatures are trusted: the current one and retired ones).
public struct AuditKeyConfiguration: Sendable, Equatable {
    /// Content keys, one per line in hex; the first is current, the rest are retired (kept so
    /// `tandem audit match` can check old entries).
    public var contentKeyPath: String
    /// When set and the variable is present, the content key is read from it (64 hex digits)
    /// instead of the file, and the file is neither read nor created.
    public var contentKeyEnvironmentVariable: String?
    /// The current Ed25519 private key, in hex (64 digits).
    public var signingKeyPath: String
    /// Trusted public keys, one per line in hex.
    public var trustedKeysPath: String

    public init(contentKeyPath: String, contentKeyEnvironmentVariable: String? = nil, signingKeyPath: String, trustedKeysPath: String) {
        self.contentKeyPath = contentKeyPath
        self.contentKeyEnvironmentVariable = contentKeyEnvironmentVariable
        self.signingKeyPath = signingKeyPath
        self.trustedKeysPath = trustedKeysPath
    }

    /// The standard layout inside `directory` (e.g. `<data>/audit`).
    public static func standard(directory: String, contentKeyEnvironmentVariable: String? = nil) -> AuditKeyConfiguration {
        AuditKeyConfiguration(
            contentKeyPath: directory + "/hmac.key", contentKeyEnvironmentVariable: contentKeyEnvironmentVariable,
            signingKeyPath: directory + "/signing.key", trustedKeysPath: directory + "/signing.pub")
    }
}

/// The loaded keys.
public struct AuditKeyring: Sendable {
    /// The key new digests are made with.
    public let contentKey: AuditContentKey
    /// Older content keys, newest first.
    public let retiredContentKeys: [AuditContentKey]
    /// The key new tree heads are signed with (nil when loaded for verification only and the
    /// private key file is absent).
    public let signingKey: AuditSigningKey?
    /// Public keys whose signatures verification accepts, by id.
    public let trustedKeys: [String: AuditPublicKey]

    public init(contentKey: AuditContentKey, retiredContentKeys: [AuditContentKey] = [], signingKey: AuditSigningKey?, trustedKeys: [AuditPublicKey]) {
        self.contentKey = contentKey
        self.retiredContentKeys = retiredContentKeys
        self.signingKey = signingKey
        var t: [String: AuditPublicKey] = [:]
        for k in trustedKeys { t[k.id] = k }
        if let s = signingKey { t[s.id] = s.publicKey }
        self.trustedKeys = t
    }

    /// Every content key, current first.
    public var allContentKeys: [AuditContentKey] { [contentKey] + retiredContentKeys }

    /// Loads the keys, generating missing ones when `create` (the server's first start).
    ///
    /// - Throws: ``AuditError`` with `.keyPermissions` when a key file is readable or writable
    ///   by group or others (like ssh, the key is refused), `.badKey` when malformed,
    ///   `.missingKey` when absent and `create` is false.
    public static func load(_ c: AuditKeyConfiguration, create: Bool) throws(AuditError) -> AuditKeyring {
        // Content key: environment variable first.
        var contentKeys: [AuditContentKey]
        if let name = c.contentKeyEnvironmentVariable, let value = getenv(name) {
            let text = String(cString: value).trimmingWhitespace()
            guard let bytes = Hex.decode(text), bytes.count == 32, let k = AuditContentKey(bytes: bytes) else {
                throw AuditError(.badKey, "environment variable \(name) must hold 64 hex digits (a 32-byte key)")
            }
            contentKeys = [k]
        } else {
            let lines = try readKeyLines(c.contentKeyPath, create: create) { AuditContentKey.generate().hex }
            contentKeys = []
            for line in lines {
                guard let b = Hex.decode(line), b.count == 32, let k = AuditContentKey(bytes: b) else {
                    throw AuditError(.badKey, "\(c.contentKeyPath): each line must be 64 hex digits")
                }
                contentKeys.append(k)
            }
        }

        // Signing key.
        var signing: AuditSigningKey? = nil
        if create || fileExists(c.signingKeyPath) {
            let lines = try readKeyLines(c.signingKeyPath, create: create) { AuditSigningKey.generate().hex }
            guard lines.count == 1, let b = Hex.decode(lines[0]), let k = AuditSigningKey(seed: b) else {
                throw AuditError(.badKey, "\(c.signingKeyPath): must hold one line of 64 hex digits")
            }
            signing = k
        }

        // Trusted public keys; make sure the current one is listed (created on first start).
        var trusted = try readPublicKeys(c.trustedKeysPath)
        if let signing, !trusted.contains(signing.publicKey) {
            if create {
                try appendLine(Hex.encode(signing.publicKey.bytes), to: c.trustedKeysPath)
            }
            trusted.append(signing.publicKey)
        }
        return AuditKeyring(
            contentKey: contentKeys[0], retiredContentKeys: Array(contentKeys.dropFirst()), signingKey: signing, trustedKeys: trusted)
    }

    /// Makes a new content key current and keeps the old ones (for `audit match`). Entries
    /// record the id of the key their digests were made with.
    ///
    /// Not available when the content key comes from an environment variable: rotate it there.
    public static func rotateContentKey(_ c: AuditKeyConfiguration) throws(AuditError) -> AuditContentKey {
        let old = try readKeyLines(c.contentKeyPath, create: false) { "" }
        let new = AuditContentKey.generate()
        try writeKeyFileReplacing(c.contentKeyPath, lines: [new.hex] + old)
        return new
    }

    /// Makes a new signing key current. The old public key stays in the trusted-keys file, so
    /// tree heads it signed still verify; the old private key is discarded.
    public static func rotateSigningKey(_ c: AuditKeyConfiguration) throws(AuditError) -> AuditSigningKey {
        let new = AuditSigningKey.generate()
        try appendLine(Hex.encode(new.publicKey.bytes), to: c.trustedKeysPath)
        try writeKeyFileReplacing(c.signingKeyPath, lines: [new.hex])
        return new
    }
}

// MARK: Key files

extension String {
    func trimmingWhitespace() -> String {
        let u = Array(utf8)
        var lo = 0, hi = u.count
        while lo < hi, u[lo] == 0x20 || u[lo] == 0x0A || u[lo] == 0x0D || u[lo] == 0x09 { lo += 1 }
        while hi > lo, u[hi - 1] == 0x20 || u[hi - 1] == 0x0A || u[hi - 1] == 0x0D || u[hi - 1] == 0x09 { hi -= 1 }
        return String(decoding: u[lo..<hi], as: UTF8.self)
    }
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// Creates `path` and its parents with mode 0700 (existing directories are left as they are).
func makeDirectories(_ path: String) throws(AuditError) {
    if path.isEmpty || fileExists(path) { return }
    let parent = parentDirectory(path)
    if parent != path { try makeDirectories(parent) }
    if mkdir(path, 0o700) != 0 && errno != EEXIST { throw AuditError.posix("mkdir", path) }
}

func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// Reads a whole file; nil when it does not exist.
func readFile(_ path: String) throws(AuditError) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw AuditError.posix("open", path)
    }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw AuditError.posix("read", path)
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Writes all of `bytes` to `fd`.
func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(AuditError) {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 {
            if errno == EINTR { continue }
            throw AuditError.posix("write", path)
        }
        off += n
    }
}

/// Writes a new file with mode 0600 next to `path`, syncs it, and links it into place. With
/// `replace` the new file replaces an existing one (rename); without, an existing file wins
/// (link fails with EEXIST and the caller reads the existing one).
/// Returns false when `replace` is false and the file already existed.
@discardableResult
func writeFileAtomically(_ path: String, _ bytes: [UInt8], replace: Bool) throws(AuditError) -> Bool {
    try makeDirectories(parentDirectory(path))
    let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    if fd < 0 { throw AuditError.posix("open", tmp) }
    do throws(AuditError) {
        try writeAll(fd, bytes, path: tmp)
        if fsync(fd) != 0 { throw AuditError.posix("fsync", tmp) }
    } catch {
        close(fd)
        unlink(tmp)
        throw error
    }
    close(fd)
    defer { unlink(tmp) }
    if replace {
        if rename(tmp, path) != 0 { throw AuditError.posix("rename", path) }
    } else if link(tmp, path) != 0 {
        if errno == EEXIST { return false }
        throw AuditError.posix("link", path)
    }
    // Make the new directory entry durable too.
    let dfd = open(parentDirectory(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        fsync(dfd)
        close(dfd)
    }
    return true
}

/// The non-empty, non-comment lines of a key file, checking that only the owner can read it.
/// A missing file is created with one line from `generate` when `create`.
func readKeyLines(_ path: String, create: Bool, generate: () -> String) throws(AuditError) -> [String] {
    if !fileExists(path) {
        guard create else { throw AuditError(.missingKey, "\(path) does not exist") }
        let text = "# tandem audit key: keep this file secret (mode 0600); see docs/audit.md\n" + generate() + "\n"
        try writeFileAtomically(path, Array(text.utf8), replace: false)
    }
    var st = stat()
    if stat(path, &st) != 0 { throw AuditError.posix("stat", path) }
    if st.st_mode & 0o077 != 0 {
        throw AuditError(.keyPermissions, "\(path) is accessible by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
    }
    guard let bytes = try readFile(path) else { throw AuditError(.missingKey, "\(path) does not exist") }
    let lines = keyLines(bytes)
    if lines.isEmpty { throw AuditError(.badKey, "\(path) holds no key") }
    return lines
}

func keyLines(_ bytes: [UInt8]) -> [String] {
    String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" })
        .map { String($0).trimmingWhitespace() }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
}

func writeKeyFileReplacing(_ path: String, lines: [String]) throws(AuditError) {
    let text = "# tandem audit key: keep this file secret (mode 0600); see docs/audit.md\n" + lines.joined(separator: "\n") + "\n"
    try writeFileAtomically(path, Array(text.utf8), replace: true)
}

/// Trusted public keys (hex lines); an absent file is an empty list.
func readPublicKeys(_ path: String) throws(AuditError) -> [AuditPublicKey] {
    guard let bytes = try readFile(path) else { return [] }
    var out: [AuditPublicKey] = []
    for line in keyLines(bytes) {
        guard let b = Hex.decode(line), let k = AuditPublicKey(bytes: b) else {
            throw AuditError(.badKey, "\(path): each line must be a 32-byte public key in hex")
        }
        out.append(k)
    }
    return out
}

func appendLine(_ line: String, to path: String) throws(AuditError) {
    let old = try readFile(path) ?? Array("# tandem audit: trusted tree-head signing keys (public)\n".utf8)
    var text = old
    if let last = text.last, last != 0x0A { text.append(0x0A) }
    text += Array((line + "\n").utf8)
    try writeFileAtomically(path, text, replace: true)
}
