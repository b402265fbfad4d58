// Configuration values and the two file formats Tandem reads: a TOML subset and JSON.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A scalar or array value from a config file, the environment or the command line.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case double(Double)
    case bool(Bool)
    case array([ConfigValue])

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Interprets a raw string (from the environment or a flag) by the type of `like`.
    static func parse(_ raw: String, like: ConfigValue) -> ConfigValue? {
        switch like {
        case .string: return .string(raw)
        case .integer: return Int(raw.filter { $0 != "_" }).map { .integer($0) }
        case .double: return Double(raw).map { .double($0) }
        case .bool:
            switch raw.lowercased() {
            case "1", "true", "yes", "on": return .bool(true)
            case "0", "false", "no", "off": return .bool(false)
            default: return nil
            }
        case .array:
            let parts = raw.split(separator: ",").map { String($0).trimmedWS() }.filter { !$0.isEmpty }
            return .array(parts.map { .string($0) })
        }
    }
}

/// Why a configuration could not be read.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parses the subset of TOML v1.0 that Tandem's config uses: `[table]` and `[a.b]` headers,
/// `key = value` and dotted keys, basic and literal strings, integers (with `_`), floats,
/// booleans, arrays (also over several lines) of those, and `#` comments. Returns flat dotted keys.
public enum TOMLSubset {
    public static func parse(_ text: String) throws(ConfigError) -> [String: ConfigValue] {
        var result: [String: ConfigValue] = [:]
        var table = ""
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        var lineNo = 0
        while let rawLine = lines.popFirst() {
            lineNo += 1
            var line = stripComment(rawLine).trimmedWS()
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else { throw ConfigError("line \(lineNo): unsupported table header \(line)") }
                table = String(line.dropFirst().dropLast()).trimmedWS()
                guard !table.isEmpty, table.split(separator: ".").allSatisfy({ isBareKey($0) }) else {
                    throw ConfigError("line \(lineNo): invalid table name")
                }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("line \(lineNo): expected key = value") }
            let key = line[..<eq].trimmedWS()
            guard !key.isEmpty, key.split(separator: ".").allSatisfy({ isBareKey($0.trimmedWS()[...]) }) else {
                throw ConfigError("line \(lineNo): invalid key \(key)")
            }
            var valueText = line[line.index(after: eq)...].trimmedWS()
            // Multi-line arrays: keep reading until brackets balance.
            while valueText.hasPrefix("[") && bracketDepth(valueText) > 0, let next = lines.popFirst() {
                lineNo += 1
                valueText += " " + stripComment(next).trimmedWS()
            }
            line = valueText
            var cursor = line[...]
            let value = try parseValue(&cursor, line: lineNo)
            guard cursor.trimmedWS().isEmpty else { throw ConfigError("line \(lineNo): unexpected text after value") }
            let full = (table.isEmpty ? "" : table + ".") + key.split(separator: ".").map { $0.trimmedWS() }.joined(separator: ".")
            guard result[full] == nil else { throw ConfigError("line \(lineNo): duplicate key \(full)") }
            result[full] = value
        }
        return result
    }

    private static func isBareKey(_ s: Substring) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    private static func stripComment(_ s: String) -> String {
        var inBasic = false, inLiteral = false, escaped = false
        for (i, c) in zip(s.indices, s) {
            if escaped { escaped = false; continue }
            if inBasic {
                if c == "\\" { escaped = true } else if c == "\"" { inBasic = false }
            } else if inLiteral {
                if c == "'" { inLiteral = false }
            } else if c == "\"" { inBasic = true } else if c == "'" { inLiteral = true } else if c == "#" { return String(s[..<i]) }
        }
        return s
    }

    private static func bracketDepth(_ s: String) -> Int {
        var depth = 0, inStr = false
        for c in s {
            if c == "\"" || c == "'" { inStr.toggle() }
            if !inStr { if c == "[" { depth += 1 } else if c == "]" { depth -= 1 } }
        }
        return depth
    }

    private static func parseValue(_ s: inout Substring, line: Int) throws(ConfigError) -> ConfigValue {
        s = s.drop { $0 == " " || $0 == "\t" }
        guard let first = s.first else { throw ConfigError("line \(line): missing value") }
        if first == "\"" {
            s = s.dropFirst()
            var out = ""
            while let c = s.popFirst() {
                if c == "\"" { return .string(out) }
                if c == "\\" {
                    guard let e = s.popFirst() else { break }
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    case "\\": out.append("\\")
                    case "\"": out.append("\"")
                    default: throw ConfigError("line \(line): unsupported escape \\\(e)")
                    }
                } else {
                    out.append(c)
                }
            }
            throw ConfigError("line \(line): unterminated string")
        }
        if first == "'" {
            s = s.dropFirst()
            guard let end = s.firstIndex(of: "'") else { throw ConfigError("line \(line): unterminated string") }
            let v = String(s[..<end])
            s = s[s.index(after: end)...]
            return .string(v)
        }
        if first == "[" {
            s = s.dropFirst()
            var items: [ConfigValue] = []
            while true {
                s = s.drop { $0 == " " || $0 == "\t" || $0 == "," }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                if s.isEmpty { throw ConfigError("line \(line): unterminated array") }
                items.append(try parseValue(&s, line: line))
                s = s.drop { $0 == " " || $0 == "\t" }
                if let c = s.first, c != "," && c != "]" { throw ConfigError("line \(line): expected , or ] in array") }
            }
        }
        let token = s.prefix { $0 != "," && $0 != "]" && $0 != " " && $0 != "\t" }
        s = s[token.endIndex...]
        let t = String(token)
        if t == "true" { return .bool(true) }
        if t == "false" { return .bool(false) }
        let digits = t.filter { $0 != "_" }
        if let i = Int(digits) { return .integer(i) }
        if let d = Double(digits) { return .double(d) }
        throw ConfigError("line \(line): invalid value \(t)")
    }
}

