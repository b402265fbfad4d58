// Login rate limiting: failed attempts per client address and, separately, per user name, in a
// sliding window. Pure: the caller passes the time and keeps the value (behind its own lock).

/// Limits failed logins per key in a sliding window.
///
/// Each key remembers the times of its last `maxFailures` failures. A key is blocked while all
/// of them lie within the window, until the oldest leaves it. A success clears the key.
///
/// ```swift
/// var limiter = LoginRateLimiter()
/// if case .retryAfter(let s) = limiter.check(address: ip, user: name, now: now) { return tooMany(s) }
/// if passwordOK { limiter.recordSuccess(address: ip, user: name) }
/// else { limiter.recordFailure(address: ip, user: name, now: now) }
/// ```
///
/// Memory is bounded by `maxKeys`: when full, keys whose failures have all left the window are
/// dropped, then the longest-quiet keys, down to three quarters of the bound.
public struct LoginRateLimiter: Sendable {
    /// What is counted: a client address (normalise IPv6 to its /64 before passing it if one
    /// client can pick among many addresses) or a user name (compared case-insensitively).
    public enum Key: Hashable, Sendable {
        case address(String)
        case user(String)

        fileprivate var normalized: Key {
            switch self {
            case .address: self
            case .user(let name): .user(name.lowercased())
            }
        }
    }

    /// How many failures are allowed in how long.
    public struct Policy: Sendable, Equatable {
        /// Failures allowed within `window`; the next attempt is refused.
        public var maxFailures: Int
        /// The window, in seconds.
        public var window: Int64

        public init(maxFailures: Int, window: Int64) {
            precondition(maxFailures >= 1 && window >= 1, "a rate limit needs at least one failure and one second")
            self.maxFailures = maxFailures
            self.window = window
        }

        /// 10 failures per 5 minutes.
        public static let perAddress = Policy(maxFailures: 10, window: 300)
        /// 5 failures per 5 minutes.
        public static let perUser = Policy(maxFailures: 5, window: 300)
    }

    /// The answer to ``check(_:now:)``.
    public enum Decision: Equatable, Sendable {
        case allowed
        /// Refused; retry after this many seconds (at least 1).
        case retryAfter(Int64)

        public var isAllowed: Bool { self == .allowed }
    }

    public let addressPolicy: Policy
    public let userPolicy: Policy
    public let maxKeys: Int
    /// Failure times per key, oldest first, at most `maxFailures` of them.
    private var failures: [Key: [Int64]] = [:]

    public init(addressPolicy: Policy = .perAddress, userPolicy: Policy = .perUser, maxKeys: Int = 100_000) {
        precondition(maxKeys >= 4, "maxKeys must be at least 4")
        self.addressPolicy = addressPolicy
        self.userPolicy = userPolicy
        self.maxKeys = maxKeys
    }

    /// The number of keys remembered.
    public var keyCount: Int { failures.count }

    private func policy(_ key: Key) -> Policy {
        switch key {
        case .address: addressPolicy
        case .user: userPolicy
        }
    }

    /// Whether an attempt for `key` may proceed at `now` (unix seconds or any monotonic seconds,
    /// as long as every call uses the same clock).
    public func check(_ key: Key, now: Int64) -> Decision {
        let key = key.normalized
        let p = policy(key)
        guard let times = failures[key], times.count >= p.maxFailures else { return .allowed }
        // The oldest of the last maxFailures failures: blocked until it leaves the window.
        let oldest = times[times.count - p.maxFailures]
        let until = oldest + p.window
        return now >= until ? .allowed : .retryAfter(max(1, until - now))
    }

    /// Checks the address and the user name; refused when either is, with the longer wait.
    public func check(address: String, user: String, now: Int64) -> Decision {
        switch (check(.address(address), now: now), check(.user(user), now: now)) {
        case (.allowed, .allowed): .allowed
        case (.retryAfter(let a), .allowed): .retryAfter(a)
        case (.allowed, .retryAfter(let b)): .retryAfter(b)
        case (.retryAfter(let a), .retryAfter(let b)): .retryAfter(max(a, b))
        }
    }

    /// Records a failed attempt for `key` at `now`.
    public mutating func recordFailure(_ key: Key, now: Int64) {
        let key = key.normalized
        let p = policy(key)
        if failures[key] == nil && failures.count >= maxKeys { evict(now: now) }
        var times = failures.removeValue(forKey: key) ?? []
        // Forget failures that left the window; keep at most maxFailures.
        times.removeAll { $0 + p.window <= now }
        times.append(now)
        if times.count > p.maxFailures { times.removeFirst(times.count - p.maxFailures) }
        failures[key] = times
    }

    /// Records a failed attempt against both the address and the user name.
    public mutating func recordFailure(address: String, user: String, now: Int64) {
        recordFailure(.address(address), now: now)
        recordFailure(.user(user), now: now)
    }

    /// Clears `key`'s failures.
    public mutating func recordSuccess(_ key: Key) {
        failures.removeValue(forKey: key.normalized)
    }

    /// A successful login clears the user name's failures. The address keeps its count: one
    /// valid account must not let a client reset its budget for guessing others.
    public mutating func recordSuccess(address: String, user: String) {
        recordSuccess(.user(user))
    }

    /// Makes room: drops keys with no failure in their window, then the keys whose newest
    /// failure is oldest, down to three quarters of `maxKeys`.
    private mutating func evict(now: Int64) {
        failures = failures.filter { key, times in
            guard let last = times.last else { return false }
            return last + policy(key).window > now
        }
        let target = maxKeys * 3 / 4
        guard failures.count > target else { return }
        let byAge = failures.sorted { ($0.value.last ?? 0) < ($1.value.last ?? 0) }
        for (key, _) in byAge.prefix(failures.count - target) { failures.removeValue(forKey: key) }
    }
}
