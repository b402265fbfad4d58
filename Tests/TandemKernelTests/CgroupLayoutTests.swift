import Testing
@testable import TandemKernel

@Suite struct CgroupLayoutTests {
    static let hybrid = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
    """

    @Test func hybridHost() throws {
        let l = try #require(CgroupLayout.parse(mountinfo: Self.hybrid))
        #expect(l.mode == .hybrid)
        #expect(l.v1["memory"] == "/sys/fs/cgroup/memory")
        #expect(l.v1["systemd"] == "/sys/fs/cgroup/systemd")
        #expect(l.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(l.crunNeedsHiddenUnifiedMount(unifiedControllers: "hugetlb\n"))
        #expect(!l.crunNeedsHiddenUnifiedMount(unifiedControllers: "\n"))
        let d = l.directories(relative: "tandem/k-1")
        #expect(d.version == 1)
        #expect(d.memory == "/sys/fs/cgroup/memory/tandem/k-1")
        #expect(d.cpuacct == "/sys/fs/cgroup/cpuacct/tandem/k-1")
        #expect(l.allDirectories(relative: "x").contains("/sys/fs/cgroup/unified/x"))
    }

    @Test func unifiedHost() throws {
        let text = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
        let l = try #require(CgroupLayout.parse(mountinfo: text))
        #expect(l.mode == .unified)
        #expect(!l.crunNeedsHiddenUnifiedMount(unifiedControllers: "cpu memory pids"))
        let d = l.directories(relative: "tandem/k-2")
        #expect(d.version == 2)
        #expect(d.memory == "/sys/fs/cgroup/tandem/k-2")
        #expect(d.pids == d.memory)
    }

    @Test func legacyHostWithCoMountedControllers() throws {
        let text = """
        25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
        26 20 0:23 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
        """
        let l = try #require(CgroupLayout.parse(mountinfo: text))
        #expect(l.mode == .legacy)
        #expect(l.v1["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(l.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct")
    }

    @Test func noCgroupsAndEscapedMountPoints() {
        #expect(CgroupLayout.parse(mountinfo: "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n") == nil)
        #expect(unescapeMountinfo("/mnt/a\\040b") == "/mnt/a b")
        #expect(unescapeMountinfo("/plain") == "/plain")
    }

    @Test func statFileParsers() {
        let stat = "cache 1\ntotal_inactive_file_x 9\ntotal_inactive_file 4096\ntotal_shmem 123\nbogus\n"
        #expect(CgroupFiles.value(of: "total_inactive_file", in: stat) == 4096)
        #expect(CgroupFiles.value(of: "total_shmem", in: stat) == 123)
        #expect(CgroupFiles.value(of: "bogus", in: stat) == nil)
        #expect(CgroupFiles.value(of: "missing", in: stat) == nil)
        #expect(CgroupFiles.value(of: "oom_kill", in: "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3)
        #expect(CgroupFiles.number("max\n") == nil)
        #expect(CgroupFiles.number("64\n") == 64)
        #expect(CgroupFiles.number("") == nil)
    }
}
