// Base64 (RFC 4648 §4) and hex, pure Swift: no Foundation in the server core.

public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Encodes bytes as base64 with padding (or base64url without padding).
    public static func encode<C: Collection<UInt8>>(_ data: C, url: Bool = false) -> String {
        let table = url ? urlAlphabet : alphabet
        let bytes = Array(data)
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)]); out.append(table[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            if !url { out.append(61); out.append(61) }
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)]); out.append(table[Int(n >> 6 & 63)])
            if !url { out.append(61) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded base64 (or unpadded base64url with `url: true`). Returns nil on any invalid input.
    public static func decode(_ string: some StringProtocol, url: Bool = false) -> [UInt8]? {
        var values = [UInt8]()
        values.reserveCapacity(string.utf8.count)
        var padding = 0
        for c in string.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - 65
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - 97 + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - 48 + 52
            case UInt8(ascii: "+") where !url: v = 62
            case UInt8(ascii: "/") where !url: v = 63
            case UInt8(ascii: "-") where url: v = 62
            case UInt8(ascii: "_") where url: v = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            if padding > 0 { return nil }  // data after padding
            values.append(v)
        }
        if !url {
            guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
        }
        if values.count % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i + 4 <= values.count {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
            out.append(UInt8(n >> 16 & 255)); out.append(UInt8(n >> 8 & 255)); out.append(UInt8(n & 255))
            i += 4
        }
        let rest = values.count - i
        if rest == 2 {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12
            if n & 0xFFFF != 0 { return nil }  // non-canonical trailing bits
            out.append(UInt8(n >> 16 & 255))
        } else if rest == 3 {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6
            if n & 0xFF != 0 { return nil }
            out.append(UInt8(n >> 16 & 255)); out.append(UInt8(n >> 8 & 255))
        }
        return out
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)
    public static func encode<C: Collection<UInt8>>(_ data: C) -> String {
        var out = [UInt8]()
        out.reserveCapacity(data.count * 2)
        for b in data { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out = [UInt8](); out.reserveCapacity(u.count / 2)
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var i = 0
        while i < u.count {
            guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo); i += 2
        }
        return out
    }
}
