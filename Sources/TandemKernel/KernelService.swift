// The thread-safe face of the kernel subsystem. Every call hops onto the kernel loop, where
// KernelHost and the kernels live, and answers through async/await (for the server's request
// handlers, the CLI and tests) or through KernelObserver callbacks (for live events).
public import Logging
public import TandemConfig
public import TandemLoop
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public final class KernelService: Sendable {
    public let loop: EventLoop
    public let settings: TandemConfiguration.Kernels
    /// Names of the kernel specs found.
    public let kernelNames: [String]
    public let backendName: String
    private static let storageKey = "tandem.kernels"

    private init(loop: EventLoop, settings: TandemConfiguration.Kernels, kernelNames: [String], backendName: String) {
        self.loop = loop
        self.settings = settings
        self.kernelNames = kernelNames
        self.backendName = backendName
    }

    /// Checks the host, prepares the backend (seccomp BPF, root skeleton, leftovers from a crash)
    /// and starts the warm pool. Relative paths in `settings` are resolved against `base`.
    public static func start(settings raw: TandemConfiguration.Kernels, base: String, loop: EventLoop,
                             logger: Logger) async throws(KernelError) -> KernelService {
        var settings = raw
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : base + "/" + p }
        settings.specs = resolve(settings.specs)
        settings.seccompProfile = resolve(settings.seccompProfile)
        settings.stateDir = resolve(settings.stateDir)
        let specs = try KernelSpec.loadAll(root: settings.specs)
        guard specs[settings.defaultKernel] != nil else {
            throw KernelError(.configuration, "kernels.defaultKernel \"\(settings.defaultKernel)\" has no spec in \(settings.specs)")
        }
        let frozen = settings
        let result: Result<String, KernelError> = await withCheckedContinuation { cont in
            let accepted = loop.execute { l in
                do throws(KernelError) {
                    let backend: any ContainerBackend
                    if frozen.backend == "unsafe-host" {
                        backend = HostProcessBackend(logger: logger)
                    } else {
                        let s = OCIBackendSettings(runtime: frozen.runtime, stateDir: frozen.stateDir, cgroupParent: frozen.cgroupParent,
                                                   uidBase: frozen.uidBase, seccompProfile: frozen.seccompProfile)
                        backend = try OCIRuntimeBackend(settings: s, loop: l, logger: logger)
                    }
                    l.storage[storageKey] = KernelHost(settings: frozen, specs: specs, backend: backend, loop: l, logger: logger)
                    cont.resume(returning: .success(backend.name))
                } catch {
                    cont.resume(returning: .failure(error))
                }
            }
            if !accepted { cont.resume(returning: .failure(KernelError(.shuttingDown, "the kernel loop has stopped"))) }
        }
        let name = try result.get()
        return KernelService(loop: loop, settings: frozen, kernelNames: specs.keys.sorted(), backendName: name)
    }

    /// Runs `body` on the kernel loop with the host and returns its answer.
    private func onHost<T: Sendable>(_ body: @escaping @Sendable (KernelHost, @escaping @Sendable (Result<T, KernelError>) -> Void) -> Void) async throws(KernelError) -> T {
        let r: Result<T, KernelError> = await withCheckedContinuation { cont in
            let accepted = loop.execute { l in
                guard let host = l.storage[Self.storageKey] as? KernelHost else {
                    return cont.resume(returning: .failure(KernelError(.shuttingDown, "kernels are shut down")))
                }
                body(host) { cont.resume(returning: $0) }
            }
            if !accepted { cont.resume(returning: .failure(KernelError(.shuttingDown, "the kernel loop has stopped"))) }
        }
        return try r.get()
    }

    // MARK: Workspace kernels

    /// Queues `code` on the workspace's kernel (starting it if needed); returns the execution id
    /// at once. Results arrive as events to observers.
    public func submit(workspace: String, directory: String, code: String, requester: String, kernel: String? = nil) async throws(KernelError) -> Int {
        try await onHost { host, reply in
            do throws(KernelError) {
                let k = try host.kernel(workspace: workspace, directory: directory, kernelName: kernel)
                let id = host.nextID()
                try k.execute(.init(id: id, code: code, requester: requester, timeout: nil, collect: false, completion: nil))
                reply(.success(id))
            } catch {
                reply(.failure(error))
            }
        }
    }

    /// Runs `code` on the workspace's kernel and waits for it to finish; the transcript has this
    /// execution's own output.
    public func execute(workspace: String, directory: String, code: String, requester: String = "api",
                        kernel: String? = nil, timeout: Double? = nil) async throws(KernelError) -> ExecutionTranscript {
        try await onHost { host, reply in
            do throws(KernelError) {
                let k = try host.kernel(workspace: workspace, directory: directory, kernelName: kernel)
                try k.execute(.init(id: host.nextID(), code: code, requester: requester, timeout: timeout, collect: true) { t in
                    reply(.success(t))
                })
            } catch {
                reply(.failure(error))
            }
        }
    }

    /// Interrupts the running execution; `by` (a user name) is announced to everyone attached.
    public func interrupt(workspace: String, by: String? = nil) async throws(KernelError) {
        try await onHost { host, reply in
            if let k = host.existing(workspace) {
                if let by { k.announce("interrupt", by: by) }
                k.interrupt()
            }
            reply(.success(()))
        }
    }

    /// Replaces the workspace's kernel with a fresh one (state is lost); returns when it is ready.
    public func restart(workspace: String, directory: String, kernel: String? = nil, by: String? = nil) async throws(KernelError) {
        try await onHost { host, reply in
            do throws(KernelError) {
                let k = try host.kernel(workspace: workspace, directory: directory, kernelName: kernel)
                if let by { k.announce("restart", by: by) }
                k.restart(reason: "restarted") { reply($0) }
            } catch {
                reply(.failure(error))
            }
        }
    }

    /// Stops the workspace's kernel and removes its container.
    public func shutdown(workspace: String) async {
        _ = try? await onHost { (host, reply: @escaping @Sendable (Result<Bool, KernelError>) -> Void) in
            guard let k = host.existing(workspace) else { return reply(.success(false)) }
            k.shutdown(reason: "shut down") {
                host.remove(workspace)
                reply(.success(true))
            }
        }
    }

    public func complete(workspace: String, code: String, cursor: Int) async throws(KernelError) -> (matches: [String], cursorStart: Int) {
        let r: CompletionReply = try await onHost { host, reply in
            guard let k = host.existing(workspace) else { return reply(.success(CompletionReply(matches: [], start: cursor))) }
            k.complete(code: code, cursor: cursor) { m, s in reply(.success(CompletionReply(matches: m, start: s))) }
        }
        return (r.matches, r.start)
    }

    /// Subscribes `observer` to the workspace's kernel (without starting it) and returns the
    /// current state with the replay buffer.
    /// With `afterSeq`, the snapshot holds only the events after it (and a gap when the buffer
    /// no longer has some). `whileAttaching` runs on the kernel loop in the same step, so nothing
    /// can happen between the snapshot and whatever it sets up (a subscription).
    public func attach(workspace: String, directory: String, observer: any KernelObserver, kernel: String? = nil,
                       afterSeq: UInt64? = nil, whileAttaching: (@Sendable () -> Void)? = nil) async throws(KernelError) -> KernelSnapshot {
        try await onHost { host, reply in
            do throws(KernelError) {
                let k = try host.kernel(workspace: workspace, directory: directory, kernelName: kernel)
                let snapshot = k.attach(observer, afterSeq: afterSeq)
                whileAttaching?()
                reply(.success(snapshot))
            } catch {
                reply(.failure(error))
            }
        }
    }

    public func detach(workspace: String, observer: any KernelObserver) {
        loop.execute { l in
            guard let host = l.storage[Self.storageKey] as? KernelHost else { return }
            host.existing(workspace)?.detach(observer)
            host.remove(workspace)
        }
    }

    public func state(workspace: String) async -> KernelState? {
        try? await onHost { host, reply in reply(.success(host.existing(workspace)?.state)) }
    }

    /// Containers that exist right now (pool included), and how many wait in the pool.
    public func counts() async -> (containers: Int, pool: Int) {
        let r: [Int] = (try? await onHost { host, reply in reply(.success([host.containerCount, host.poolCount])) }) ?? [0, 0]
        return (r[0], r[1])
    }

    // MARK: Disk quota

    /// Measures the workspace's disk use soon (at most every 2 s per workspace), whether or not
    /// its kernel runs; `observer` hears when a workspace goes over or back under the quota.
    public func checkDisk(workspace: String, directory: String) {
        loop.execute { l in
            guard let host = l.storage[Self.storageKey] as? KernelHost,
                  let k = try? host.kernel(workspace: workspace, directory: directory, kernelName: nil) else { return }
            host.checkDisk(k)
        }
    }

    public func setDiskObserver(_ observer: @escaping @Sendable (_ workspace: String, _ overQuota: Bool) -> Void) {
        loop.execute { l in (l.storage[Self.storageKey] as? KernelHost)?.diskObserver = observer }
    }

    // MARK: One-shot runs

    /// Runs `code` once in a fresh, ephemeral container with an empty workspace and a hard
    /// timeout (at most `kernels.runTimeout`).
    public func run(kernel: String? = nil, code: String, timeout: Double) async throws(KernelError) -> ExecutionTranscript {
        try await onHost { host, reply in host.runOnce(kernel: kernel, code: code, timeout: timeout) { reply($0) } }
    }

    /// Stops every kernel and removes every container (server shutdown).
    public func shutdownAll() async {
        _ = try? await onHost { (host, reply: @escaping @Sendable (Result<Bool, KernelError>) -> Void) in
            host.shutdownAll { reply(.success(true)) }
        }
        loop.execute { l in l.storage[Self.storageKey] = nil }
    }
}

struct CompletionReply: Sendable {
    var matches: [String]
    var start: Int
}
