import Testing
@testable import TandemStore

@Suite struct LoginRateLimiterTests {
    @Test func perAddressAllowsTenFailuresPerFiveMinutes() {
        var l = LoginRateLimiter()
        let key = LoginRateLimiter.Key.address("192.0.2.1")
        for i in 0..<10 {
            #expect(l.check(key, now: 1000 + Int64(i)) == .allowed)
            l.recordFailure(key, now: 1000 + Int64(i))
        }
        // The oldest of the ten failures (t=1000) leaves the window at 1300.
        #expect(l.check(key, now: 1009) == .retryAfter(291))
        #expect(l.check(key, now: 1299) == .retryAfter(1))
        #expect(l.check(key, now: 1300) == .allowed)
        // Other addresses are unaffected.
        #expect(l.check(.address("192.0.2.2"), now: 1009) == .allowed)
        // One more failure at 1300: the window now holds 1001...1009 and 1300, ten again.
        l.recordFailure(key, now: 1300)
        #expect(l.check(key, now: 1300) == .retryAfter(1))
        #expect(l.check(key, now: 1301) == .allowed)
    }

    @Test func perUserAllowsFiveFailuresAndIgnoresCase() {
        var l = LoginRateLimiter()
        for i in 0..<5 { l.recordFailure(.user(i % 2 == 0 ? "Alice" : "alice"), now: 0 + Int64(i) * 10) }
        #expect(l.check(.user("alice"), now: 40) == .retryAfter(260))
        #expect(l.check(.user("ALICE"), now: 40) == .retryAfter(260))
        #expect(l.check(.user("bob"), now: 40) == .allowed)
        #expect(l.check(.user("alice"), now: 300) == .allowed)  // the failure at 0 left the window
        // The address key with the same text is a different key.
        #expect(l.check(.address("alice"), now: 40) == .allowed)
    }

    @Test func windowForgetsOldFailures() {
        var l = LoginRateLimiter(userPolicy: .init(maxFailures: 3, window: 60))
        l.recordFailure(.user("u"), now: 0)
        l.recordFailure(.user("u"), now: 30)
        l.recordFailure(.user("u"), now: 100)  // the first two have left the window
        #expect(l.check(.user("u"), now: 100) == .allowed)
        l.recordFailure(.user("u"), now: 110)
        #expect(l.check(.user("u"), now: 111) == .allowed)
        l.recordFailure(.user("u"), now: 120)
        #expect(l.check(.user("u"), now: 120) == .retryAfter(40))
        #expect(l.check(.user("u"), now: 160) == .allowed)
    }

    @Test func successClearsTheKey() {
        var l = LoginRateLimiter()
        for i in 0..<5 { l.recordFailure(.user("u"), now: Int64(i)) }
        for i in 0..<10 { l.recordFailure(.address("a"), now: Int64(i)) }
        #expect(!l.check(.user("u"), now: 5).isAllowed)
        l.recordSuccess(.user("U"))
        #expect(l.check(.user("u"), now: 5) == .allowed)
        l.recordSuccess(.address("a"))
        #expect(l.check(.address("a"), now: 5) == .allowed)
        #expect(l.keyCount == 0)
    }

    @Test func combinedCheckAndRecording() {
        var l = LoginRateLimiter(addressPolicy: .init(maxFailures: 4, window: 100), userPolicy: .init(maxFailures: 2, window: 50))
        l.recordFailure(address: "a", user: "u", now: 0)
        #expect(l.check(address: "a", user: "u", now: 1) == .allowed)
        l.recordFailure(address: "a", user: "u", now: 1)
        // The user is blocked until 50; the address is not blocked.
        #expect(l.check(address: "a", user: "u", now: 2) == .retryAfter(48))
        #expect(l.check(address: "a", user: "v", now: 2) == .allowed)
        l.recordFailure(address: "a", user: "v", now: 2)
        l.recordFailure(address: "a", user: "v", now: 3)
        // Now the address is blocked until 100 as well: the longer wait wins.
        #expect(l.check(address: "a", user: "w", now: 4) == .retryAfter(96))
        #expect(l.check(address: "a", user: "u", now: 4) == .retryAfter(96))
        #expect(l.check(address: "b", user: "u", now: 4) == .retryAfter(46))
        // A success clears the user, not the address.
        l.recordSuccess(address: "a", user: "u")
        #expect(l.check(address: "b", user: "u", now: 4) == .allowed)
        #expect(l.check(address: "a", user: "u", now: 4) == .retryAfter(96))
    }

    @Test func memoryIsBounded() {
        var l = LoginRateLimiter(maxKeys: 100)
        for i in 0..<1000 { l.recordFailure(.address("10.0.\(i / 256).\(i % 256)"), now: Int64(i)) }
        #expect(l.keyCount <= 100)
        // The most recent keys are the ones kept.
        for _ in 0..<9 { l.recordFailure(.address("10.0.3.231"), now: 1000) }
        #expect(!l.check(.address("10.0.3.231"), now: 1000).isAllowed)  // i = 999
        // Expired keys are dropped first.
        var m = LoginRateLimiter(maxKeys: 10)
        for i in 0..<10 { m.recordFailure(.user("old\(i)"), now: 0) }
        #expect(m.keyCount == 10)
        m.recordFailure(.user("new"), now: 1000)
        #expect(m.keyCount == 1)
    }

    @Test(arguments: 1...10)
    func everyBudgetBlocksUntilTheFirstFailureLeaves(_ n: Int) {
        // n failures at consecutive seconds in a 10-second window: allowed before the n-th,
        // then blocked exactly until the first leaves the window.
        var l = LoginRateLimiter(addressPolicy: .init(maxFailures: n, window: 10))
        for t in 0..<n {
            #expect(l.check(.address("x"), now: Int64(t)) == .allowed)
            l.recordFailure(.address("x"), now: Int64(t))
        }
        for t in Int64(n - 1)..<10 { #expect(l.check(.address("x"), now: t) == .retryAfter(10 - t)) }
        #expect(l.check(.address("x"), now: 10) == .allowed)
    }

    @Test func exhaustiveAgainstAReferenceModel() {
        // Every pattern of failures over 12 seconds (2^12), budget 3 in a 5-second window,
        // checked at every second against a direct count.
        let policy = LoginRateLimiter.Policy(maxFailures: 3, window: 5)
        for pattern in 0..<(1 << 12) {
            var l = LoginRateLimiter(userPolicy: policy)
            var times: [Int64] = []
            for t in Int64(0)..<12 {
                let inWindow = times.filter { $0 + 5 > t }
                let expected: LoginRateLimiter.Decision =
                    inWindow.count >= 3 ? .retryAfter(inWindow[inWindow.count - 3] + 5 - t) : .allowed
                #expect(l.check(.user("k"), now: t) == expected, "pattern \(pattern) t \(t)")
                if pattern & (1 << Int(t)) != 0 {
                    l.recordFailure(.user("k"), now: t)
                    times.append(t)
                }
            }
        }
    }
}
