// RFC 6455 §5.3 masking, eight bytes at a time.

/// XORs `count` bytes from `src` into `dst` with the 4-byte mask `key`, starting at mask
/// position `offset` (0...3). `src` and `dst` may be the same buffer.
@inlinable
public func webSocketMaskCopy(
    from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, count: Int, key: UInt32, offset: Int = 0
) {
    // `key` holds the four mask bytes in wire order when loaded little-endian from memory.
    var k = key
    if offset & 3 != 0 { k = k >> UInt32(8 * (offset & 3)) | k << UInt32(32 - 8 * (offset & 3)) }
    let k64 = UInt64(k) | UInt64(k) << 32
    var i = 0
    while i &+ 8 <= count {
        let v = src.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        dst.storeBytes(of: v ^ k64, toByteOffset: i, as: UInt64.self)
        i &+= 8
    }
    var kk = k
    while i < count {
        let b = src.load(fromByteOffset: i, as: UInt8.self) ^ UInt8(truncatingIfNeeded: kk)
        dst.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
        kk = kk >> 8 | kk << 24
        i &+= 1
    }
}

/// Loads four mask bytes (wire order) as the `key` ``webSocketMaskCopy(from:to:count:key:offset:)`` expects.
@inlinable
public func webSocketMaskKey(_ bytes: UnsafeRawPointer) -> UInt32 {
    bytes.loadUnaligned(as: UInt32.self)
}

/// Masks or unmasks an array in place.
public func webSocketMask(_ data: inout [UInt8], key: (UInt8, UInt8, UInt8, UInt8)) {
    let keyBytes: [UInt8] = [key.0, key.1, key.2, key.3]
    let k = keyBytes.withUnsafeBytes { webSocketMaskKey($0.baseAddress!) }
    let n = data.count
    data.withUnsafeMutableBytes { b in
        guard let base = b.baseAddress else { return }
        webSocketMaskCopy(from: base, to: base, count: n, key: k)
    }
}
