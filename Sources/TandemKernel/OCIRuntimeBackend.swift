// The default backend: containers through an OCI runtime (crun; runc as the fallback), driven
// directly with no daemon. One generated config.json per kernel, a shared read-only root
// skeleton, the hardened seccomp profile compiled to BPF once, `run --detach` + `delete -f`.
// docs/kernels.md explains each choice and the measurements behind it.
import CTandemSystem
public import Logging
import TandemCrypto
public import TandemLoop
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

public struct OCIBackendSettings: Sendable {
    public var runtime: String
    public var stateDir: String
    public var cgroupParent: String
    public var uidBase: Int
    public var seccompProfile: String

    public init(runtime: String, stateDir: String, cgroupParent: String, uidBase: Int, seccompProfile: String) {
        self.runtime = runtime
        self.stateDir = stateDir
        self.cgroupParent = cgroupParent
        self.uidBase = uidBase
        self.seccompProfile = seccompProfile
    }
}

/// What `prepare` found out about the host.
public struct HostReport: Sendable {
    public var runtime: String
    public var runtimeVersion: String
    public var cgroupMode: CgroupMode
    public var privateMountNamespace: Bool
    public var seccomp: String
}

public final class OCIRuntimeBackend: ContainerBackend {
    public let name: String
    public var supportsAttach: Bool { true }
    public var isolated: Bool { true }

    private let settings: OCIBackendSettings
    private let loop: Loop
    private let logger: Logger
    private let runtimePath: String
    private let isCrun: Bool
    private let layout: CgroupLayout
    /// A mount namespace without the cgroup2 mount, for crun on hybrid hosts (-1 when not needed).
    private let mountNamespace: Int32
    private let rootfs: String
    private var seccomp: SeccompFilter = .profile(json: "{}")
    public private(set) var report: HostReport

    private var runtimeRoot: String { settings.stateDir + "/runtime" }
    private var bundles: String { settings.stateDir + "/bundles" }

    /// Checks the host and prepares everything shared by all kernels. Blocking (start-up only).
    public init(settings: OCIBackendSettings, loop: Loop, logger: Logger) throws(KernelError) {
        self.settings = settings
        self.loop = loop
        self.logger = logger
        guard geteuid() == 0 else {
            throw KernelError(.unavailable, "the oci kernel backend needs root (user namespaces, cgroups, mounts); run as root or set kernels.backend = \"unsafe-host\" for development")
        }
        guard let rt = findExecutable(settings.runtime) else {
            throw KernelError(.unavailable, "OCI runtime \"\(settings.runtime)\" not found (apt install crun)")
        }
        runtimePath = rt
        guard findExecutable("/usr/bin/catatonit") != nil else {
            throw KernelError(.unavailable, "/usr/bin/catatonit not found (apt install catatonit): kernels need it as PID 1")
        }
        let version = runBlocking([rt, "--version"]).output.split(separator: "\n").first.map(String.init) ?? "?"
        isCrun = version.hasPrefix("crun")
        name = isCrun ? "crun" : "runc"
        guard let mountinfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
              let layout = CgroupLayout.parse(mountinfo: mountinfo) else {
            throw KernelError(.unavailable, "no cgroup file system is mounted")
        }
        self.layout = layout
        var needsNamespace = false
        if isCrun, let u = layout.unifiedMount {
            let controllers = (try? String(contentsOfFile: u + "/cgroup.controllers", encoding: .utf8)) ?? ""
            needsNamespace = layout.crunNeedsHiddenUnifiedMount(unifiedControllers: controllers)
        }
        if needsNamespace, let u = layout.unifiedMount {
            let fd = ctandem_mount_ns_without(u)
            guard fd >= 0 else {
                throw KernelError(.unavailable, "cannot create a mount namespace without \(u): \(String(cString: strerror(-fd)))")
            }
            mountNamespace = fd
        } else {
            mountNamespace = -1
        }
        rootfs = settings.stateDir + "/rootfs"
        report = HostReport(runtime: rt, runtimeVersion: version, cgroupMode: layout.mode,
                            privateMountNamespace: needsNamespace, seccomp: "")
        _ = ctandem_set_child_subreaper()
        try makeDirectories()
        reconcile()
        try prepareSeccomp()
        logger.info("kernel backend ready", metadata: [
            "runtime": "\(version)", "cgroups": "\(layout.mode.rawValue)",
            "hiddenCgroup2": "\(needsNamespace)", "seccomp": "\(report.seccomp)",
        ])
    }

