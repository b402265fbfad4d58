// Tandem's configuration: typed sections with embedded defaults that run on localhost with no
// file at all; a TOML or JSON file, then `TANDEM_*` environment variables, then command-line
// flags override them, in that order.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public struct TandemConfiguration: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        /// Address to listen on (numeric IPv4 or IPv6).
        public var host = "127.0.0.1"
        public var port = 8080
        /// Event loops (threads); 0 means one per core.
        public var loops = 0
        /// Data root: one directory per workspace, plus metadata.
        public var data = "workspaces"
        /// Directory served as the web client.
        public var web = "web"
        /// Serve the `/echo` WebSocket endpoint (for conformance suites and load generators).
        public var echo = false
        public var maxConnections = 10_000
        /// Origins allowed to open WebSockets; empty means "the server's own origin only".
        public var allowedOrigins: [String] = []
    }

    public struct TLS: Sendable, Equatable {
        /// PEM certificate chain; TLS is on when both paths are set.
        public var certificate = ""
        public var privateKey = ""
        public var enabled: Bool { !certificate.isEmpty && !privateKey.isEmpty }
    }

    public struct Limits: Sendable, Equatable {
        public var maxRequestLine = 8 * 1024
        public var maxHeaderBytes = 32 * 1024
        public var maxHeaderCount = 100
        public var maxBodySize = 16 * 1024 * 1024
        /// Largest WebSocket frame payload (1009 beyond it).
        public var maxFrameSize = 16 * 1024 * 1024
        /// Largest reassembled (and decompressed) message (1009 beyond it).
        public var maxMessageSize = 16 * 1024 * 1024
        /// Seconds to receive a complete request head (and TLS handshake): slowloris defence.
        public var headerTimeout = 10.0
        /// Seconds an HTTP keep-alive connection may sit idle.
        public var httpIdleTimeout = 30.0
        /// Seconds a WebSocket may be silent before it is closed (pings keep live peers alive).
        public var idleTimeout = 300.0
        /// Seconds to wait for the peer's close frame after ours.
        public var closeTimeout = 5.0
        public var writeHighWatermark = 1024 * 1024
        public var writeLowWatermark = 256 * 1024
    }

    public struct WebSocket: Sendable, Equatable {
        /// Seconds between keepalive pings on a quiet connection; 0 disables them.
        public var pingInterval = 30.0
        /// Seconds to wait for the pong before closing with 1011... (1001 going away).
        public var pingTimeout = 20.0
    }

    public struct Compression: Sendable, Equatable {
        public var enabled = true
        public var maxWindowBits = 15
        public var clientMaxWindowBits = 15
        public var memLevel = 8
        public var level = 6
        public var noContextTakeover = false
        public var minSize = 32
    }

    public struct Log: Sendable, Equatable {
        /// trace, debug, info, notice, warning, error, critical
        public var level = "info"
        /// "auto" (text on a terminal, JSON otherwise), "text" or "json"
        public var format = "auto"
    }

    /// Workspace kernels: persistent interpreters in containers (see docs/kernels.md).
    public struct Kernels: Sendable, Equatable {
        /// "oci": an OCI runtime (crun, runc) with namespaces, cgroups and seccomp. "unsafe-host":
        /// the driver runs as a plain host process with no isolation (development only; loud).
        public var backend = "oci"
        /// The OCI runtime: a name on PATH or a path ("crun", or "runc" as the fallback).
        public var runtime = "crun"
        /// Directory of kernel specs (`NAME/kernel.json` + the driver).
        public var specs = "config/kernels"
        public var defaultKernel = "python3"
        /// OCI seccomp profile (JSON); compiled to BPF once and cached in `stateDir`.
        public var seccompProfile = "config/seccomp/tandem.json"
        /// Bundles, the shared root skeleton, the runtime's state and the BPF cache.
        public var stateDir = "/run/tandem"
        /// cgroup directory under which each kernel gets its own (`/<cgroupParent>/<id>`).
        public var cgroupParent = "tandem"
        /// Container uid/gid 0 maps to this host id (65536 ids); the kernel runs as uid 1000.
        public var uidBase = 100_000
        /// Per kernel: memory including /tmp (no swap), processes and threads, CPU in percent of one core.
        public var memoryMB = 512
        public var pids = 128
        public var cpuPercent = 100
        /// Size of the kernel's /tmp (a tmpfs; it counts toward memoryMB).
        public var tmpMB = 64
        /// Disk a workspace may use; executions are refused while it is over (0 = unlimited).
        public var diskQuotaMB = 1024
        /// Kernels running at once on this host (pool containers included).
        public var maxKernels = 32
        /// Started containers kept waiting for a workspace, for fast first attach.
        public var poolSize = 2
        /// Seconds without executions after which a kernel is stopped.
        public var idleTimeout = 1800.0
        /// Resource samples per second pushed to watchers (0.1...10).
        public var statsHz = 2.0
        /// Largest code of one execution, in bytes.
        public var maxCodeBytes = 1024 * 1024
        /// Executions queued per kernel beyond the running one.
        public var maxQueue = 64
        /// Output a kernel may stream per second; beyond it output is dropped and the gap reported.
        public var outputRateBytes = 4 * 1024 * 1024
        /// Bytes of recent events (mostly output) each kernel keeps for replay to late joiners.
        public var replayBytes = 8 * 1024 * 1024
        /// Seconds a one-shot run may take (hard timeout), at most.
        public var runTimeout = 30.0

        public init() {}
    }

    /// Workspaces: where they come from, file limits, per-client buffering, sessions.
    public struct Workspaces: Sendable, Equatable {
        /// Templates: one directory per template, copied into new workspaces.
        public var templates = "config/templates"
        /// Local directories whose git repositories (file:// URLs, paths) may be cloned.
        public var cloneRoots: [String] = []
        /// Allow cloning http:// and https:// git URLs (off by default: it lets users make the
        /// server fetch any URL it can reach, internal ones included).
        public var allowNetworkClone = false
        /// Largest file read or written through the protocol or REST.
        public var maxFileBytes = 16 * 1024 * 1024
        /// Kernel output buffered for one slow client before it gets a gap instead.
        public var clientBufferBytes = 1024 * 1024
        /// Lifetime of a browser session cookie.
        public var sessionHours = 24.0

        public init() {}
    }

    /// Per-user limits.
    public struct Quotas: Sendable, Equatable {
        public var kernelsPerUser = 8
        public var executionsPerDay = 20_000
        public var cpuSecondsPerDay = 36_000

        public init() {}
    }

    /// The audit log (docs/audit.md): keyed digests only, hash chain, signed tree heads.
    public struct Audit: Sendable, Equatable {
        public var enabled = true
        /// Record file paths and workspace names as keyed digests instead of in clear.
        public var hashIdentifiers = false
        /// Days of entries to keep; older ones are pruned at start (below a signed tree head,
        /// so the rest still verifies). 0 keeps everything.
        public var retentionDays = 0

        public init() {}
    }

    public var server = Server()
    public var tls = TLS()
    public var limits = Limits()
    public var websocket = WebSocket()
    public var compression = Compression()
    public var log = Log()
    public var kernels = Kernels()
    public var workspaces = Workspaces()
    public var quotas = Quotas()
    public var audit = Audit()

    public init() {}

    /// One setting: its dotted name, how to read it and how to show it.
    public struct Key: Sendable {
        public let name: String
        let get: @Sendable (TandemConfiguration) -> ConfigValue
        let set: @Sendable (inout TandemConfiguration, ConfigValue) -> Bool

        /// The environment variable that overrides it: `server.maxConnections` → `TANDEM_SERVER_MAX_CONNECTIONS`.
        public var environmentName: String {
            var out = "TANDEM_"
            for c in name {
                if c == "." { out += "_" } else if c.isUppercase { out += "_" + String(c) } else { out += c.uppercased() }
            }
            return out
        }
    }

    private static func key<T: Sendable>(_ name: String, _ path: any WritableKeyPath<TandemConfiguration, T> & Sendable) -> Key {
        Key(
            name: name,
            get: { c in
                switch c[keyPath: path] {
                case let v as String: return .string(v)
                case let v as Int: return .integer(v)
                case let v as Double: return .double(v)
                case let v as Bool: return .bool(v)
                case let v as [String]: return .array(v.map { .string($0) })
                default: fatalError("unsupported config type for \(name)")
                }
            },
            set: { c, value in
                switch (T.self, value) {
                case (is String.Type, .string(let s)): c[keyPath: path] = s as! T
                case (is Int.Type, .integer(let i)): c[keyPath: path] = i as! T
                case (is Double.Type, .double(let d)): c[keyPath: path] = d as! T
                case (is Double.Type, .integer(let i)): c[keyPath: path] = Double(i) as! T
                case (is Bool.Type, .bool(let b)): c[keyPath: path] = b as! T
                case (is [String].Type, .array(let a)):
                    var strings: [String] = []
                    for v in a { guard case .string(let s) = v else { return false }; strings.append(s) }
                    c[keyPath: path] = strings as! T
                default: return false
                }
                return true
            })
    }

    /// Every setting, in documentation order.
    public static let keys: [Key] = [
        key("server.host", \.server.host), key("server.port", \.server.port), key("server.loops", \.server.loops),
        key("server.data", \.server.data), key("server.web", \.server.web), key("server.echo", \.server.echo),
        key("server.maxConnections", \.server.maxConnections), key("server.allowedOrigins", \.server.allowedOrigins),
        key("tls.certificate", \.tls.certificate), key("tls.privateKey", \.tls.privateKey),
        key("limits.maxRequestLine", \.limits.maxRequestLine), key("limits.maxHeaderBytes", \.limits.maxHeaderBytes),
        key("limits.maxHeaderCount", \.limits.maxHeaderCount), key("limits.maxBodySize", \.limits.maxBodySize),
        key("limits.maxFrameSize", \.limits.maxFrameSize), key("limits.maxMessageSize", \.limits.maxMessageSize),
        key("limits.headerTimeout", \.limits.headerTimeout), key("limits.httpIdleTimeout", \.limits.httpIdleTimeout),
        key("limits.idleTimeout", \.limits.idleTimeout), key("limits.closeTimeout", \.limits.closeTimeout),
        key("limits.writeHighWatermark", \.limits.writeHighWatermark), key("limits.writeLowWatermark", \.limits.writeLowWatermark),
        key("websocket.pingInterval", \.websocket.pingInterval), key("websocket.pingTimeout", \.websocket.pingTimeout),
        key("compression.enabled", \.compression.enabled), key("compression.maxWindowBits", \.compression.maxWindowBits),
        key("compression.clientMaxWindowBits", \.compression.clientMaxWindowBits), key("compression.memLevel", \.compression.memLevel),
        key("compression.level", \.compression.level), key("compression.noContextTakeover", \.compression.noContextTakeover),
        key("compression.minSize", \.compression.minSize),
        key("log.level", \.log.level), key("log.format", \.log.format),
        key("kernels.backend", \.kernels.backend), key("kernels.runtime", \.kernels.runtime),
        key("kernels.specs", \.kernels.specs), key("kernels.defaultKernel", \.kernels.defaultKernel),
        key("kernels.seccompProfile", \.kernels.seccompProfile), key("kernels.stateDir", \.kernels.stateDir),
        key("kernels.cgroupParent", \.kernels.cgroupParent), key("kernels.uidBase", \.kernels.uidBase),
        key("kernels.memoryMB", \.kernels.memoryMB), key("kernels.pids", \.kernels.pids),
        key("kernels.cpuPercent", \.kernels.cpuPercent), key("kernels.tmpMB", \.kernels.tmpMB),
        key("kernels.diskQuotaMB", \.kernels.diskQuotaMB), key("kernels.maxKernels", \.kernels.maxKernels),
        key("kernels.poolSize", \.kernels.poolSize), key("kernels.idleTimeout", \.kernels.idleTimeout),
        key("kernels.statsHz", \.kernels.statsHz), key("kernels.maxCodeBytes", \.kernels.maxCodeBytes),
        key("kernels.maxQueue", \.kernels.maxQueue), key("kernels.outputRateBytes", \.kernels.outputRateBytes),
        key("kernels.replayBytes", \.kernels.replayBytes), key("kernels.runTimeout", \.kernels.runTimeout),
        key("workspaces.templates", \.workspaces.templates), key("workspaces.cloneRoots", \.workspaces.cloneRoots),
        key("workspaces.allowNetworkClone", \.workspaces.allowNetworkClone), key("workspaces.maxFileBytes", \.workspaces.maxFileBytes),
        key("workspaces.clientBufferBytes", \.workspaces.clientBufferBytes), key("workspaces.sessionHours", \.workspaces.sessionHours),
        key("quotas.kernelsPerUser", \.quotas.kernelsPerUser), key("quotas.executionsPerDay", \.quotas.executionsPerDay),
        key("quotas.cpuSecondsPerDay", \.quotas.cpuSecondsPerDay),
        key("audit.enabled", \.audit.enabled), key("audit.hashIdentifiers", \.audit.hashIdentifiers),
        key("audit.retentionDays", \.audit.retentionDays),
    ]

    /// Applies flat dotted settings; unknown keys and wrong types are errors that name the key.
    public mutating func apply(_ values: [String: ConfigValue], source: String) throws(ConfigError) {
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let k = Self.keys.first(where: { $0.name == name }) else {
                throw ConfigError("\(source): unknown setting '\(name)'")
            }
            guard k.set(&self, value) else {
                throw ConfigError("\(source): '\(name)' expects a value like \(k.get(TandemConfiguration())), got \(value)")
            }
        }
    }

    /// Applies `TANDEM_*` variables from `environment`.
    public mutating func applyEnvironment(_ environment: [String: String]) throws(ConfigError) {
        for k in Self.keys {
            guard let raw = environment[k.environmentName] else { continue }
            guard let v = ConfigValue.parse(raw, like: k.get(self)), k.set(&self, v) else {
                throw ConfigError("\(k.environmentName): cannot read '\(raw)' as a value like \(k.get(TandemConfiguration()))")
            }
        }
    }

    /// Checks ranges and relations between settings.
    public func validate() throws(ConfigError) {
        func check(_ ok: Bool, _ message: String) throws(ConfigError) { if !ok { throw ConfigError(message) } }
        try check((0...65535).contains(server.port), "server.port must be 0...65535")
        try check(server.loops >= 0 && server.loops <= 256, "server.loops must be 0...256")
        try check(server.maxConnections > 0, "server.maxConnections must be positive")
        try check(limits.maxFrameSize > 0 && limits.maxMessageSize > 0, "limits.maxFrameSize and maxMessageSize must be positive")
        try check(limits.writeLowWatermark < limits.writeHighWatermark, "limits.writeLowWatermark must be below writeHighWatermark")
        try check((8...15).contains(compression.maxWindowBits), "compression.maxWindowBits must be 8...15")
        try check((8...15).contains(compression.clientMaxWindowBits), "compression.clientMaxWindowBits must be 8...15")
        try check((1...9).contains(compression.memLevel), "compression.memLevel must be 1...9")
        try check((0...9).contains(compression.level), "compression.level must be 0...9")
        try check(tls.certificate.isEmpty == tls.privateKey.isEmpty, "tls.certificate and tls.privateKey go together")
        try check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(log.level), "log.level must be trace, debug, info, notice, warning, error or critical")
        try check(["auto", "text", "json"].contains(log.format), "log.format must be auto, text or json")
        try check(["oci", "unsafe-host"].contains(kernels.backend), "kernels.backend must be oci or unsafe-host")
        try check(kernels.memoryMB >= 32, "kernels.memoryMB must be at least 32")
        try check(kernels.pids >= 8, "kernels.pids must be at least 8")
        try check((1...6400).contains(kernels.cpuPercent), "kernels.cpuPercent must be 1...6400")
        try check(kernels.tmpMB >= 1 && kernels.tmpMB < kernels.memoryMB, "kernels.tmpMB must be 1...memoryMB-1")
        try check(kernels.diskQuotaMB >= 0, "kernels.diskQuotaMB must be 0 (unlimited) or positive")
        try check(kernels.maxKernels >= 1, "kernels.maxKernels must be positive")
        try check(kernels.poolSize >= 0 && kernels.poolSize <= kernels.maxKernels, "kernels.poolSize must be 0...maxKernels")
        try check(kernels.idleTimeout > 0, "kernels.idleTimeout must be positive")
        try check(kernels.statsHz >= 0.1 && kernels.statsHz <= 10, "kernels.statsHz must be 0.1...10")
        try check(kernels.uidBase >= 1 && kernels.uidBase <= 4_294_901_759, "kernels.uidBase must leave room for 65536 ids")
        try check(kernels.maxCodeBytes > 0 && kernels.maxQueue > 0, "kernels.maxCodeBytes and maxQueue must be positive")
        try check(kernels.outputRateBytes >= 1024, "kernels.outputRateBytes must be at least 1024")
        try check(kernels.replayBytes >= 0, "kernels.replayBytes must not be negative")
        try check(kernels.runTimeout > 0, "kernels.runTimeout must be positive")
        try check(workspaces.maxFileBytes > 0 && workspaces.clientBufferBytes >= 64 * 1024, "workspaces.maxFileBytes must be positive and clientBufferBytes at least 65536")
        try check(workspaces.sessionHours > 0, "workspaces.sessionHours must be positive")
        try check(audit.retentionDays >= 0, "audit.retentionDays must be 0 (keep all) or positive")
        try check(quotas.kernelsPerUser > 0 && quotas.executionsPerDay > 0 && quotas.cpuSecondsPerDay > 0, "quotas must be positive")
        try check(!kernels.cgroupParent.isEmpty && !kernels.cgroupParent.contains(".."), "kernels.cgroupParent must be a plain relative path")
    }

    /// Loads the embedded defaults, then `file` (TOML, or JSON when it ends in `.json`), then
    /// the environment; validates the result.
    public static func load(file: String?, contents: [UInt8]?, environment: [String: String]) throws(ConfigError) -> TandemConfiguration {
        var c = TandemConfiguration()
        if let file, let contents {
            let values: [String: ConfigValue]
            if file.hasSuffix(".json") {
                values = try JSONConfig.parse(contents)
            } else {
                guard let text = String(validating: contents, as: UTF8.self) else { throw ConfigError("\(file): not UTF-8") }
                do { values = try TOMLSubset.parse(text) } catch { throw ConfigError("\(file): \(error.message)") }
            }
            try c.apply(values, source: file)
        }
        try c.applyEnvironment(environment)
        try c.validate()
        return c
    }

    /// The whole configuration as TOML (for `tandem config show` and the docs).
    public func renderTOML() -> String {
        var out = ""
        var section = ""
        for k in Self.keys {
            let parts = k.name.split(separator: ".", maxSplits: 1)
            if parts[0] != section {
                section = String(parts[0])
                out += (out.isEmpty ? "" : "\n") + "[\(section)]\n"
            }
            out += "\(parts[1]) = \(k.get(self))\n"
        }
        return out
    }
}
