// Errors of the kernel subsystem, each with a stable code that reaches clients unchanged.

public struct KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Bad configuration, missing runtime or kernel spec files.
        case configuration = "kernel_configuration"
        /// The host cannot run containers (not root, no cgroups, runtime failure).
        case unavailable = "kernel_unavailable"
        case unknownKernel = "unknown_kernel"
        /// `kernels.maxKernels` reached.
        case hostLimit = "kernel_limit_reached"
        case queueFull = "kernel_queue_full"
        case codeTooLarge = "code_too_large"
        /// The workspace is over `kernels.diskQuotaMB`.
        case diskQuota = "workspace_quota_exceeded"
        case startFailed = "kernel_start_failed"
        /// The kernel died (crash, OOM kill) or was shut down while the request waited.
        case died = "kernel_died"
        case timeout = "run_timeout"
        case shuttingDown = "shutting_down"
        case invalidRequest = "invalid_request"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