    deinit {
        if mountNamespace >= 0 { _ = ctandem_close(mountNamespace) }
    }

    private func runtime(_ args: [String], log: String? = nil) -> [String] {
        var argv = [runtimePath, "--root", runtimeRoot]
        if let log { argv += ["--log", log] }
        if isCrun { argv.append("--cgroup-manager=cgroupfs") }
        return argv + args
    }

    // MARK: Start-up

    private func makeDirectories() throws(KernelError) {
        let fm = FileManager.default
        do {
            for d in [settings.stateDir, runtimeRoot, bundles, settings.stateDir + "/seccomp"] {
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
            }
            for d in RootSkeleton.directories {
                try fm.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            }
            for (link, target) in RootSkeleton.symlinks where (try? fm.destinationOfSymbolicLink(atPath: rootfs + "/" + link)) != target {
                try? fm.removeItem(atPath: rootfs + "/" + link)
                try fm.createSymbolicLink(atPath: rootfs + "/" + link, withDestinationPath: target)
            }
        } catch {
            throw KernelError(.unavailable, "cannot prepare \(settings.stateDir): \(error)")
        }
    }

    /// Removes containers, bundles and cgroups a previous run left behind (after a crash).
    private func reconcile() {
        let listed = runBlocking(runtime(["list", "-q"]))
        var removed = 0
        if listed.exit.succeeded {
            for id in listed.output.split(separator: "\n") where !id.isEmpty {
                _ = runBlocking(runtime(["delete", "-f", String(id)]), mountNamespace: mountNamespace)
                removed += 1
            }
        }
        if let items = try? FileManager.default.contentsOfDirectory(atPath: bundles) {
            for b in items { try? FileManager.default.removeItem(atPath: bundles + "/" + b) }
        }
        for parent in layout.allDirectories(relative: settings.cgroupParent) {
            if let children = try? FileManager.default.contentsOfDirectory(atPath: parent) {
                for c in children where c.hasPrefix("k-") || c.hasPrefix("seccomp-") { rmdir(parent + "/" + c) }
            }
        }
        if removed > 0 { logger.warning("removed kernel containers left by an earlier run", metadata: ["count": "\(removed)"]) }
    }

