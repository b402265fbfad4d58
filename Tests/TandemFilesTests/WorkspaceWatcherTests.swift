// WorkspaceWatcher on a real loop and real directories: what is reported, how fast, and what
// is merged or ignored. Changes are made with plain POSIX calls, as a kernel would.
import Testing
import TandemLoop
@testable import TandemFiles
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FilesSuite {
    @Suite struct WorkspaceWatcherTests {
        /// Latency budget from the change to the handler.
        static let budgetNanos: UInt64 = 100_000_000

        func expectWithinBudget(_ arrived: UInt64?, since start: UInt64, _ what: String,
                                sourceLocation: SourceLocation = #_sourceLocation) -> UInt64 {
            guard let arrived else {
                Issue.record("\(what): not reported", sourceLocation: sourceLocation)
                return 0
            }
            let latency = arrived > start ? arrived - start : 0
            #expect(latency < Self.budgetNanos, "\(what): \(latency / 1_000_000) ms", sourceLocation: sourceLocation)
            return latency
        }

        @Test func reportsEachKindWithinBudget() async throws {
            let ws = try TempWorkspace()
            try ws.put("existing.txt", "old")
            let w = try await WatchFixture(ws: ws)
            var latencies: [(String, UInt64)] = []

            var t = monotonicNanos()
            try ws.put("new.txt", "hello")
            latencies.append(("create", expectWithinBudget(await w.log.wait(FileChange(path: "new.txt", kind: .created)), since: t, "create")))

            t = monotonicNanos()
            try ws.put("existing.txt", "new content")
            latencies.append(("modify", expectWithinBudget(await w.log.wait(FileChange(path: "existing.txt", kind: .modified)), since: t, "modify")))

            t = monotonicNanos()
            #expect(rename(ws.path("new.txt"), ws.path("renamed.txt")) == 0)
            latencies.append(("rename", expectWithinBudget(
                await w.log.wait(FileChange(path: "renamed.txt", kind: .renamed(from: "new.txt"))), since: t, "rename")))

            t = monotonicNanos()
            #expect(unlink(ws.path("renamed.txt")) == 0)
            latencies.append(("delete", expectWithinBudget(await w.log.wait(FileChange(path: "renamed.txt", kind: .deleted)), since: t, "delete")))

            // mkdir and at once a file inside: the file may be created before the watch on the
            // new directory exists; the scan after adding the watch finds it.
            t = monotonicNanos()
            #expect(mkdir(ws.path("dir"), 0o755) == 0)
            try ws.put("dir/inside.txt", "x")
            let dirAt = await w.log.wait(FileChange(path: "dir", kind: .created, isDirectory: true))
            latencies.append(("mkdir", expectWithinBudget(dirAt, since: t, "mkdir")))
            latencies.append(("file in new dir", expectWithinBudget(
                await w.log.wait(FileChange(path: "dir/inside.txt", kind: .created)), since: t, "file in new dir")))

            // Deeper: mkdir -p and a file at the bottom.
            t = monotonicNanos()
            try ws.mkdirs("x/y/z")
            try ws.put("x/y/z/deep.txt", "d")
            latencies.append(("mkdir -p + file", expectWithinBudget(
                await w.log.wait(FileChange(path: "x/y/z/deep.txt", kind: .created)), since: t, "mkdir -p + file")))
            // And a later change in the new directory goes through its own watch.
            t = monotonicNanos()
            try ws.put("x/y/z/later.txt", "l")
            latencies.append(("file in watched new dir", expectWithinBudget(
                await w.log.wait(FileChange(path: "x/y/z/later.txt", kind: .created)), since: t, "later")))

            print("watcher latencies (ms): " + latencies.map { "\($0.0) \($0.1 / 1_000_000).\($0.1 / 100_000 % 10)" }.joined(separator: ", "))
            await w.close()
        }

        @Test func chunkedWriteIsOneModification() async throws {
            let ws = try TempWorkspace()
            try ws.put("big.bin", "")
            let w = try await WatchFixture(ws: ws)
            let fd = open(ws.path("big.bin"), O_WRONLY | O_TRUNC | O_CLOEXEC)
            #expect(fd >= 0)
            let chunk = [UInt8](repeating: 42, count: 4096)
            for _ in 0..<256 { _ = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
            close(fd)
            #expect(await w.log.wait(FileChange(path: "big.bin", kind: .modified)) != nil)
            try await Task.sleep(for: .milliseconds(150))
            #expect(w.log.changes == [FileChange(path: "big.bin", kind: .modified)])
            await w.close()
        }

        @Test func writeTempFilesAreInvisible() async throws {
            let ws = try TempWorkspace()
            let w = try await WatchFixture(ws: ws)
            let h = try ws.fs.write(p("doc.txt"), Array("v1".utf8), maxBytes: 100)
            #expect(await w.log.wait(FileChange(path: "doc.txt", kind: .modified)) != nil)
            try await Task.sleep(for: .milliseconds(80))
            #expect(w.log.changes == [FileChange(path: "doc.txt", kind: .modified)])
            // The compare-and-swap path (RENAME_EXCHANGE) reports the same way.
            w.log.reset()
            try ws.fs.write(p("doc.txt"), Array("v2".utf8), expectedSHA256: h, maxBytes: 100)
            #expect(await w.log.wait(FileChange(path: "doc.txt", kind: .modified)) != nil)
            try await Task.sleep(for: .milliseconds(80))
            #expect(w.log.changes == [FileChange(path: "doc.txt", kind: .modified)])
            #expect(!w.log.changes.contains { $0.path.contains(".tandem-tmp-") })
            await w.close()
        }

        @Test func renamedDirectoryKeepsReporting() async throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("old/sub")
            let w = try await WatchFixture(ws: ws)
            #expect(rename(ws.path("old"), ws.path("new")) == 0)
            #expect(await w.log.wait(FileChange(path: "new", kind: .renamed(from: "old"), isDirectory: true)) != nil)
            try ws.put("new/sub/f", "f")
            #expect(await w.log.wait(FileChange(path: "new/sub/f", kind: .created)) != nil)
            #expect(!w.log.changes.contains { $0.path.hasPrefix("old/") })
            await w.close()
        }

        @Test func movesInAndOutOfTheTree() async throws {
            let ws = try TempWorkspace()
            let w = try await WatchFixture(ws: ws)
            try ws.put("leaving", "l")
            #expect(await w.log.wait(FileChange(path: "leaving", kind: .created)) != nil)
            #expect(rename(ws.path("leaving"), ws.outside + "/left") == 0)
            #expect(await w.log.wait(FileChange(path: "leaving", kind: .deleted)) != nil)
            #expect(rename(ws.outside + "/dir", ws.path("arrived")) == 0)
            #expect(await w.log.wait(FileChange(path: "arrived", kind: .created, isDirectory: true)) != nil)
            #expect(await w.log.wait(FileChange(path: "arrived/keep.txt", kind: .created)) != nil)
            await w.close()
        }

        @Test func symlinkedDirectoriesAreNotWatched() async throws {
            let ws = try TempWorkspace()
            try ws.symlink("out", to: ws.outside + "/dir")
            let w = try await WatchFixture(ws: ws)
            try TempWorkspace.put(ws.outside + "/dir/new.txt", "n")
            try ws.put("marker", "m")
            #expect(await w.log.wait(FileChange(path: "marker", kind: .created)) != nil)
            try await Task.sleep(for: .milliseconds(50))
            #expect(!w.log.changes.contains { $0.path.hasPrefix("out/") })
            #expect(await w.onLoop { $0.watchCount } == 1)
            await w.close()
        }

        @Test func watchBoundIsReported() async throws {
            let ws = try TempWorkspace()
            try ws.mkdirs("a")
            try ws.mkdirs("b")
            try ws.mkdirs("c")
            let w = try await WatchFixture(ws: ws, maxWatches: 3)
            #expect(await w.log.wait { $0.kind == .unwatched } != nil)
            #expect(await w.onLoop { $0.limitReached })
            #expect(await w.onLoop { $0.watchCount } == 3)
            await w.close()
        }
    }
}
