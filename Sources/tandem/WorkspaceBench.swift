// `tandem workspace bench`: the tandem.v1 numbers of docs/benchmarks.md, end to end over real
// WebSockets on 127.0.0.1: a whole server in this process (store, kernels in containers, routes)
// and clients on their own loop.
import ArgumentParser
import Dispatch
import Foundation
import Logging
import TandemClient
import TandemConfig
import TandemCrypto
import TandemKernel
import TandemLoop
import TandemServer
import TandemStore
import TandemWorkspace
#if canImport(Glibc)
import Glibc
#endif

struct WorkspaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace", abstract: "Workspace server tools.", subcommands: [Bench.self])

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Execute round trip over tandem.v1 and output fan-out to many clients.")
        @OptionGroup var configOptions: ConfigOptions
        @Option(help: "Round trips of 1+1.") var executions = 500
        @Option(help: "Clients attached for the fan-out.") var clients = 10
        @Option(help: "Megabytes the kernel prints for the fan-out.") var megabytes = 10
        @Flag(help: "One JSON object per metric.") var json = false

        func run() throws {
            var c = try configOptions.load()
            let root = "/run/tandem-wsbench-\(getpid())"
            c.server.data = root + "/data"
            c.server.port = 0
            c.server.loops = 1
            c.kernels.stateDir = root + "/state"
            c.kernels.cgroupParent = "tandem-wsbench"
            c.kernels.poolSize = 1
            // The fan-out measures the server, not the kernel's output budget.
            c.kernels.outputRateBytes = 256 << 20
            c.workspaces.clientBufferBytes = 64 << 20
            c.log.level = "error"
            let n = executions, k = clients, mb = megabytes, asJSON = json
            let cfg = c
            let lines = try withWorkspaceServer(cfg) { port, token, workspace, loop in
                var out: [String] = []
                let url = "ws://127.0.0.1:\(port)/ws"
                let headers = [("Authorization", "Bearer \(token)"), ("Origin", "http://127.0.0.1:\(port)")]
                // Round trip: request written → kernel.finished read, one at a time.
                let a = try await TandemClient.connect(url: url, headers: headers, loop: loop)
                _ = try await a.request("workspace.join", ["workspace": .string(workspace)])
                var rtt: [Double] = []
                for i in 0..<(n + 20) {
                    let t0 = monotonicNanos()
                    let r = try await a.request("kernel.execute", ["workspace": .string(workspace), "code": .string("1+1")])
                    let id = r["executionId"]?.int
                    guard await a.waitForEvent(timeout: 10, { $0["type"]?.string == "kernel.finished" && $0["executionId"]?.int == id }) != nil else {
                        throw ValidationError("no result for execution \(i)")
                    }
                    if i >= 20 { rtt.append(Double(monotonicNanos() - t0) / 1e6) }
                    a.clearEvents()
                }
                out.append(metric("ws_exec_roundtrip", rtt, asJSON))
                a.close()
                // Fan-out: k clients attached, the kernel prints `mb` MB.
                var cs: [TandemClient] = []
                for _ in 0..<k {
                    let c = try await TandemClient.connect(url: url, headers: headers, loop: loop, decodeEvents: false)
                    _ = try await c.request("workspace.join", ["workspace": .string(workspace)])
                    cs.append(c)
                }
                let before = cs.map { $0.received.bytes }
                let code = "import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(\(mb * 1024)):\n    sys.stdout.write(line)"
                let t0 = monotonicNanos()
                let r = try await cs[0].request("kernel.execute", ["workspace": .string(workspace), "code": .string(code)])
                let id = r["executionId"]?.int
                var finish: [Double] = []
                for c in cs {
                    guard await c.waitForEvent(timeout: 120, { $0["type"]?.string == "kernel.finished" && $0["executionId"]?.int == id }) != nil else {
                        throw ValidationError("a client never saw the end of the output")
                    }
                    finish.append(Double(monotonicNanos() - t0) / 1e9)
                }
                let received = zip(cs.map { $0.received.bytes }, before).map { $0 - $1 }
                let total = Double(received.reduce(0, +))
                let mbps = total / 1e6 / (finish.max() ?? 1)
                if asJSON {
                    out.append("{\"system\":\"tandem\",\"metric\":\"ws_fanout\",\"clients\":\(k),\"megabytes\":\(mb),\"aggregate_mb_s\":\(format3(mbps)),\"first_s\":\(format3(finish.min() ?? 0)),\"last_s\":\(format3(finish.max() ?? 0)),\"min_client_bytes\":\(received.min() ?? 0)}")
                } else {
                    out.append("fan-out: \(k) clients × \(mb) MB printed: \(format3(mbps)) MB/s aggregate (wire bytes incl. JSON), first client done \(format3(finish.min() ?? 0)) s, last \(format3(finish.max() ?? 0)) s, smallest client received \(received.min() ?? 0) bytes")
                }
                for c in cs { c.close() }
                return out
            }
            for l in lines { print(l) }
        }
    }
}

private func metric(_ name: String, _ samples: [Double], _ json: Bool) -> String {
    let s = samples.sorted()
    if json {
        return "{\"system\":\"tandem\",\"metric\":\"\(name)\",\"samples_ms\":[\(samples.map(format3).joined(separator: ","))]}"
    }
    return "\(name): median \(format3(s[s.count / 2])) ms, p90 \(format3(s[s.count * 9 / 10])), p99 \(format3(s[min(s.count - 1, s.count * 99 / 100)])), n \(s.count)"
}

/// A whole server in this process with one user and one workspace; `body` gets the port, a
/// token, the workspace id and a loop for clients.
func withWorkspaceServer<T: Sendable>(_ c: TandemConfiguration, _ body: @escaping @Sendable (Int, String, String, EventLoop) async throws -> T) throws -> T {
    _ = cliLogging
    var logger = Logger(label: "tandem")
    logger.logLevel = .error
    let base = currentDirectory()
    let app = try WorkspaceApp.start(c, base: base, logger: logger)
    let user = try app.store.createUser(name: "bench")
    let token = try app.store.createToken(user: user.id, name: "bench").plaintext
    let ws = try app.store.createWorkspace(name: "Bench", owner: user.id)
    mkdir(app.workspaces.directory(ws.id.rawValue), 0o755)
    var routes = TandemServerBuilder.baseRoutes(c)
    app.workspaces.install(into: &routes, handshake: TandemServerBuilder.webSocketHandshake(c))
    let server = try TandemServerBuilder.start(c, routes: routes, logger: logger)
    let clients = try EventLoopGroup(count: 1, logger: logger)
    defer {
        clients.shutdown()
        server.shutdown()
        app.stop()
        _ = try? FileManager.default.removeItem(atPath: c.server.data)
    }
    let port = server.port, wsid = ws.id.rawValue, loop = clients.loops[0]
    return try blockOn { try await body(port, token, wsid, loop) }
}
