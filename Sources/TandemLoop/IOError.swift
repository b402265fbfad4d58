// System-call errors.
import CTandemSystem
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the function and errno.
public struct IOError: Error, Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32
    public let function: String
    public init(errno: Int32, function: String) {
        self.errno = errno
        self.function = function
    }
    public var description: String { "\(function): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Monotonic time in nanoseconds.
@inline(__always)
public func monotonicNanos() -> UInt64 { ctandem_now_ns() }
