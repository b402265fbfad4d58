// Every way out of the workspace a client or a kernel might try, and what each operation says.
// Expected: `escape` (symlink, magic link, mount point on the way) or `invalid_path` (lexical),
// and nothing outside the workspace read, created, changed or removed.
import Testing
import Synchronization
@testable import TandemFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FilesSuite {
    @Suite struct EscapeTests {
        static let limit = 1 << 20

        @Test(arguments: ["../x", "a/../../x", "..", "/etc/passwd", "//etc/passwd", "a/..", "./../x"])
        func lexicalEscapesAreInvalid(raw: String) {
            #expect(errorCode { () throws(FileError) in try WorkspacePath(raw) } == .invalidPath)
        }

        /// Every operation on a path whose last step or an earlier one is a symlink.
        func expectAllRefused(_ ws: TempWorkspace, through path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let wp = try WorkspacePath(path)
            let codes: [(String, FileError.Code?)] = [
                ("stat", errorCode { () throws(FileError) in try ws.fs.stat(wp) }),
                ("list", errorCode { () throws(FileError) in try ws.fs.list(wp) }),
                ("read", errorCode { () throws(FileError) in try ws.fs.read(wp, maxBytes: Self.limit) }),
                ("write", errorCode { () throws(FileError) in try ws.fs.write(wp, [1], maxBytes: Self.limit) }),
                ("create", errorCode { () throws(FileError) in try ws.fs.write(wp, [1], createOnly: true, maxBytes: Self.limit) }),
                ("mkdir", errorCode { () throws(FileError) in try ws.fs.mkdir(wp) }),
                ("mkdir -p", errorCode { () throws(FileError) in try ws.fs.mkdir(wp, parents: true) }),
                ("rename from", errorCode { () throws(FileError) in try ws.fs.rename(from: wp, to: WorkspacePath("moved")) }),
                ("delete", errorCode { () throws(FileError) in try ws.fs.delete(wp, recursive: true) }),
            ]
            for (op, code) in codes {
                #expect(code == .escape, "\(op) \(path): \(String(describing: code))", sourceLocation: sourceLocation)
            }
        }

        @Test func symlinkToEtcAtTheTop() throws {
            let ws = try TempWorkspace()
            try ws.symlink("etc", to: "/etc")
            try expectAllRefused(ws, through: "etc/passwd")
            try expectAllRefused(ws, through: "etc/tandem-evil")
            #expect(!TempWorkspace.exists("/etc/tandem-evil"))
            // The link itself is visible as a link, and not a directory to list or a file to read.
            #expect(try ws.fs.stat(p("etc")).kind == .symlink)
            #expect(errorCode { () throws(FileError) in try ws.fs.list(p("etc")) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("etc"), maxBytes: Self.limit) } == .escape)
            #expect(try ws.fs.tree().entries.map(\.path) == ["etc"])
        }

        @Test func symlinkInTheMiddle() throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("a/b")
            try ws.symlink("a/b/c", to: "/etc")
            try expectAllRefused(ws, through: "a/b/c/passwd")
            try expectAllRefused(ws, through: "a/b/c/ssl/x")
            // Even a relative link that stays inside the workspace is not followed.
            try ws.put("a/b/real", "r")
            try ws.symlink("a/inside", to: "b")
            try expectAllRefused(ws, through: "a/inside/real")
            #expect(try ws.fs.read(p("a/b/real"), maxBytes: Self.limit).bytes == Array("r".utf8))
        }

        @Test func symlinkToAFileOutside() throws {
            let ws = try TempWorkspace()
            try ws.symlink("secret", to: ws.outside + "/secret.txt")
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("secret"), maxBytes: Self.limit) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("secret"), Array("pwned".utf8), maxBytes: Self.limit) } == .escape)
            #expect(errorCode { () throws(FileError) in
                try ws.fs.write(p("secret"), [1], expectedSHA256: [UInt8](repeating: 0, count: 32), maxBytes: Self.limit)
            } == .escape)
            #expect(ws.outsideIntact())
            // Deleting the link removes the link, not its target.
            #expect(try ws.fs.delete(p("secret")) == 1)
            #expect(!TempWorkspace.exists(ws.path("secret")))
            #expect(ws.outsideIntact())
        }

        @Test func magicLinks() throws {
            // /proc/self/{root,cwd,exe,fd/N} are magic links; a "workspace" rooted in /proc
            // must not reach through them.
            let proc = try WorkspaceFS(root: "/proc/self")
            for path in ["root/etc/passwd", "cwd/x", "root", "exe", "fd/0", "map_files/x"] {
                let code = errorCode { () throws(FileError) in try proc.read(WorkspacePath(path), maxBytes: Self.limit) }
                #expect(code == .escape || (path == "map_files/x" && code == .notFound), "\(path): \(String(describing: code))")
            }
            #expect(errorCode { () throws(FileError) in try proc.list(WorkspacePath("root")) } == .escape)
            #expect(errorCode { () throws(FileError) in try proc.stat(WorkspacePath("root/etc")) } == .escape)
            // A plain symlink to a magic link inside a real workspace.
            let ws = try TempWorkspace()
            try ws.symlink("procroot", to: "/proc/self/root")
            try expectAllRefused(ws, through: "procroot/etc/passwd")
            try ws.symlink("selffd", to: "/proc/self/fd")
            try expectAllRefused(ws, through: "selffd/0")
        }

        @Test func symlinkLoops() throws {
            let ws = try TempWorkspace()
            try ws.symlink("l1", to: "l2")
            try ws.symlink("l2", to: "l1")
            try ws.symlink("me", to: "me")
            try expectAllRefused(ws, through: "l1/x")
            try expectAllRefused(ws, through: "me/x")
            #expect(errorCode { () throws(FileError) in try ws.fs.read(p("l1"), maxBytes: Self.limit) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.write(p("me"), [1], maxBytes: Self.limit) } == .escape)
            #expect(try ws.fs.tree().entries.map(\.kind) == [.symlink, .symlink, .symlink])
        }

        @Test func danglingSymlinkAsWriteTarget() throws {
            let ws = try TempWorkspace()
            try ws.symlink("dangle", to: ws.outside + "/created.txt")
            try ws.symlink("rel", to: "../outside/created2.txt")
            for name in ["dangle", "rel"] {
                #expect(errorCode { () throws(FileError) in try ws.fs.write(p(name), Array("x".utf8), maxBytes: Self.limit) } == .escape)
                #expect(errorCode { () throws(FileError) in
                    try ws.fs.write(p(name), Array("x".utf8), createOnly: true, maxBytes: Self.limit)
                } == .escape)
                #expect(errorCode { () throws(FileError) in try ws.fs.mkdir(p(name)) } == .exists)
            }
            try ws.put("src", "s")
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("src"), to: p("dangle"), overwrite: true) } == .escape)
            #expect(!TempWorkspace.exists(ws.outside + "/created.txt"))
            #expect(!TempWorkspace.exists(ws.outside + "/created2.txt"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: ws.outside).sorted() == ["dir", "secret.txt"])
        }

        @Test func renameOntoOrThroughASymlink() throws {
            let ws = try TempWorkspace()
            try ws.put("a", "A")
            try ws.symlink("link", to: ws.outside + "/dir")
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("a"), to: p("link"), overwrite: true) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("a"), to: p("link")) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("a"), to: p("link/a")) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.rename(from: p("link/keep.txt"), to: p("stolen")) } == .escape)
            #expect(ws.contents("a") == "A")
            #expect(ws.outsideIntact())
            #expect(!TempWorkspace.exists(ws.outside + "/dir/a"))
            // Moving the link itself is allowed: it moves the link and follows nothing.
            try ws.fs.rename(from: p("link"), to: p("link2"))
            #expect(try ws.fs.stat(p("link2")).kind == .symlink)
            #expect(ws.outsideIntact())
        }

        @Test func recursiveDeleteLeavesSymlinkTargetsAlone() throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("d/sub/deeper")
            try ws.put("d/f", "f")
            try ws.put("d/sub/g", "g")
            try ws.symlink("d/out", to: ws.outside + "/dir")
            try ws.symlink("d/sub/deeper/secret", to: ws.outside + "/secret.txt")
            try ws.symlink("d/sub/rel", to: "../../../outside")
            try ws.symlink("d/etc", to: "/etc")
            #expect(try ws.fs.delete(p("d"), recursive: true) == 9)
            #expect(!TempWorkspace.exists(ws.path("d")))
            #expect(ws.outsideIntact())
            #expect(TempWorkspace.exists("/etc/passwd"))
        }

        static let canMount: Bool = {
            let dir = "/tmp/tandem-ft-mount-probe-\(getpid())"
            mkdir(dir, 0o700)
            defer { rmdir(dir) }
            guard mount("none", dir, "tmpfs", 0, "size=1m") == 0 else { return false }
            umount2(dir, 2)  // MNT_DETACH
            return true
        }()

        @Test(.enabled(if: canMount, "needs CAP_SYS_ADMIN to mount a tmpfs"))
        func mountPointsAreNotCrossed() throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("mnt")
            try ws.mkdirs("d/inner")
            #expect(mount("none", ws.path("mnt"), "tmpfs", 0, "size=1m") == 0)
            defer { umount2(ws.path("mnt"), 2) }
            #expect(mount("none", ws.path("d/inner"), "tmpfs", 0, "size=1m") == 0)
            defer { umount2(ws.path("d/inner"), 2) }
            try TempWorkspace.put(ws.path("mnt/f"), "on tmpfs")
            try TempWorkspace.put(ws.path("d/inner/g"), "on tmpfs")
            try expectAllRefused(ws, through: "mnt/f")
            #expect(errorCode { () throws(FileError) in try ws.fs.list(p("mnt")) } == .escape)
            #expect(errorCode { () throws(FileError) in try ws.fs.delete(p("d"), recursive: true) } == .escape)
            #expect(TempWorkspace.contents(ws.path("mnt/f")) == "on tmpfs")
            #expect(TempWorkspace.contents(ws.path("d/inner/g")) == "on tmpfs")
            // The tree lists the mount point but does not descend into it.
            #expect(try !ws.fs.tree().entries.contains { $0.path.hasPrefix("mnt/") || $0.path.hasPrefix("d/inner/") })
        }

        /// A kernel swaps a directory for a symlink to the outside over and over while the
        /// server deletes the tree recursively: whatever the interleaving, nothing outside goes.
        @Test func recursiveDeleteRacingSymlinkSwaps() throws {
            let ws = try TempWorkspace()
            let stop = Counters()
            let root = ws.root
            let outsideDir = ws.outside + "/dir"
            let racer = Thread {
                var i = 0
                while !stop.done.load(ordering: .relaxed) {
                    let x = root + "/d/x"
                    // Directory with a file → symlink to the outside → back.
                    mkdir(x, 0o755)
                    close(open(x + "/file", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644))
                    unlink(x + "/file")
                    rmdir(x)
                    symlink(outsideDir, x)
                    unlink(x)
                    i += 1
                }
                stop.reads.store(i, ordering: .relaxed)
            }
            var outcomes: [String: Int] = [:]
            racer.start()
            for _ in 0..<300 {
                mkdir(root + "/d", 0o755)
                for j in 0..<5 { close(open(root + "/d/f\(j)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)) }
                let code = errorCode { () throws(FileError) in try ws.fs.delete(WorkspacePath("d"), recursive: true) }
                outcomes[code?.rawValue ?? "ok", default: 0] += 1
                #expect(ws.outsideIntact())
            }
            stop.done.store(true, ordering: .relaxed)
            while !racer.isFinished { usleep(1000) }
            #expect(ws.outsideIntact())
            print("delete race: \(stop.reads.load(ordering: .relaxed)) swaps, outcomes \(outcomes.sorted { $0.key < $1.key })")
        }

        /// A kernel swaps a parent directory for a symlink to the outside while the server
        /// writes into it: no file ever appears outside.
        @Test func writeRacingParentSwaps() throws {
            let ws = try TempWorkspace()
            let stop = Counters()
            let root = ws.root
            let outsideDir = ws.outside + "/dir"
            let racer = Thread {
                while !stop.done.load(ordering: .relaxed) {
                    let d = root + "/p"
                    // A real directory, then a symlink to the outside, alternately.
                    if rename(root + "/p-real", d) != 0 { mkdir(d, 0o755) }
                    usleep(50)
                    rename(d, root + "/p-real")
                    symlink(outsideDir, d)
                    usleep(50)
                    unlink(d)
                }
            }
            racer.start()
            var outcomes: [String: Int] = [:]
            for i in 0..<500 {
                let code = errorCode { () throws(FileError) in
                    try ws.fs.write(WorkspacePath("p/f\(i % 7)"), Array("x".utf8), maxBytes: 10)
                }
                outcomes[code?.rawValue ?? "ok", default: 0] += 1
            }
            stop.done.store(true, ordering: .relaxed)
            while !racer.isFinished { usleep(1000) }
            let outside = try FileManager.default.contentsOfDirectory(atPath: outsideDir)
            #expect(outside == ["keep.txt"])
            #expect(ws.outsideIntact())
            print("write race: outcomes \(outcomes.sorted { $0.key < $1.key }), outside untouched")
        }
    }
}
