// WorkspaceFS on real temporary directories: the operations, their errors, atomicity and
// ownership. Escape attempts are in EscapeTests.swift.
import Testing
import Synchronization
import TandemCrypto
@testable import TandemFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FilesSuite {
    @Suite struct WorkspaceFSTests {
        @Test func statListAndTree() throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("src/deep")
            try ws.put("src/b.txt", "bbb")
            try ws.put("src/a.txt", "a")
            try ws.put("src/deep/z", "")
            try ws.put("top", "t")
            try ws.symlink("src/link", to: "/etc")
            try ws.put("src/.tandem-tmp-0123", "partial")
            // A name no WorkspacePath can address (not UTF-8) is left out.
            let rawName: [CChar] = Array(ws.path("src/").utf8CString.dropLast()) + [CChar(bitPattern: 0xFF), 0]
            let fd = open(rawName, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            close(fd)

            let root = try ws.fs.stat(.root)
            #expect(root.kind == .directory && root.path == "")
            let file = try ws.fs.stat(p("src/b.txt"))
            #expect(file.kind == .file && file.size == 3 && file.name == "b.txt" && file.path == "src/b.txt")
            #expect(file.mtimeNanos > 1_600_000_000 * 1_000_000_000)
            let link = try ws.fs.stat(p("src/link"))
            #expect(link.kind == .symlink)

            let list = try ws.fs.list(p("src"))
            #expect(list.map(\.name) == ["a.txt", "b.txt", "deep", "link"])
            #expect(list.map(\.kind) == [.file, .file, .directory, .symlink])
            #expect(list[0].path == "src/a.txt")

            let tree = try ws.fs.tree()
            #expect(tree.entries.map(\.path) == ["src", "src/a.txt", "src/b.txt", "src/deep", "src/deep/z", "src/link", "top"])
            #expect(!tree.truncated)
            let small = try ws.fs.tree(maxEntries: 3)
            #expect(small.entries.count == 3 && small.truncated)
            let shallow = try ws.fs.tree(maxDepth: 1)
            #expect(shallow.entries.map(\.path) == ["src", "top"] && shallow.truncated)

            #expect(errorCode { () throws(FileError) in try ws.fs.list(p("top")) } == .notADirectory)
            #expect(errorCode { () throws(FileError) in try ws.fs.list(p("nope")) } == .notFound)
            #expect(errorCode { () throws(FileError) in try ws.fs.stat(p("top/x")) } == .notADirectory)
            #expect(errorCode { () throws(FileError) in try ws.fs.list(p("src"), maxEntries: 2) } == .tooManyEntries)
        }

        @Test func readWriteRoundTripAndHashes() throws {
            let ws = try TempWorkspace()
            let bytes = Array("hello\n".utf8)
            let h = try ws.fs.write(p("hello.txt"), bytes, maxBytes: 100)
            #expect(h == Digest.sha256(bytes))
            #expect(ws.contents("hello.txt") == "hello\n")
            let read = try ws.fs.read(p("hello.txt"), maxBytes: 100)
            #expect(read.bytes == bytes && read.sha256 == h && read.entry.size == 6)
            // Empty files work.
            try ws.fs.write(p("empty"), [], maxBytes: 0)
            #expect(try ws.fs.read(p("empty"), maxBytes: 0).bytes == [])
            // No temp file is left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.root).sorted() == ["empty", "hello.txt"])
            // Missing parent, root as a file, directory as a file.
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("no/such/dir.txt"), bytes, maxBytes: 100) } == .notFound)
            #expect(errorCode { () throws(FileError) in try ws.fs.write(.root, bytes, maxBytes: 100) } == .invalidPath)
            try ws.mkdirs("dir")
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("dir"), bytes, maxBytes: 100) } == .isADirectory)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("dir"), maxBytes: 100) } == .isADirectory)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("missing"), maxBytes: 100) } == .notFound)
        }

        @Test func sizeLimits() throws {
            let ws = try TempWorkspace()
            let ten = [UInt8](repeating: 7, count: 10)
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("f"), ten, maxBytes: 9) } == .fileTooLarge)
            #expect(!TempWorkspace.exists(ws.path("f")))
            try ws.fs.write(p("f"), ten, maxBytes: 10)
            #expect(try ws.fs.read(p("f"), maxBytes: 10).bytes == ten)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("f"), maxBytes: 9) } == .fileTooLarge)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("f"), maxBytes: 0) } == .fileTooLarge)
        }

        @Test func specialFilesAreNotOpened() throws {
            let ws = try TempWorkspace()
            // Opening a FIFO for reading would block; the O_PATH check refuses it first.
            #expect(mkfifo(ws.path("fifo"), 0o644) == 0)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("fifo"), maxBytes: 100) } == .notAFile)
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("fifo"), [1], maxBytes: 100) } == .notAFile)
            #expect(try ws.fs.stat(p("fifo")).kind == .other)
        }

        @Test func expectedHashConflicts() throws {
            let ws = try TempWorkspace()
            let v1 = try ws.fs.write(p("doc"), Array("one".utf8), maxBytes: 100)
            let v2 = try ws.fs.write(p("doc"), Array("two".utf8), expectedSHA256: v1, maxBytes: 100)
            #expect(ws.contents("doc") == "two")
            // A stale base hash: refused, content unchanged.
            #expect(errorCode { () throws(FileError) in
                try ws.fs.write(p("doc"), Array("three".utf8), expectedSHA256: v1, maxBytes: 100)
            } == .conflict)
            #expect(ws.contents("doc") == "two")
            // Someone else (a kernel) changes the file behind our back.
            try ws.put("doc", "kernel")
            #expect(errorCode { () throws(FileError) in
                try ws.fs.write(p("doc"), Array("mine".utf8), expectedSHA256: v2, maxBytes: 100)
            } == .conflict)
            #expect(ws.contents("doc") == "kernel")
            // A base hash for a file that is gone.
            #expect(errorCode { () throws(FileError) in
                try ws.fs.write(p("gone"), Array("x".utf8), expectedSHA256: v2, maxBytes: 100)
            } == .conflict)
            #expect(!TempWorkspace.exists(ws.path("gone")))
            // The right base hash after the kernel's change works, and leaves no temp file.
            let current = try ws.fs.read(p("doc"), maxBytes: 100).sha256
            try ws.fs.write(p("doc"), Array("mine".utf8), expectedSHA256: current, maxBytes: 100)
            #expect(ws.contents("doc") == "mine")
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.root) == ["doc"])
        }

        /// Two threads increment a counter file with read → write(expectedSHA256:), retrying on
        /// `conflict`. If the compare-and-swap ever let a stale write through, an increment
        /// would be lost and the final count would be short.
        @Test func compareAndSwapLosesNoUpdate() throws {
            let ws = try TempWorkspace()
            try ws.fs.write(p("counter"), Array("0".utf8), maxBytes: 100)
            let fs = ws.fs
            let c = Counters()
            let perThread = 150
            let worker = { @Sendable in
                var done = 0
                while done < perThread {
                    guard let current = try? fs.read(WorkspacePath("counter"), maxBytes: 100),
                          let value = Int(String(decoding: current.bytes, as: UTF8.self)) else {
                        c.torn.add(1, ordering: .relaxed)
                        continue
                    }
                    let code = errorCode { () throws(FileError) in
                        try fs.write(WorkspacePath("counter"), Array("\(value + 1)".utf8), expectedSHA256: current.sha256, maxBytes: 100)
                    }
                    if code == nil {
                        done += 1
                    } else if code == .conflict {
                        c.reads.add(1, ordering: .relaxed)  // conflicts
                    } else {
                        c.torn.add(1, ordering: .relaxed)
                        return
                    }
                }
            }
            let other = Thread(block: worker)
            other.start()
            worker()
            while !other.isFinished { usleep(1000) }
            #expect(ws.contents("counter") == "\(2 * perThread)")
            #expect(c.torn.load(ordering: .relaxed) == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.root) == ["counter"])
            print("compare-and-swap: \(2 * perThread) increments, \(c.reads.load(ordering: .relaxed)) conflicts retried")
        }

        @Test func createOnly() throws {
            let ws = try TempWorkspace()
            try ws.fs.write(p("new"), Array("1".utf8), createOnly: true, maxBytes: 100)
            #expect(errorCode { () throws(FileError) in
                try ws.fs.write(p("new"), Array("2".utf8), createOnly: true, maxBytes: 100)
            } == .exists)
            #expect(ws.contents("new") == "1")
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.root) == ["new"])
        }

        @Test func ownerAndModes() throws {
            let ws = try TempWorkspace(owner: (uid: 101000, gid: 101000))
            try ws.fs.write(p("f"), Array("x".utf8), maxBytes: 10)
            let f = try #require(ws.lstatOf("f"))
            #expect(f.st_uid == 101000 && f.st_gid == 101000)
            #expect(f.st_mode & 0o7777 == 0o644)
            try ws.fs.mkdir(p("d"))
            try ws.fs.mkdir(p("p/q/r"), parents: true)
            for d in ["d", "p", "p/q", "p/q/r"] {
                let st = try #require(ws.lstatOf(d))
                #expect(st.st_uid == 101000 && st.st_mode & 0o7777 == 0o755, "\(d)")
            }
            // A replaced file keeps its mode (minus setuid) and its owner.
            try ws.put("script.sh", "#!/bin/sh\n")
            #expect(chmod(ws.path("script.sh"), 0o4755) == 0)
            #expect(chown(ws.path("script.sh"), 4242, 4343) == 0)
            try ws.fs.write(p("script.sh"), Array("#!/bin/sh\necho\n".utf8), maxBytes: 100)
            let s = try #require(ws.lstatOf("script.sh"))
            #expect(s.st_mode & 0o7777 == 0o755)
            #expect(s.st_uid == 4242 && s.st_gid == 4343)
        }

        @Test func mkdirCases() throws {
            let ws = try TempWorkspace()
            try ws.fs.mkdir(p("a"))
            #expect(errorCode { () throws(FileError) in try ws.fs.mkdir(p("a")) } == .exists)
            try ws.fs.mkdir(p("a"), parents: true)
            try ws.fs.mkdir(.root, parents: true)
            #expect(errorCode { () throws(FileError) in try ws.fs.mkdir(p("x/y")) } == .notFound)
            try ws.put("file", "")
            #expect(errorCode { () throws(FileError) in try ws.fs.mkdir(p("file/y"), parents: true) } == .notADirectory)
            #expect(errorCode { () throws(FileError) in try ws.fs.mkdir(p("file"), parents: true) } == .notADirectory)
        }

        @Test func renameCases() throws {
            let ws = try TempWorkspace()
            try ws.put("a", "A")
            try ws.put("b", "B")
            try ws.mkdirs("d/e")
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("a"), to: p("b")) } == .exists)
            #expect(ws.contents("b") == "B")
            try ws.fs.rename(from: p("a"), to: p("b"), overwrite: true)
            #expect(ws.contents("b") == "A" && !TempWorkspace.exists(ws.path("a")))
            try ws.fs.rename(from: p("b"), to: p("d/e/b"))
            #expect(ws.contents("d/e/b") == "A")
            try ws.fs.rename(from: p("d"), to: p("d2"))
            #expect(ws.contents("d2/e/b") == "A")
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("d2"), to: p("d2/e/x")) } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("missing"), to: p("x")) } == .notFound)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: .root, to: p("x")) } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("d2"), to: .root) } == .invalidPath)
            try ws.mkdirs("full/x")
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("d2"), to: p("full"), overwrite: true) } == .notEmpty)
        }

        @Test func deleteCases() throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("d/e/f")
            try ws.put("d/e/f/x", "x")
            try ws.put("d/y", "y")
            try ws.put("z", "z")
            #expect(errorCode { () throws(FileError) in try ws.fs.delete(p("d")) } == .notEmpty)
            #expect(try ws.fs.delete(p("z")) == 1)
            #expect(errorCode { () throws(FileError) in try ws.fs.delete(p("z")) } == .notFound)
            #expect(errorCode { () throws(FileError) in try ws.fs.delete(.root, recursive: true) } == .invalidPath)
            #expect(errorCode { () throws(FileError) in try ws.fs.delete(p("d"), recursive: true, maxEntries: 2) } == .tooManyEntries)
            try ws.mkdirs("d/e/f")
            try ws.put("d/e/f/x", "x")
            try ws.put("d/y", "y")
            #expect(try ws.fs.delete(p("d"), recursive: true) == 5)
            #expect(!TempWorkspace.exists(ws.path("d")))
            try ws.mkdirs("empty")
            #expect(try ws.fs.delete(p("empty")) == 1)
        }

        /// Readers never see a partial file: a second thread reads in a loop (through
        /// WorkspaceFS and through plain open/read) while the file is rewritten with
        /// alternating contents of different sizes.
        @Test func writesAreAtomicForReaders() throws {
            let ws = try TempWorkspace()
            let a = [UInt8](repeating: UInt8(ascii: "a"), count: 200_000)
            let b = [UInt8](repeating: UInt8(ascii: "b"), count: 300_000)
            try ws.fs.write(p("f"), a, maxBytes: 1 << 20)
            let c = Counters()
            let fs = ws.fs
            let path = ws.path("f")
            let reader = Thread {
                while !c.done.load(ordering: .relaxed) {
                    if let got = try? fs.read(WorkspacePath("f"), maxBytes: 1 << 20) {
                        if got.bytes != a && got.bytes != b { c.torn.add(1, ordering: .relaxed) }
                    } else {
                        c.torn.add(1, ordering: .relaxed)
                    }
                    if let d = FileManager.default.contents(atPath: path) {
                        let bytes = [UInt8](d)
                        if bytes != a && bytes != b { c.torn.add(1, ordering: .relaxed) }
                    }
                    c.reads.add(1, ordering: .relaxed)
                }
            }
            reader.start()
            for i in 0..<200 {
                try ws.fs.write(p("f"), i % 2 == 0 ? b : a, maxBytes: 1 << 20)
            }
            let during = c.reads.load(ordering: .relaxed)
            while c.reads.load(ordering: .relaxed) < 50 { usleep(1000) }
            c.done.store(true, ordering: .relaxed)
            while !reader.isFinished { usleep(1000) }
            #expect(c.torn.load(ordering: .relaxed) == 0)
            #expect(during > 0)
            print("atomic write: \(during) reads during 200 writes, \(c.torn.load(ordering: .relaxed)) torn")
        }
    }
}
