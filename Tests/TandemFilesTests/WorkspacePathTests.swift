// WorkspacePath: validation and normalization table. Pure.
import Testing
@testable import TandemFiles

extension FilesSuite {
    @Suite struct WorkspacePathTests {
        static let valid: [(String, String)] = [
            ("", ""),
            (".", ""),
            ("./", ""),
            ("a", "a"),
            ("a/b/c.txt", "a/b/c.txt"),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/.b", "a/.b"),
            ("...", "..."),
            ("..a/b..", "..a/b.."),
            ("ünïcödé/日本語.txt", "ünïcödé/日本語.txt"),
            ("with space/tab-less", "with space/tab-less"),
            ("a\\b", "a\\b"),
            (String(repeating: "x", count: 255), String(repeating: "x", count: 255)),
        ]

        @Test(arguments: valid)
        func normalizes(input: String, expected: String) throws {
            let path = try WorkspacePath(input)
            #expect(path.string == expected)
            #expect(path.isRoot == expected.isEmpty)
        }

        static let invalid: [(String, FileError.Code)] = [
            ("/etc/passwd", .invalidPath),
            ("/", .invalidPath),
            ("//", .invalidPath),
            ("..", .invalidPath),
            ("../x", .invalidPath),
            ("a/../../x", .invalidPath),
            ("a/..", .invalidPath),
            ("a/../b", .invalidPath),
            ("a\u{0}b", .invalidPath),
            ("a\nb", .invalidPath),
            ("a\tb", .invalidPath),
            ("\u{7F}", .invalidPath),
            ("a\u{85}b", .invalidPath),
            ("a\u{9F}", .invalidPath),
            (String(repeating: "x", count: 256), .pathTooLong),
            ("a/" + String(repeating: "x", count: 256), .pathTooLong),
            (String(repeating: "abcdefg/", count: 513), .pathTooLong),
            (Array(repeating: "d", count: 65).joined(separator: "/"), .pathTooDeep),
        ]

        @Test(arguments: invalid)
        func refuses(input: String, code: FileError.Code) {
            #expect(errorCode { () throws(FileError) in try WorkspacePath(input) } == code)
        }

        @Test func limitsAreInclusive() throws {
            #expect(try WorkspacePath(Array(repeating: "d", count: 64).joined(separator: "/")).components.count == 64)
            let long = Array(repeating: String(repeating: "x", count: 255), count: 16).joined(separator: "/")
            #expect(long.utf8.count == 4095)
            #expect(try WorkspacePath(long).components.count == 16)
            // Dot components count against the input length even though they disappear.
            #expect(errorCode { () throws(FileError) in try WorkspacePath(String(repeating: "./", count: 2049)) } == .pathTooLong)
        }

        @Test func rawBytesMustBeUTF8() throws {
            #expect(errorCode { () throws(FileError) in try WorkspacePath(bytes: [0x61, 0xFF, 0x62]) } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try WorkspacePath(bytes: [0xC0, 0xAF]) } == .invalidPath)  // overlong "/"
            #expect(errorCode { () throws(FileError) in try WorkspacePath(bytes: [0xED, 0xA0, 0x80]) } == .invalidPath)  // surrogate
            #expect(try WorkspacePath(bytes: Array("a/b".utf8)).string == "a/b")
        }

        @Test func parentNameAppending() throws {
            let path = try WorkspacePath("a/b/c")
            #expect(path.name == "c")
            #expect(path.parent?.string == "a/b")
            #expect(WorkspacePath.root.parent == nil)
            #expect(WorkspacePath.root.name == nil)
            #expect(try path.appending("d").string == "a/b/c/d")
            #expect(errorCode { () throws(FileError) in try path.appending("x/y") } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try path.appending("..") } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try path.appending(".") } == .invalidPath)
            #expect(try WorkspacePath("a/b").isWithin(WorkspacePath("a")))
            #expect(try !WorkspacePath("ab").isWithin(WorkspacePath("a")))
            #expect(try WorkspacePath("a").isWithin(.root))
        }
    }
}
