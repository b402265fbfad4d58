// Which cgroup hierarchies the host has, read from /proc/self/mountinfo. Pure: the parser takes
// text, so every layout (v2 unified, v1 legacy, the v1/v2 hybrid) is testable on any machine.

/// The three ways a Linux host mounts cgroups.
public enum CgroupMode: String, Sendable {
    /// cgroup v2 only, at /sys/fs/cgroup.
    case unified
    /// v1 controllers only, each under /sys/fs/cgroup/<controller>.
    case legacy
    /// v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    case hybrid
}

public struct CgroupLayout: Sendable, Equatable {
    public var mode: CgroupMode
    /// v1 controller name → mount point (`memory` → `/sys/fs/cgroup/memory`). Co-mounted
    /// controllers (`cpu,cpuacct`) appear under each name.
    public var v1: [String: String]
    /// Where cgroup2 is mounted, if anywhere.
    public var unifiedMount: String?

    public init(mode: CgroupMode, v1: [String: String], unifiedMount: String?) {
        self.mode = mode
        self.v1 = v1
        self.unifiedMount = unifiedMount
    }

    /// Parses /proc/self/mountinfo. Returns nil when no cgroup file system is mounted.
    public static func parse(mountinfo: String) -> CgroupLayout? {
        var v1: [String: String] = [:]
        var unified: String?
        for line in mountinfo.split(separator: "\n") {
            // "<id> <parent> <dev> <root> <mountpoint> <opts> [optional...] - <fstype> <source> <superopts>"
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let pre = halves[0].split(separator: " ")
            let post = halves[1].split(separator: " ")
            guard pre.count >= 5, post.count >= 3 else { continue }
            let mountPoint = unescapeMountinfo(String(pre[4]))
            switch post[0] {
            case "cgroup2":
                unified = unified ?? mountPoint
            case "cgroup":
                for opt in post[2].split(separator: ",") {
                    let o = String(opt)
                    if ["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children"].contains(o) { continue }
                    if o.hasPrefix("release_agent=") { continue }
                    v1[o.hasPrefix("name=") ? String(o.dropFirst(5)) : o] = mountPoint
                }
            default:
                continue
            }
        }
        if v1.isEmpty, let unified { return CgroupLayout(mode: .unified, v1: [:], unifiedMount: unified) }
        if v1.isEmpty { return nil }
        return CgroupLayout(mode: unified == nil ? .legacy : .hybrid, v1: v1, unifiedMount: unified)
    }

    /// crun (1.8) refuses hybrid hosts whose cgroup2 hierarchy has controllers attached
    /// (`cgroups in hybrid mode not supported, drop all controllers from cgroupv2`). It then has
    /// to run where the cgroup2 mount is hidden: a private mount namespace without it.
    public func crunNeedsHiddenUnifiedMount(unifiedControllers: String) -> Bool {
        mode == .hybrid && !unifiedControllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).isEmpty
    }

    /// The directories of one container's cgroup (`relative` like `tandem/k-1`) per controller,
    /// as the runtime's cgroupfs manager creates them (hybrid hosts use the v1 side).
    public func directories(relative: String) -> CgroupDirectories {
        func join(_ base: String?) -> String? { base.map { $0 + "/" + relative } }
        switch mode {
        case .unified:
            let d = join(unifiedMount)
            return CgroupDirectories(version: 2, memory: d, cpu: d, cpuacct: d, pids: d, freezer: d)
        case .legacy, .hybrid:
            return CgroupDirectories(
                version: 1, memory: join(v1["memory"]), cpu: join(v1["cpu"]), cpuacct: join(v1["cpuacct"]),
                pids: join(v1["pids"]), freezer: join(v1["freezer"]))
        }
    }

    /// Every directory the runtime may create for `relative`, deepest-first removable
    /// (for cleaning up after a crash). On hybrid hosts runc also uses the cgroup2 side.
    public func allDirectories(relative: String) -> [String] {
        var out = Set(v1.values.map { $0 + "/" + relative })
        if let u = unifiedMount { out.insert(u + "/" + relative) }
        return out.sorted()
    }
}

/// One container's cgroup directories; on v2 they are all the same directory.
public struct CgroupDirectories: Sendable, Equatable {
    public var version: Int
    public var memory: String?
    public var cpu: String?
    public var cpuacct: String?
    public var pids: String?
    public var freezer: String?
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
func unescapeMountinfo(_ s: String) -> String {
    guard s.contains("\\") else { return s }
    var bytes: [UInt8] = []
    let u = Array(s.utf8)
    var i = 0
    while i < u.count {
        if u[i] == UInt8(ascii: "\\"), i + 4 <= u.count,
           let v = UInt8(String(decoding: u[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
            bytes.append(v)
            i += 4
        } else {
            bytes.append(u[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
