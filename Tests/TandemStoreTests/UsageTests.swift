import Testing
@testable import TandemStore

@Suite struct UsageTests {
    @Test func accumulatesPerDay() throws {
        try withTempDirectory { dir in
            let clock = TestClock(1_709_164_800 + 3600)  // 2024-02-29 01:00 UTC
            let store = try makeStore(dir, clock: clock)
            let u = try store.createUser(name: "u")
            let v = try store.createUser(name: "v")
            try store.recordUsage(user: u.id, executions: 1, cpuMs: 250)
            try store.recordUsage(user: u.id, executions: 2, cpuMs: 1000)
            try store.recordUsage(user: v.id, cpuMs: 5)
            clock.advance(23 * 3600)  // 2024-03-01 00:00
            try store.recordUsage(user: u.id, executions: 1, cpuMs: 10)

            #expect(try store.usage(of: u.id, day: "2024-02-29") == Usage(user: u.id, day: "2024-02-29", executions: 3, cpuMs: 1250))
            #expect(try store.usage(of: u.id) == Usage(user: u.id, day: "2024-03-01", executions: 1, cpuMs: 10))
            #expect(try store.usage(of: v.id, day: "2024-02-29").executions == 1)
            #expect(try store.usage(of: v.id, day: "2024-02-29").cpuMs == 5)
            #expect(try store.usage(of: v.id).executions == 0)
            #expect(try store.usage(of: u.id, day: "2020-01-01") == Usage(user: u.id, day: "2020-01-01", executions: 0, cpuMs: 0))

            expectStoreError(.invalidArgument) { try store.recordUsage(user: u.id, executions: -1) }
            expectStoreError(.invalidArgument) { try store.recordUsage(user: u.id, cpuMs: -1) }
            expectStoreError(.notFound) { try store.recordUsage(user: User.ID(99)) }
            expectStoreError(.invalidArgument) { _ = try store.usage(of: u.id, day: "2024-2-29") }
            expectStoreError(.invalidArgument) { _ = try store.usage(of: u.id, day: "2024-13-01") }
        }
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01"), (86_399, "1970-01-01"), (86_400, "1970-01-02"), (-1, "1969-12-31"),
        (951_782_400, "2000-02-29"), (1_709_164_800, "2024-02-29"), (1_735_689_599, "2024-12-31"),
        (1_735_689_600, "2025-01-01"), (4_107_542_400, "2100-03-01"), (-62_135_596_800, "0001-01-01"),
    ])
    func utcDays(_ t: Int64, _ day: String) {
        #expect(UTCDay.string(t) == day)
        #expect(UTCDay.isValid(day))
    }

    @Test func dayShapes() {
        for bad in ["", "2024-02-3", "2024/02/03", "2024-00-10", "2024-02-32", "20240203", "2024-02-03T", "abcd-ef-gh"] {
            #expect(!UTCDay.isValid(bad), "\(bad)")
        }
    }
}
