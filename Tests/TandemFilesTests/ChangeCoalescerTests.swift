// The watcher's merge rules, without inotify.
import Testing
@testable import TandemFiles

extension FilesSuite {
    @Suite struct ChangeCoalescerTests {
        func run(_ changes: [FileChange]) -> [FileChange] {
            var c = ChangeCoalescer()
            for x in changes { c.add(x) }
            return c.take()
        }

        @Test func repeatedModificationsMerge() {
            let m = FileChange(path: "a", kind: .modified)
            #expect(run(Array(repeating: m, count: 100)) == [m])
            #expect(run([FileChange(path: "a", kind: .created), m, m]) == [FileChange(path: "a", kind: .created)])
        }

        @Test func createdThenDeletedVanishes() {
            #expect(run([FileChange(path: "a", kind: .created), FileChange(path: "a", kind: .modified),
                         FileChange(path: "a", kind: .deleted)]).isEmpty)
        }

        @Test func modifiedThenDeletedIsDeleted() {
            #expect(run([FileChange(path: "a", kind: .modified), FileChange(path: "b", kind: .created),
                         FileChange(path: "a", kind: .deleted)])
                    == [FileChange(path: "a", kind: .deleted), FileChange(path: "b", kind: .created)])
        }

        @Test func deletedThenCreatedIsModified() {
            #expect(run([FileChange(path: "a", kind: .deleted), FileChange(path: "a", kind: .created)])
                    == [FileChange(path: "a", kind: .modified)])
            // A file replaced by a directory stays two changes.
            #expect(run([FileChange(path: "a", kind: .deleted), FileChange(path: "a", kind: .created, isDirectory: true)]).count == 2)
        }

        @Test func renamesAreNotMergedAcross() {
            let out = run([
                FileChange(path: "a", kind: .modified),
                FileChange(path: "b", kind: .renamed(from: "a")),
                FileChange(path: "a", kind: .created),
                FileChange(path: "b", kind: .modified),
            ])
            #expect(out == [
                FileChange(path: "a", kind: .modified),
                FileChange(path: "b", kind: .renamed(from: "a")),
                FileChange(path: "a", kind: .created),
                FileChange(path: "b", kind: .modified),
            ])
        }

        @Test func overflowOnceAndTakeEmpties() {
            var c = ChangeCoalescer()
            c.add(FileChange(path: "", kind: .overflow, isDirectory: true))
            c.add(FileChange(path: "", kind: .overflow, isDirectory: true))
            c.add(FileChange(path: "d", kind: .unwatched, isDirectory: true))
            c.add(FileChange(path: "d", kind: .unwatched, isDirectory: true))
            #expect(!c.isEmpty)
            #expect(c.take().count == 2)
            #expect(c.isEmpty)
            #expect(c.take().isEmpty)
        }
    }
}
