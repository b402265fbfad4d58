// Every kernel of this server: one WorkspaceKernel per workspace, a warm pool of started
// containers waiting for a workspace, the host-wide limit, idle reaping, disk accounting and
// one-shot runs. Loop-confined to the kernel loop; KernelService is its thread-safe face.
import Logging
import TandemConfig
import TandemLoop
#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class KernelHost {
    let settings: TandemConfiguration.Kernels
    let specs: [String: KernelSpec]
    let backend: any ContainerBackend
    let logger: Logger
    private unowned let loop: Loop
    private var kernels: [String: WorkspaceKernel] = [:]
    /// Started containers of the default kernel without a workspace.
    private var pool: [KernelProcess] = []
    private var poolStarting = 0
    private var poolFailures = 0
    private var poolRetryAt: UInt64 = 0
    /// Every container that exists (pool, workspaces, one-shot runs), for `maxKernels`.
    private var live: [ObjectIdentifier: KernelProcess] = [:]
    private var counter = 0
    private var reaper: UInt64?
    private var diskChecks: [String: UInt64] = [:]
    private var diskDeferred: Set<String> = []
    /// `du` runs not yet finished (shutdown waits for them: they are our children).
    private var diskInFlight = 0
    /// Told when a workspace goes over or back under its disk quota (the file layer refuses
    /// writes meanwhile).
    var diskObserver: (@Sendable (String, Bool) -> Void)?
    private var closing = false
    let limits: KernelLimits
    let scratchRoot: String

    init(settings: TandemConfiguration.Kernels, specs: [String: KernelSpec], backend: any ContainerBackend, loop: Loop, logger: Logger) {
        self.settings = settings
        self.specs = specs
        self.backend = backend
        self.loop = loop
        self.logger = logger
        limits = KernelLimits(memoryBytes: Int64(settings.memoryMB) << 20, pids: Int64(settings.pids),
                              cpuPercent: settings.cpuPercent, tmpBytes: Int64(settings.tmpMB) << 20)
        scratchRoot = settings.stateDir + "/scratch"
        try? FileManager.default.createDirectory(atPath: scratchRoot, withIntermediateDirectories: true)
        scheduleReaper()
        replenishPool()
    }

    func nextID() -> Int {
        counter += 1
        return counter
    }

    var containerCount: Int { live.count }
    var poolCount: Int { pool.count }

    func checkCapacity() throws(KernelError) {
        if closing { throw KernelError(.shuttingDown, "the server is shutting down") }
        // A pool container can be claimed without starting a new one.
        if pool.isEmpty && containerCount >= settings.maxKernels {
            throw KernelError(.hostLimit, "this server already runs \(settings.maxKernels) kernels (kernels.maxKernels)")
        }
    }

    // MARK: Workspaces

    func kernel(workspace: String, directory: String, kernelName: String?) throws(KernelError) -> WorkspaceKernel {
        if let k = kernels[workspace] {
            if let n = kernelName, n != k.spec.name {
                throw KernelError(.invalidRequest, "workspace \(workspace) runs \(k.spec.name); shut it down to switch to \(n)")
            }
            return k
        }
        let name = kernelName ?? settings.defaultKernel
        guard let spec = specs[name] else {
            throw KernelError(.unknownKernel, "no kernel spec \"\(name)\" (have: \(specs.keys.sorted().joined(separator: ", ")))")
        }
        let k = WorkspaceKernel(workspaceID: workspace, directory: directory, spec: spec, host: self, loop: loop)
        kernels[workspace] = k
        return k
    }

    func existing(_ workspace: String) -> WorkspaceKernel? { kernels[workspace] }

    func remove(_ workspace: String) {
        guard let k = kernels[workspace], k.observerCount == 0, !k.hasProcess else { return }
        kernels[workspace] = nil
    }

    /// A ready process for `k`: from the pool (mount the workspace, chdir) when the spec is the
    /// pool's, else a fresh container.
    func obtainProcess(for k: WorkspaceKernel, completion: @escaping (Result<KernelProcess, KernelError>) -> Void) {
        if closing { return completion(.failure(KernelError(.shuttingDown, "the server is shutting down"))) }
        if k.spec.name == settings.defaultKernel, backend.supportsAttach, let p = pool.popLast() {
            do {
                try p.attach(workspace: k.directory)
            } catch {
                p.destroy {}
                return launchFresh(k, completion)
            }
            p.delegate = nil
            var answered = false
            let id = nextID()
            // The driver changes into the freshly mounted /workspace; its `done` completes the claim.
            p.delegate = KernelProcess.Delegate(
                output: { _, _ in },
                event: { ev in
                    if case .done(id, .ok, _, _, _, _) = ev, !answered {
                        answered = true
                        completion(.success(p))
                    } else if case .done(id, _, _, _, _, _) = ev, !answered {
                        answered = true
                        p.destroy {}
                        completion(.failure(KernelError(.startFailed, "the kernel could not enter its workspace")))
                    }
                },
                exited: { cause in
                    if !answered {
                        answered = true
                        completion(.failure(KernelError(.startFailed, "kernel \(cause)")))
                    }
                })
            p.send(.chdir(id: id, path: "/workspace"))
            // Refill later: a runtime start now would compete with this attach for the CPU.
            loop.schedule(afterNanos: 200_000_000) { [weak self] in self?.replenishPool() }
            return
        }
        launchFresh(k, completion)
    }

    private func launchFresh(_ k: WorkspaceKernel, _ completion: @escaping (Result<KernelProcess, KernelError>) -> Void) {
        guard containerCount < settings.maxKernels else {
            return completion(.failure(KernelError(.hostLimit, "this server already runs \(settings.maxKernels) kernels (kernels.maxKernels)")))
        }
        let p = newProcess(spec: k.spec)
        p.start(workspace: k.directory, limits: limits) { [logger] r in
            switch r {
            case .success:
                logger.debug("kernel started", metadata: [
                    "kernel": "\(p.containerID)", "launchMs": "\(Double(p.launchedAt - p.startedAt) / 1e6)",
                    "readyMs": "\(Double(p.readyAt - p.startedAt) / 1e6)",
                ])
                completion(.success(p))
            case .failure(let e):
                p.destroy {}
                completion(.failure(e))
            }
        }
    }

    private func newProcess(spec: KernelSpec) -> KernelProcess {
        let p = KernelProcess(containerID: "k-\(getpid())-\(nextID())", spec: spec, loop: loop, backend: backend,
                              outputRate: settings.outputRateBytes)
        live[ObjectIdentifier(p)] = p
        p.onGone = { [unowned self, unowned p] in
            live[ObjectIdentifier(p)] = nil
            pool.removeAll { $0 === p }
            replenishPool()
        }
        return p
    }

    // MARK: Pool

    func replenishPool() {
        guard !closing, backend.supportsAttach, let spec = specs[settings.defaultKernel] else { return }
        guard monotonicNanos() >= poolRetryAt else { return }
        while pool.count + poolStarting < settings.poolSize && containerCount < settings.maxKernels {
            poolStarting += 1
            let p = newProcess(spec: spec)
            p.delegate = KernelProcess.Delegate(output: { _, _ in }, event: { _ in }, exited: { _ in })
            p.start(workspace: nil, limits: limits) { [weak self] r in
                guard let self else { return }
                self.poolStarting -= 1
                switch r {
                case .success:
                    self.poolFailures = 0
                    if self.closing {
                        p.destroy {}
                    } else {
                        // Warm the interpreter (the driver imports its compiler lazily) so the
                        // first execution after a claim pays nothing extra.
                        p.send(.execute(id: self.nextID(), code: "None"))
                        self.pool.append(p)
                    }
                case .failure(let e):
                    p.destroy {}
                    guard !self.closing else { return }
                    // Back off (1 s, 2 s, … 60 s) so a broken host does not spin.
                    self.poolFailures += 1
                    let delay = min(60.0, Double(1 << min(self.poolFailures - 1, 6)))
                    self.poolRetryAt = monotonicNanos() + UInt64(delay * 1e9)
                    self.logger.error("pool kernel failed to start", metadata: ["error": "\(e)", "retryIn": "\(delay) s"])
                    self.loop.schedule(afterNanos: UInt64(delay * 1e9) + 1000) { [weak self] in self?.replenishPool() }
                }
            }
        }
    }

    // MARK: Idle kernels

    private func scheduleReaper() {
        let every = UInt64(min(5.0, max(0.05, settings.idleTimeout / 4)) * 1e9)
        reaper = loop.schedule(afterNanos: every) { [weak self] in
            guard let self, !self.closing else { return }
            let now = monotonicNanos()
            let limit = UInt64(self.settings.idleTimeout * 1e9)
            for k in self.kernels.values where k.hasProcess && k.isIdle && now - k.lastActivity > limit {
                self.logger.info("stopping idle kernel", metadata: ["workspace": "\(k.workspaceID)"])
                k.shutdown(reason: "idle for \(Int(self.settings.idleTimeout)) s") {}
            }
            reapStrayRuntimeProcesses(names: ["crun", "runc"])
            self.scheduleReaper()
        }
    }

    // MARK: Disk accounting

    /// Measures the workspace with `du` (off the loop, at most every 2 s per workspace) and
    /// flips its over-quota flag.
    func checkDisk(_ k: WorkspaceKernel) {
        guard settings.diskQuotaMB > 0 else { return }
        let now = monotonicNanos()
        if let last = diskChecks[k.workspaceID], now - last < 2_000_000_000 {
            // Checked recently: check again once the interval is over (one deferred check at most).
            guard !diskDeferred.contains(k.workspaceID) else { return }
            diskDeferred.insert(k.workspaceID)
            loop.schedule(afterNanos: last + 2_000_000_000 - now) { [weak self, weak k] in
                guard let self, let k else { return }
                self.diskDeferred.remove(k.workspaceID)
                self.checkDisk(k)
            }
            return
        }
        diskChecks[k.workspaceID] = now
        let quota = Int64(settings.diskQuotaMB) << 20
        diskInFlight += 1
        CapturedRun.start(["/usr/bin/du", "-s", "-x", "-B1", k.directory], loop: loop) { [weak self, weak k] exit, out, _ in
            self?.diskInFlight -= 1
            guard let k, exit.succeeded, let used = Int64(out.split(separator: "\t").first ?? "") else { return }
            let over = used > quota
            if over != k.overQuota {
                k.overQuota = over
                self?.diskObserver?(k.workspaceID, over)
                k.notice(over ? "disk_quota_exceeded" : "disk_quota_ok",
                         over ? "the workspace uses \(used >> 20) MB of its \(quota >> 20) MB; new executions are refused until files are deleted"
                              : "the workspace is back under its disk quota")
            }
        }
    }

    // MARK: One-shot runs

    /// Runs `code` once in a fresh container with an empty scratch workspace, then removes both.
    func runOnce(kernel name: String?, code: String, timeout: Double, completion: @escaping (Result<ExecutionTranscript, KernelError>) -> Void) {
        let id = "run-\(nextID())"
        let dir = scratchRoot + "/" + id
        do {
            try checkCapacity()
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch let e as KernelError {
            return completion(.failure(e))
        } catch {
            return completion(.failure(KernelError(.unavailable, "cannot create a scratch workspace: \(error)")))
        }
        let k: WorkspaceKernel
        do {
            k = try kernel(workspace: id, directory: dir, kernelName: name)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            return completion(.failure(error))
        }
        let t = min(timeout, settings.runTimeout)
        let pending = WorkspaceKernel.Pending(id: nextID(), code: code, requester: "run", timeout: t, collect: true) { [self] transcript in
            k.shutdown(reason: "one-shot run finished") { [self] in
                kernels[id] = nil
                try? FileManager.default.removeItem(atPath: dir)
                completion(.success(transcript))
            }
        }
        do {
            try k.execute(pending)
        } catch {
            kernels[id] = nil
            try? FileManager.default.removeItem(atPath: dir)
            completion(.failure(error))
        }
    }

    // MARK: Shutdown

    private func waitForDiskChecks(deadline: UInt64, _ completion: @escaping () -> Void) {
        if diskInFlight == 0 || monotonicNanos() > deadline { return completion() }
        loop.schedule(afterNanos: 10_000_000) { [weak self] in
            guard let self else { return completion() }
            self.waitForDiskChecks(deadline: deadline, completion)
        }
    }

    func shutdownAll(completion: @escaping () -> Void) {
        closing = true
        if let r = reaper { loop.cancelTimer(r) }
        var waiting = 1
        func one() {
            waiting -= 1
            if waiting == 0 { waitForDiskChecks(deadline: monotonicNanos() + 2_000_000_000, completion) }
        }
        for k in kernels.values {
            waiting += 1
            k.shutdown(reason: "server shutting down") { one() }
        }
        for p in live.values {
            waiting += 1
            p.destroy { one() }
        }
        pool = []
        one()
    }
}

@available(*, unavailable)
extension KernelHost: Sendable {}
