// Naming rules for users, workspaces, tokens and free-text fields.

enum Names {
    /// A user name: `[a-z0-9][a-z0-9._-]{0,63}` (ASCII only).
    static func isValidUserName(_ name: String) -> Bool {
        let u = name.utf8
        guard let first = u.first, u.count <= 64, isLowerAlnum(first) else { return false }
        return u.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlnum(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    /// A display-style name (workspace, token, display name): surrounding whitespace is trimmed,
    /// then 1...`maxCharacters` characters without control characters (C0, DEL, C1) or line and
    /// paragraph separators. Returns the trimmed name, or nil.
    static func cleanText(_ text: String, maxCharacters: Int = 100) -> String? {
        let trimmed = trimWhitespace(text)
        guard !trimmed.isEmpty, trimmed.utf8.count <= maxCharacters * 4, trimmed.count <= maxCharacters else { return nil }
        for s in trimmed.unicodeScalars {
            switch s.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: return nil
            default: continue
            }
        }
        return trimmed
    }

    /// `s` without leading and trailing white space (Unicode `White_Space`).
    static func trimWhitespace(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}
