// The seam between the kernel logic and whatever runs the driver: an OCI runtime (crun, runc),
// or a plain host process for development. A Docker-Engine-API backend would be a third
// implementation of this protocol; Kernel and KernelHost never look behind it.
import TandemLoop

/// What to start.
public struct LaunchRequest: Sendable {
    public var containerID: String
    public var spec: KernelSpec
    /// Host directory to mount at /workspace; nil for a pool container (see `attach`).
    public var workspace: String?
    public var limits: KernelLimits
}

/// A started container (or process) as the kernel sees it: its stdio pipes, its init process
/// and its cgroup. The kernel owns the descriptors once `launch` has handed them over.
public final class ContainerHandle {
    public let containerID: String
    /// The process whose exit means "the kernel is gone" (the container's init).
    public let pid: Int32
    /// pidfd of `pid` (readable at exit), or -1 when the host has no pidfd_open.
    public let pidfd: Int32
    /// Our ends: write requests to `stdin`, read output from `stdout`/`stderr`, events from `events`.
    public let stdin: Int32
    public let stdout: Int32
    public let stderr: Int32
    public let events: Int32
    /// The container's cgroup directories, when the backend has cgroups.
    public let cgroup: CgroupDirectories?
    /// Backend-private state (bundle directory and so on).
    public let bundle: String?
    /// Whether the workspace is mounted.
    public internal(set) var workspace: String?

    public init(containerID: String, pid: Int32, pidfd: Int32, stdin: Int32, stdout: Int32, stderr: Int32, events: Int32,
                cgroup: CgroupDirectories?, bundle: String?, workspace: String?) {
        self.containerID = containerID
        self.pid = pid
        self.pidfd = pidfd
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.events = events
        self.cgroup = cgroup
        self.bundle = bundle
        self.workspace = workspace
    }
}

@available(*, unavailable)
extension ContainerHandle: Sendable {}

/// Runs kernels. Loop-confined: every method is called on the kernel loop, and completions are
/// called there too.
public protocol ContainerBackend: AnyObject {
    /// For logs and `tandem kernel check`.
    var name: String { get }
    /// Whether ``attach(_:workspace:)`` works, which is what a warm pool needs.
    var supportsAttach: Bool { get }
    /// Whether the kernel is isolated from the host (false only for the development backend).
    var isolated: Bool { get }

    /// Creates and starts a container running the spec's driver. The completion gets the handle
    /// once the driver process runs (its `ready` event follows on `events`).
    func launch(_ request: LaunchRequest, completion: @escaping (Result<ContainerHandle, KernelError>) -> Void)
    /// Mounts `workspace` at /workspace inside a running container started without one.
    func attach(_ container: ContainerHandle, workspace: String) throws(KernelError)
    /// Delivers SIGINT to the driver (the interpreter turns it into KeyboardInterrupt and friends).
    func interrupt(_ container: ContainerHandle)
    /// Kills every process of the container, removes it and its cgroups. Idempotent.
    func destroy(_ container: ContainerHandle, completion: @escaping () -> Void)
}