    /// crun: compile the JSON profile once (by creating a throwaway container and keeping the
    /// BPF crun writes), cached by the profile's and runtime's hash. runc: the JSON, every start.
    private func prepareSeccomp() throws(KernelError) {
        guard let profile = try? String(contentsOfFile: settings.seccompProfile, encoding: .utf8) else {
            throw KernelError(.configuration, "seccomp profile \(settings.seccompProfile) cannot be read")
        }
        guard isCrun else {
            seccomp = .profile(json: profile)
            report.seccomp = "json profile, compiled by runc at every start"
            return
        }
        let key = Hex.encode(Digest.sha256(Array((profile + report.runtimeVersion).utf8))).prefix(16)
        let cache = settings.stateDir + "/seccomp/\(key).bpf"
        if let bpf = FileManager.default.contents(atPath: cache), !bpf.isEmpty {
            seccomp = .bpf(base64: Base64.encode(Array(bpf)))
            report.seccomp = "precompiled BPF (\(bpf.count) bytes, cached)"
            return
        }
        let id = "seccomp-\(getpid())"
        let bundle = bundles + "/" + id
        defer {
            _ = runBlocking(runtime(["delete", "-f", id]), mountNamespace: mountNamespace)
            // The container's init was re-parented to us (subreaper): reap it.
            if let text = try? String(contentsOfFile: bundle + "/pid", encoding: .utf8), let pid = CgroupFiles.number(text).map({ Int32($0) }) {
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
            }
            try? FileManager.default.removeItem(atPath: bundle)
        }
        let input = OCIConfigInput(
            containerID: id, rootfs: rootfs, workspace: nil, kernelDirectory: rootfs, argv: ["/usr/bin/true"], env: [:],
            limits: KernelLimits(memoryBytes: 64 << 20, pids: 8, cpuPercent: 100, tmpBytes: 1 << 20),
            uidBase: settings.uidBase, cgroupPath: "/\(settings.cgroupParent)/\(id)", seccomp: .profile(json: profile))
        do {
            try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
            try OCIConfig.render(input).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        } catch {
            throw KernelError(.configuration, "seccomp compile bundle: \(error)")
        }
        let r = runBlocking(runtime(["create", "--bundle", bundle, "--pid-file", bundle + "/pid", id], log: bundle + "/runtime.log"),
                            mountNamespace: mountNamespace, capture: false)
        let bpfPath = runtimeRoot + "/" + id + "/seccomp.bpf"
        guard r.exit.succeeded, let bpf = FileManager.default.contents(atPath: bpfPath), !bpf.isEmpty else {
            let log = (try? String(contentsOfFile: bundle + "/runtime.log", encoding: .utf8)) ?? r.output
            throw KernelError(.unavailable, "compiling the seccomp profile with \(name) failed: \(log.suffix(400))")
        }
        _ = FileManager.default.createFile(atPath: cache, contents: bpf)
        seccomp = .bpf(base64: Base64.encode(Array(bpf)))
        report.seccomp = "precompiled BPF (\(bpf.count) bytes)"
    }

    // MARK: Kernels