/// JSON config files: nested objects flattened to dotted keys.
public enum JSONConfig {
    private enum Node: Decodable {
        case object([String: Node])
        case value(ConfigValue)

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .value(.bool(b)); return }
            if let i = try? c.decode(Int.self) { self = .value(.integer(i)); return }
            if let d = try? c.decode(Double.self) { self = .value(.double(d)); return }
            if let s = try? c.decode(String.self) { self = .value(.string(s)); return }
            if let a = try? c.decode([Node].self) {
                var items: [ConfigValue] = []
                for n in a {
                    guard case .value(let v) = n else { throw ConfigError("nested objects in arrays are not supported") }
                    items.append(v)
                }
                self = .value(.array(items))
                return
            }
            self = .object(try c.decode([String: Node].self))
        }
    }

    public static func parse(_ data: [UInt8]) throws(ConfigError) -> [String: ConfigValue] {
        let node: Node
        do {
            node = try JSONDecoder().decode(Node.self, from: Data(data))
        } catch {
            throw ConfigError("invalid JSON: \(error)")
        }
        guard case .object(let root) = node else { throw ConfigError("the JSON config must be an object") }
        var out: [String: ConfigValue] = [:]
        func flatten(_ prefix: String, _ obj: [String: Node]) {
            for (k, v) in obj {
                let key = prefix.isEmpty ? k : prefix + "." + k
                switch v {
                case .object(let o): flatten(key, o)
                case .value(let x): out[key] = x
                }
            }
        }
        flatten("", root)
        return out
    }
}

extension StringProtocol {
    /// Trims spaces and tabs at both ends.
    func trimmedWS() -> String {
        var sub = self[...]
        while let f = sub.first, f == " " || f == "\t" || f == "\r" { sub = sub.dropFirst() }
        while let l = sub.last, l == " " || l == "\t" || l == "\r" { sub = sub.dropLast() }
        return String(sub)
    }
}
