// Incremental UTF-8 validation (RFC 3629 §4), so a text message fails at its first bad byte even
// when that byte arrives in a later fragment or TCP segment.

/// Validates UTF-8 a chunk at a time. Carries the partial code point across chunks.
public struct UTF8Validator: Sendable, Equatable {
    /// Continuation bytes still expected for the current code point.
    private var remaining: UInt8 = 0
    /// Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4).
    private var lo: UInt8 = 0x80
    private var hi: UInt8 = 0xBF

    public init() {}

    /// True when the bytes seen so far end on a code-point boundary.
    public var isComplete: Bool { remaining == 0 }

    /// Feeds bytes; returns false at the first byte that cannot be part of valid UTF-8.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let n = bytes.count
        var i = 0
        while i < n {
            if remaining == 0 {
                // ASCII fast path, eight bytes at a time.
                while i &+ 8 <= n && base.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    i &+= 8
                }
                if i >= n { break }
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                i &+= 1
                switch b {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: remaining = 1; lo = 0x80; hi = 0xBF
                case 0xE0: remaining = 2; lo = 0xA0; hi = 0xBF
                case 0xE1...0xEC, 0xEE...0xEF: remaining = 2; lo = 0x80; hi = 0xBF
                case 0xED: remaining = 2; lo = 0x80; hi = 0x9F
                case 0xF0: remaining = 3; lo = 0x90; hi = 0xBF
                case 0xF1...0xF3: remaining = 3; lo = 0x80; hi = 0xBF
                case 0xF4: remaining = 3; lo = 0x80; hi = 0x8F
                default: return false
                }
            } else {
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                i &+= 1
                guard b >= lo && b <= hi else { return false }
                remaining &-= 1
                lo = 0x80; hi = 0xBF
            }
        }
        return true
    }

    public mutating func validate(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { validate($0) }
    }

    /// Validates a whole string of bytes at once.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        var v = UTF8Validator()
        return v.validate(bytes) && v.isComplete
    }
}
