// The OCI runtime configuration (config.json) of one kernel container, built from the kernel
// spec and the limits. Pure: a value in, JSON out. The shape follows the configuration measured
// in docs/kernels.md (read-only root of host /usr and /etc binds, user namespace, no
// capabilities, hardened seccomp, catatonit as PID 1).
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
import TandemCrypto

/// Per-kernel resource limits.
public struct KernelLimits: Sendable, Equatable {
    public var memoryBytes: Int64
    public var pids: Int64
    public var cpuPercent: Int
    public var tmpBytes: Int64

    public init(memoryBytes: Int64, pids: Int64, cpuPercent: Int, tmpBytes: Int64) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuPercent = cpuPercent
        self.tmpBytes = tmpBytes
    }
}

/// How the seccomp filter reaches the runtime.
public enum SeccompFilter: Sendable, Equatable {
    /// Precompiled BPF (crun's `run.oci.seccomp_bpf_data` annotation): nothing to compile per start.
    case bpf(base64: String)
    /// The OCI JSON profile, compiled by the runtime at every start (runc, and the first crun start).
    case profile(json: String)
}

public struct OCIConfigInput: Sendable {
    public var containerID: String
    /// Shared read-only root skeleton.
    public var rootfs: String
    /// Host directory bound at /workspace; nil for a pool container (mounted at attach time).
    public var workspace: String?
    /// Kernel spec directory, bound read-only at /opt/kernel.
    public var kernelDirectory: String
    /// The driver's argv inside the container (catatonit is put in front).
    public var argv: [String]
    public var env: [String: String]
    public var limits: KernelLimits
    public var uidBase: Int
    /// cgroupsPath, absolute (`/tandem/k-1`).
    public var cgroupPath: String
    public var seccomp: SeccompFilter
    /// Path of catatonit (PID 1).
    public var initPath: String = "/usr/bin/catatonit"

    public init(containerID: String, rootfs: String, workspace: String?, kernelDirectory: String, argv: [String],
                env: [String: String], limits: KernelLimits, uidBase: Int, cgroupPath: String, seccomp: SeccompFilter) {
        self.containerID = containerID
        self.rootfs = rootfs
        self.workspace = workspace
        self.kernelDirectory = kernelDirectory
        self.argv = argv
        self.env = env
        self.limits = limits
        self.uidBase = uidBase
        self.cgroupPath = cgroupPath
        self.seccomp = seccomp
    }
}

/// The kernel's uid and gid inside the container.
public let kernelContainerUID = 1000

