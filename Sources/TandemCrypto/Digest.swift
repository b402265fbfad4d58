// Message digests and MACs through the system OpenSSL (EVP API, OpenSSL 3).
internal import COpenSSL

/// One-shot digests. Each returns the raw digest bytes.
public enum Digest {
    /// SHA-1, used only where a protocol demands it (RFC 6455 `Sec-WebSocket-Accept`).
    public static func sha1<Bytes: Collection<UInt8>>(_ data: Bytes) -> [UInt8] {
        oneShot(data, md: EVP_sha1(), length: 20)
    }

    /// SHA-256.
    public static func sha256<Bytes: Collection<UInt8>>(_ data: Bytes) -> [UInt8] {
        oneShot(data, md: EVP_sha256(), length: 32)
    }

    private static func oneShot<Bytes: Collection<UInt8>>(_ data: Bytes, md: OpaquePointer?, length: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let ok: Int32 = withContiguousBytes(data) { input in
            out.withUnsafeMutableBufferPointer { o in
                var len: UInt32 = 0
                return EVP_Digest(input.baseAddress, input.count, o.baseAddress, &len, md, nil)
            }
        }
        precondition(ok == 1, "EVP_Digest failed")
        return out
    }

    /// HMAC-SHA-256 of `data` under `key`.
    public static func hmacSHA256<K: Collection<UInt8>, D: Collection<UInt8>>(key: K, _ data: D) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        withContiguousBytes(key) { k in
            withContiguousBytes(data) { d in
                out.withUnsafeMutableBufferPointer { o in
                    var len: UInt32 = 0
                    let r = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                 d.count, o.baseAddress, &len)
                    precondition(r != nil, "HMAC failed")
                }
            }
        }
        return out
    }
}

/// Runs `body` over the bytes of any collection, copying only when it is not contiguous.
@inlinable
func withContiguousBytes<C: Collection<UInt8>, R>(_ c: C, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let r = c.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
    let copy = Array(c)
    return copy.withUnsafeBytes(body)
}

/// Cryptographically secure random bytes from OpenSSL's DRBG.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 {
            let r = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
            precondition(r == 1, "RAND_bytes failed")
        }
        return out
    }

    /// Fills a buffer in place.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count > 0 else { return }
        let r = RAND_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(buffer.count))
        precondition(r == 1, "RAND_bytes failed")
    }
}