    /// The kernel runs as container uid 1000 = host uid `uidBase + 1000`; the workspace must be
    /// writable by it. Called only while no container has the workspace mounted.
    private func claimWorkspace(_ path: String) throws(KernelError) {
        let uid = uid_t(settings.uidBase + kernelContainerUID)
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw KernelError(.invalidRequest, "workspace directory \(path) does not exist")
        }
        if st.st_uid == uid { return }
        // First claim: hand the whole tree to the kernel user. lchown, and descent only into real
        // directories (lstat): a symbolic link is never followed.
        func walk(_ dir: String, depth: Int) {
            guard depth < 64, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for n in names {
                let p = dir + "/" + n
                var s = stat()
                guard lstat(p, &s) == 0 else { continue }
                _ = lchown(p, uid, uid)
                if (s.st_mode & S_IFMT) == S_IFDIR { walk(p, depth: depth + 1) }
            }
        }
        walk(path, depth: 0)
        _ = lchown(path, uid, uid)
    }

    public func launch(_ request: LaunchRequest, completion: @escaping (Result<ContainerHandle, KernelError>) -> Void) {
        let id = request.containerID
        let bundle = bundles + "/" + id
        do {
            if let ws = request.workspace { try claimWorkspace(ws) }
            let input = OCIConfigInput(
                containerID: id, rootfs: rootfs, workspace: request.workspace, kernelDirectory: request.spec.directory,
                argv: request.spec.argv, env: request.spec.env, limits: request.limits, uidBase: settings.uidBase,
                cgroupPath: "/\(settings.cgroupParent)/\(id)", seccomp: seccomp)
            try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
            try OCIConfig.render(input).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        } catch let e as KernelError {
            return completion(.failure(e))
        } catch {
            return completion(.failure(KernelError(.startFailed, "cannot write the bundle: \(error)")))
        }
        // Pipes: the container gets stdin (read), stdout, stderr and fd 3 (write); we keep the other ends.
        var pin: [Int32] = [-1, -1], pout: [Int32] = [-1, -1], perr: [Int32] = [-1, -1], pev: [Int32] = [-1, -1]
        guard ctandem_pipe(&pin, 0, 1) == 0, ctandem_pipe(&pout, 1, 0) == 0, ctandem_pipe(&perr, 1, 0) == 0,
              ctandem_pipe(&pev, 1, 0) == 0 else {
            for fd in pin + pout + perr + pev where fd >= 0 { _ = ctandem_close(fd) }
            return completion(.failure(KernelError(.startFailed, "cannot create pipes")))
        }
        let ours = (stdin: pin[1], stdout: pout[0], stderr: perr[0], events: pev[0])
        let theirs = [pin[0], pout[1], perr[1], pev[1]]
        func fail(_ e: KernelError) {
            for fd in [ours.stdin, ours.stdout, ours.stderr, ours.events] { _ = ctandem_close(fd) }
            CapturedRun.start(runtime(["delete", "-f", id]), loop: loop, mountNamespace: mountNamespace) { _, _, _ in
                try? FileManager.default.removeItem(atPath: bundle)
            }
            completion(.failure(e))
        }
        let log = bundle + "/runtime.log"
        // `run --detach` = create + start in one runtime process (one exec fewer than the two
        // commands: ~10 ms of the cold start). The runtime exits once the driver runs; its init
        // is then re-parented to us (subreaper), and we reap it.
        let run = runtime(["run", "--detach", "--bundle", bundle, "--pid-file", bundle + "/pid", "--preserve-fds", "1", id], log: log)
        let spawned: (pid: Int32, pidfd: Int32)
        do {
            spawned = try spawnProcess(run, fds: theirs, mountNamespace: mountNamespace)
        } catch {
            for fd in theirs { _ = ctandem_close(fd) }
            return fail(error)
        }
        for fd in theirs { _ = ctandem_close(fd) }
        var runWatch: ExitWatch?
        runWatch = ExitWatch(loop: loop, pid: spawned.pid, pidfd: spawned.pidfd) { [self] exit in
            runWatch = nil
            reapStrayRuntimeProcesses(names: ["crun", "runc"])
            guard exit.succeeded,
                  let pidText = try? String(contentsOfFile: bundle + "/pid", encoding: .utf8),
                  let pid = CgroupFiles.number(pidText).map({ Int32($0) }) else {
                let why = (try? String(contentsOfFile: log, encoding: .utf8)) ?? exit.description
                return fail(KernelError(.startFailed, "\(name) run: \(why.suffix(400))"))
            }
            let handle = ContainerHandle(
                containerID: id, pid: pid, pidfd: ctandem_pidfd_open(pid), stdin: ours.stdin, stdout: ours.stdout,
                stderr: ours.stderr, events: ours.events,
                cgroup: layout.directories(relative: "\(settings.cgroupParent)/\(id)"),
                bundle: bundle, workspace: request.workspace)
            completion(.success(handle))
        }
        _ = runWatch
    }

    public func attach(_ container: ContainerHandle, workspace: String) throws(KernelError) {
        try claimWorkspace(workspace)
        let r = ctandem_attach_mount(workspace, container.pid, "/workspace")
        guard r == 0 else {
            throw KernelError(.startFailed, "cannot mount the workspace into \(container.containerID): \(String(cString: strerror(-r)))")
        }
        container.workspace = workspace
    }

    public func interrupt(_ container: ContainerHandle) {
        // kill(2) to the container's init (catatonit forwards it): no runtime process to spawn.
        _ = kill(container.pid, SIGINT)
    }

    public func destroy(_ container: ContainerHandle, completion: @escaping () -> Void) {
        let id = container.containerID
        let bundle = container.bundle
        let dirs = layout.allDirectories(relative: "\(settings.cgroupParent)/\(id)")
        CapturedRun.start(runtime(["delete", "-f", id]), loop: loop, mountNamespace: mountNamespace) { [logger] exit, _, err in
            if !exit.succeeded && !err.contains("does not exist") {
                logger.warning("runtime delete failed", metadata: ["container": "\(id)", "error": "\(err.suffix(300))"])
            }
            for d in dirs { rmdir(d) }
            if let bundle { try? FileManager.default.removeItem(atPath: bundle) }
            reapStrayRuntimeProcesses(names: ["crun", "runc"])
            completion()
        }
    }
}
