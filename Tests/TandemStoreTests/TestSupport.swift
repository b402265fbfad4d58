// Helpers for the store tests: temporary directories, a controllable clock, raw file bytes.
import Foundation
import Synchronization
import Testing
@testable import TandemStore

/// A fresh directory under /tmp, removed after `body`.
func withTempDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = NSTemporaryDirectory() + "tandem-store-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

/// A clock the test moves by hand (unix seconds).
final class TestClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64 = 1_700_000_000) { value = Mutex(start) }
    var now: Int64 { value.withLock { $0 } }
    func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
    func set(_ t: Int64) { value.withLock { $0 = t } }
}

/// A store in `dir` driven by `clock`.
func makeStore(_ dir: String, clock: TestClock = TestClock()) throws -> TandemStore {
    try TandemStore(path: dir + "/tandem.db", clock: { clock.now })
}

/// Every byte of every file in `dir` (the database, its WAL and shared-memory files).
func rawBytes(of dir: String) throws -> [(name: String, bytes: [UInt8])] {
    try FileManager.default.contentsOfDirectory(atPath: dir).sorted().map { name in
        (name, [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))))
    }
}

/// Whether `needle` occurs in `haystack`.
func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
    let first = needle[0]
    var i = 0
    let last = haystack.count - needle.count
    while i <= last {
        if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
        i += 1
    }
    return false
}

/// Expects `body` to throw a `StoreError` with `code`.
func expectStoreError(
    _ code: StoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(code), nothing thrown", sourceLocation: sourceLocation)
    } catch let e as StoreError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
