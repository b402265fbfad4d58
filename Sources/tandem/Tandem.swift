// The `tandem` command line.
import ArgumentParser
import Logging
import TandemConfig
import TandemServer
import TandemLoop
import TandemWorkspace
#if canImport(Glibc)
import Glibc
#endif

@main
struct Tandem: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tandem",
        abstract: "A WebSocket-first collaborative workspace server.",
        subcommands: [Serve.self, Version.self, ConfigCommand.self, AuditCommand.self, KernelCommand.self, WorkspaceCommand.self, UserCommand.self, TokenCommand.self])
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("tandem \(TandemVersion.string) (protocol \(TandemVersion.protocolVersion))") }
}

/// Options shared by commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (TOML, or JSON when it ends in .json). Default: config/tandem.toml if present.")
    var config: String?

    func load(overrides: [String: ConfigValue] = [:]) throws -> TandemConfiguration {
        var path = config
        if path == nil && access("config/tandem.toml", R_OK) == 0 { path = "config/tandem.toml" }
        var contents: [UInt8]? = nil
        if let path {
            guard let bytes = readWholeFile(path) else { throw ValidationError("cannot read \(path)") }
            contents = bytes
        }
        var env: [String: String] = [:]
        var e = environ
        while let p = e.pointee {
            let s = String(cString: p)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            e += 1
        }
        var c = try TandemConfiguration.load(file: path, contents: contents, environment: env)
        try c.apply(overrides, source: "command line")
        try c.validate()
        return c
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server.")
    @OptionGroup var configOptions: ConfigOptions
    @Option(help: "Address to listen on.") var host: String?
    @Option(help: "Port to listen on (0 picks a free one).") var port: Int?
    @Option(help: "Data root (workspaces).") var data: String?
    @Option(help: "Event loops (0: one per core).") var loops: Int?
    @Flag(help: "Serve the /echo and /broadcast test endpoints.") var echo = false
    @Option(help: "Write the bound port to this file once listening.") var portFile: String?

    func run() throws {
        var overrides: [String: ConfigValue] = [:]
        if let host { overrides["server.host"] = .string(host) }
        if let port { overrides["server.port"] = .integer(port) }
        if let data { overrides["server.data"] = .string(data) }
        if let loops { overrides["server.loops"] = .integer(loops) }
        if echo { overrides["server.echo"] = .bool(true) }
        let c = try configOptions.load(overrides: overrides)

        let json = c.log.format == "json" || (c.log.format == "auto" && !TandemLogHandler.stderrIsTerminal)
        let level = Logger.Level(rawValue: c.log.level) ?? .info
        LoggingSystem.bootstrap { label in TandemLogHandler(label: label, level: level, json: json) }
        let logger = Logger(label: "tandem")

        // Signals are taken synchronously by this thread; loops inherit the blocked mask.
        blockShutdownSignals()
        let app = try WorkspaceApp.start(c, base: currentDirectory(), logger: logger)
        var routes = TandemServerBuilder.baseRoutes(c)
        app.workspaces.install(into: &routes, handshake: TandemServerBuilder.webSocketHandshake(c))
        let server: HTTPServer
        do {
            server = try TandemServerBuilder.start(c, routes: routes, logger: logger)
        } catch {
            app.stop()
            throw error
        }
        if let portFile {
            let text = Array("\(server.port)\n".utf8)
            let fd = open(portFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd >= 0 {
                _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        }
        let scheme = c.tls.enabled ? "https" : "http"
        logger.info("Tandem \(TandemVersion.string) serving \(scheme)://\(c.server.host):\(server.port)/")
        if let token = app.firstAdminToken {
            // First start: the only time this token is shown.
            FileHandleOut.write("""

            First start: created the administrator "admin". Sign in with this link; the token is
            stored only as a hash and is never shown again (revoke it with `tandem token revoke`):

                \(scheme)://\(c.server.host):\(server.port)/#token=\(token)

            Scripts: Authorization: Bearer \(token)


            """, fd: 2)
        }
        while true {
            let sig = waitForShutdownSignal()
            if sig == SIGHUP {
                logger.info("SIGHUP: configuration reload is not available yet; ignoring")
                continue
            }
            logger.info("shutting down", metadata: ["signal": "\(sig)"])
            break
        }
        server.shutdown()
        app.stop()
        logger.info("stopped")
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the effective configuration.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the effective configuration as TOML.")
        @OptionGroup var configOptions: ConfigOptions
        @Flag(help: "List the environment variable for every setting.") var env = false
        func run() throws {
            let c = try configOptions.load()
            if env {
                for k in TandemConfiguration.keys { print("\(k.environmentName)\t\(k.name)") }
            } else {
                print(c.renderTOML(), terminator: "")
            }
        }
    }
}
