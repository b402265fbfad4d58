// Development only: the driver runs as an ordinary host process, with the server's user, no
// namespaces, no cgroups, no seccomp. Opt-in (`kernels.backend = "unsafe-host"`) and announced
// with a warning at start and on every kernel start.
import CTandemSystem
public import Logging
import TandemLoop
#if canImport(Glibc)
import Glibc
#endif

public final class HostProcessBackend: ContainerBackend {
    public let name = "unsafe-host"
    public var supportsAttach: Bool { false }
    public var isolated: Bool { false }
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
        logger.warning("kernels.backend = unsafe-host: kernels run WITHOUT ANY ISOLATION as the server's user; development only")
    }

    public func launch(_ request: LaunchRequest, completion: @escaping (Result<ContainerHandle, KernelError>) -> Void) {
        guard let ws = request.workspace else {
            return completion(.failure(KernelError(.startFailed, "the unsafe-host backend has no pool")))
        }
        logger.warning("starting an UNISOLATED kernel", metadata: ["kernel": "\(request.containerID)", "workspace": "\(ws)"])
        var pin: [Int32] = [-1, -1], pout: [Int32] = [-1, -1], perr: [Int32] = [-1, -1], pev: [Int32] = [-1, -1]
        guard ctandem_pipe(&pin, 0, 1) == 0, ctandem_pipe(&pout, 1, 0) == 0, ctandem_pipe(&perr, 1, 0) == 0,
              ctandem_pipe(&pev, 1, 0) == 0 else {
            for fd in pin + pout + perr + pev where fd >= 0 { _ = ctandem_close(fd) }
            return completion(.failure(KernelError(.startFailed, "cannot create pipes")))
        }
        let theirs = [pin[0], pout[1], perr[1], pev[1]]
        defer { for fd in theirs { _ = ctandem_close(fd) } }
        var env = defaultEnvironment + ["HOME=\(ws)", "TERM=dumb"]
        for (k, v) in request.spec.env.sorted(by: { $0.key < $1.key }) { env.append("\(k)=\(v)") }
        do {
            let p = try spawnProcess(request.spec.hostArgv, env: env, fds: theirs, cwd: ws)
            completion(.success(ContainerHandle(
                containerID: request.containerID, pid: p.pid, pidfd: p.pidfd, stdin: pin[1], stdout: pout[0],
                stderr: perr[0], events: pev[0], cgroup: nil, bundle: nil, workspace: ws)))
        } catch {
            for fd in [pin[1], pout[0], perr[0], pev[0]] { _ = ctandem_close(fd) }
            completion(.failure(error))
        }
    }

    public func attach(_ container: ContainerHandle, workspace: String) throws(KernelError) {
        throw KernelError(.startFailed, "the unsafe-host backend cannot attach workspaces")
    }

    public func interrupt(_ container: ContainerHandle) { _ = kill(container.pid, SIGINT) }

    public func destroy(_ container: ContainerHandle, completion: @escaping () -> Void) {
        // The driver leads its own session (spawn calls setsid): kill the whole group.
        _ = kill(-container.pid, SIGKILL)
        completion()
    }
}