/// Directories and symlinks of the shared root skeleton: every mount point must exist in it,
/// because with a user namespace the runtime cannot create them on a read-only root.
public enum RootSkeleton {
    public static let directories = ["usr", "etc", "proc", "dev", "sys", "tmp", "workspace", "opt/kernel"]
    public static let symlinks = [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")]
}

public enum OCIConfig {
    /// Renders config.json.
    public static func render(_ i: OCIConfigInput) throws -> Data {
        var env = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8", "TERM=dumb"]
        for (k, v) in i.env.sorted(by: { $0.key < $1.key }) { env.append("\(k)=\(v)") }
        var mounts: [Mount] = [
            Mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            Mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=16m"]),
            Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            Mount("/usr", "bind", "/usr", ["rbind", "ro", "nosuid", "nodev"]),
            Mount("/etc", "bind", "/etc", ["rbind", "ro", "nosuid", "nodev"]),
            Mount("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=1777", "size=\(max(1, i.limits.tmpBytes / 1024))k"]),
            Mount("/opt/kernel", "bind", i.kernelDirectory, ["rbind", "ro", "nosuid", "nodev"]),
        ]
        if let ws = i.workspace {
            mounts.append(Mount("/workspace", "bind", ws, ["rbind", "rw", "nosuid", "nodev"]))
        }
        let caps = Capabilities()
        let idMap = [IDMapping(containerID: 0, hostID: i.uidBase, size: 65536)]
        let periodMicros = 100_000
        var annotations: [String: String] = [:]
        var seccompProfile: RawJSON?
        switch i.seccomp {
        case .bpf(let b64): annotations["run.oci.seccomp_bpf_data"] = b64
        case .profile(let json): seccompProfile = try RawJSON(text: json)
        }
        let config = Config(
            ociVersion: "1.0.2",
            process: Process(
                terminal: false,
                user: User(uid: kernelContainerUID, gid: kernelContainerUID, additionalGids: []),
                args: [i.initPath, "--"] + i.argv,
                env: env, cwd: "/workspace", capabilities: caps,
                rlimits: [Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024), Rlimit(type: "RLIMIT_CORE", hard: 0, soft: 0)],
                noNewPrivileges: true),
            root: Root(path: i.rootfs, readonly: true),
            hostname: "kernel",
            mounts: mounts,
            linux: Linux(
                namespaces: ["pid", "network", "ipc", "uts", "mount", "cgroup", "user"].map { Namespace(type: $0) },
                uidMappings: idMap, gidMappings: idMap,
                cgroupsPath: i.cgroupPath,
                resources: Resources(
                    devices: [DeviceRule(allow: false, access: "rwm")],
                    memory: Memory(limit: i.limits.memoryBytes, swap: i.limits.memoryBytes),
                    pids: Pids(limit: i.limits.pids),
                    cpu: CPU(quota: Int64(i.limits.cpuPercent * periodMicros / 100), period: periodMicros)),
                maskedPaths: [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
                ],
                readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
                seccomp: seccompProfile),
            annotations: annotations)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(config)
    }

    // MARK: The subset of the OCI runtime spec we emit.

    struct Config: Encodable {
        var ociVersion: String
        var process: Process
        var root: Root
        var hostname: String
        var mounts: [Mount]
        var linux: Linux
        var annotations: [String: String]
    }
    struct Process: Encodable {
        var terminal: Bool
        var user: User
        var args: [String]
        var env: [String]
        var cwd: String
        var capabilities: Capabilities
        var rlimits: [Rlimit]
        var noNewPrivileges: Bool
    }
    struct User: Encodable { var uid: Int; var gid: Int; var additionalGids: [Int] }
    struct Capabilities: Encodable {
        var bounding: [String] = []
        var effective: [String] = []
        var inheritable: [String] = []
        var permitted: [String] = []
        var ambient: [String] = []
    }
    struct Rlimit: Encodable { var type: String; var hard: Int; var soft: Int }
    struct Root: Encodable { var path: String; var readonly: Bool }
    struct Mount: Encodable {
        var destination: String
        var type: String
        var source: String
        var options: [String]
        init(_ destination: String, _ type: String, _ source: String, _ options: [String]) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }
    struct Namespace: Encodable { var type: String }
    struct IDMapping: Encodable { var containerID: Int; var hostID: Int; var size: Int }
    struct Linux: Encodable {
        var namespaces: [Namespace]
        var uidMappings: [IDMapping]
        var gidMappings: [IDMapping]
        var cgroupsPath: String
        var resources: Resources
        var maskedPaths: [String]
        var readonlyPaths: [String]
        var seccomp: RawJSON?
    }
    struct Resources: Encodable {
        var devices: [DeviceRule]
        var memory: Memory
        var pids: Pids
        var cpu: CPU
    }
    struct DeviceRule: Encodable { var allow: Bool; var access: String }
    struct Memory: Encodable { var limit: Int64; var swap: Int64 }
    struct Pids: Encodable { var limit: Int64 }
    struct CPU: Encodable { var quota: Int64; var period: Int }
}

/// A JSON value passed through as it is (the seccomp profile file): decoded into a generic tree
/// so it is re-encoded exactly, whatever keys the profile uses.
struct RawJSON: Encodable {
    let value: JSONValue
    init(text: String) throws {
        value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        guard case .object(let o) = value, o["defaultAction"] != nil else {
            throw KernelError(.configuration, "the seccomp profile is not an OCI profile object with a defaultAction")
        }
    }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

