// Client-supplied paths inside a workspace, validated and normalized. Pure: no file system.

/// A normalized relative path inside a workspace: UTF-8 components without `/`, NUL, control
/// characters, `.` or `..`. The workspace root is the empty path (no components).
///
/// Validation is lexical only; ``WorkspaceFS`` still resolves every path with `openat2` scoped
/// beneath the root, so a symlink planted by a kernel cannot redirect it.
public struct WorkspacePath: Sendable, Hashable, CustomStringConvertible {
    /// Bound on the whole input in bytes (PATH_MAX).
    public static let maxBytes = 4096
    /// Bound on one component in bytes (NAME_MAX).
    public static let maxComponentBytes = 255
    /// Bound on the number of components after normalization.
    public static let maxComponents = 64

    /// The components, none empty, `.` or `..`.
    public let components: [String]

    /// The workspace root.
    public static let root = WorkspacePath(unchecked: [])

    private init(unchecked components: [String]) { self.components = components }

    /// Validates and normalizes `raw`: `.` and empty components are removed; absolute paths,
    /// `..`, NUL and control characters are refused with `invalid_path`; over-long input or
    /// components with `path_too_long`; more than ``maxComponents`` components with
    /// `path_too_deep`. `""`, `"."` and `"./"` are the root.
    public init(_ raw: String) throws(FileError) {
        components = try Self.parse(Array(raw.utf8))
    }

    /// Like ``init(_:)`` for raw bytes from the wire; refuses invalid UTF-8 with `invalid_path`.
    public init(bytes: some Collection<UInt8>) throws(FileError) {
        let b = Array(bytes)
        guard b.count <= Self.maxBytes else {
            throw FileError(.pathTooLong, "path is longer than \(Self.maxBytes) bytes")
        }
        guard String(validating: b, as: UTF8.self) != nil else {
            throw FileError(.invalidPath, "path is not valid UTF-8")
        }
        components = try Self.parse(b)
    }

    private static func parse(_ bytes: [UInt8]) throws(FileError) -> [String] {
        guard bytes.count <= maxBytes else { throw FileError(.pathTooLong, "path is longer than \(maxBytes) bytes") }
        if bytes.first == UInt8(ascii: "/") { throw FileError(.invalidPath, "path must be relative to the workspace") }
        // Control characters: C0, DEL, and C1 (U+0080…U+009F, encoded C2 80…C2 9F).
        var previous: UInt8 = 0
        for b in bytes {
            if b < 0x20 || b == 0x7F || (previous == 0xC2 && b >= 0x80 && b <= 0x9F) {
                throw FileError(.invalidPath, b == 0 ? "path contains NUL" : "path contains a control character")
            }
            previous = b
        }
        var out: [String] = []
        for part in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.count == 1 && part.first == UInt8(ascii: ".") { continue }
            if part.count == 2 && part.allSatisfy({ $0 == UInt8(ascii: ".") }) {
                throw FileError(.invalidPath, "path must not contain '..'")
            }
            guard part.count <= maxComponentBytes else {
                throw FileError(.pathTooLong, "a path component is longer than \(maxComponentBytes) bytes")
            }
            out.append(String(decoding: part, as: UTF8.self))
            guard out.count <= maxComponents else {
                throw FileError(.pathTooDeep, "path has more than \(maxComponents) components")
            }
        }
        return out
    }

    /// Whether a single directory-entry name is one ``WorkspacePath`` can address (valid UTF-8,
    /// no control characters, not `.`/`..`, within the component bound).
    static func isAddressable(name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty, name.count <= maxComponentBytes else { return false }
        var previous: UInt8 = 0
        for b in name {
            if b < 0x20 || b == 0x7F || b == UInt8(ascii: "/") || (previous == 0xC2 && b >= 0x80 && b <= 0x9F) { return false }
            previous = b
        }
        if name.allSatisfy({ $0 == UInt8(ascii: ".") }) && name.count <= 2 { return false }
        return String(validating: name, as: UTF8.self) != nil
    }

    public var isRoot: Bool { components.isEmpty }

    /// The last component; nil for the root.
    public var name: String? { components.last }

    /// The containing directory; nil for the root.
    public var parent: WorkspacePath? {
        isRoot ? nil : WorkspacePath(unchecked: Array(components.dropLast()))
    }

    /// The normalized form, components joined by `/`; `""` for the root.
    public var string: String { components.joined(separator: "/") }

    public var description: String { string }

    /// This path with one more component; validated like any other input.
    public func appending(_ name: String) throws(FileError) -> WorkspacePath {
        let child = try WorkspacePath(name)
        guard child.components.count == 1, child.components[0] == name else {
            throw FileError(.invalidPath, "not a single path component")
        }
        guard components.count < Self.maxComponents else {
            throw FileError(.pathTooDeep, "path has more than \(Self.maxComponents) components")
        }
        guard string.utf8.count + 1 + name.utf8.count <= Self.maxBytes else {
            throw FileError(.pathTooLong, "path is longer than \(Self.maxBytes) bytes")
        }
        return WorkspacePath(unchecked: components + [name])
    }

    /// Whether `self` is `other` or lies inside it.
    public func isWithin(_ other: WorkspacePath) -> Bool {
        components.count >= other.components.count && Array(components.prefix(other.components.count)) == other.components
    }

    /// Builds a path from components already known to be valid (directory entries that passed
    /// ``isAddressable(name:)``).
    static func trusted(_ components: [String]) -> WorkspacePath { WorkspacePath(unchecked: components) }
}
