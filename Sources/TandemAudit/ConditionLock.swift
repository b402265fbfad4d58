// A mutex with a condition variable, protecting one value: the meeting point between threads
// that append audit entries and the writer thread.
#if canImport(Glibc)
import Glibc
#endif

/// A value protected by a POSIX mutex, with a condition variable to wait for changes to it.
///
/// `@unchecked Sendable` because the compiler cannot see the invariant that makes it safe:
/// `value` is read and written only inside `withLock` / `wait`, i.e. while holding `mutex`.
/// The mutex and condition live in heap memory that never moves (POSIX requires stable
/// addresses) and are destroyed in `deinit`.
final class ConditionLock<Value> {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    /// Protected by `mutex`.
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        // Timed waits measure the monotonic clock, so a wall-clock step cannot stall checkpoints.
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        precondition(pthread_cond_init(cond, &attr) == 0)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Holding the lock, waits until `ready(value)` is true, then runs `body`. Other threads wake
    /// waiters with ``broadcast()`` after changing the value.
    func wait<R, E: Error>(until ready: (Value) -> Bool, _ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready(value) { pthread_cond_wait(cond, mutex) }
        return try body(&value)
    }

    /// Like ``wait(until:_:)``, giving up at `deadline` (CLOCK_MONOTONIC nanoseconds); `body`
    /// runs either way and can look at the value to see which happened.
    func wait<R>(until ready: (Value) -> Bool, deadline: UInt64, _ body: (inout Value) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while !ready(value) {
            if pthread_cond_timedwait(cond, mutex, &ts) == ETIMEDOUT { break }
        }
        return body(&value)
    }

    /// Like ``wait(until:deadline:_:)``, setting the flag at `whileWaiting` while this thread
    /// sleeps (so others know to ``broadcast()``) and clearing it when it wakes.
    func wait<R>(until ready: (Value) -> Bool, deadline: UInt64, whileWaiting flag: WritableKeyPath<Value, Bool>, _ body: (inout Value) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while !ready(value) {
            value[keyPath: flag] = true
            let r = pthread_cond_timedwait(cond, mutex, &ts)
            value[keyPath: flag] = false
            if r == ETIMEDOUT { break }
        }
        return body(&value)
    }

    /// Wakes every waiter (they re-check their condition).
    func broadcast() {
        pthread_cond_broadcast(cond)
    }
}

extension ConditionLock: @unchecked Sendable where Value: Sendable {}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CLOCK_REALTIME in microseconds since the Unix epoch (UTC).
func wallClockMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec / 1000)
}
