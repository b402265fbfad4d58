// `tandem kernel …`: one-shot runs and a host check, on the same kernel subsystem the server uses.
import ArgumentParser
import Dispatch
import Logging
import TandemConfig
import TandemKernel
import TandemLoop
import TandemServer
#if canImport(Glibc)
import Glibc
#endif

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel", abstract: "Run code in a kernel container, check the host.",
        subcommands: [Run.self, Check.self, Bench.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run code once in a fresh container and print its output (exit status: 0 ok, 1 error, 124 timeout, 137 killed).")
        @OptionGroup var configOptions: ConfigOptions
        @Option(help: "Kernel spec (default: kernels.defaultKernel).") var kernel: String?
        @Option(help: "Seconds before the run is killed.") var timeout: Double = 30
        @Argument(help: "The code; - reads standard input.") var code: String

        func run() throws {
            let c = try configOptions.load()
            let source = code == "-" ? String(decoding: readAll(fd: 0), as: UTF8.self) : code
            let kernel = self.kernel, timeout = self.timeout
            let result = try withKernelService(c) { service in
                try await service.run(kernel: kernel, code: source, timeout: timeout)
            }
            FileHandleOut.write(result.stdout, fd: 1)
            FileHandleOut.write(result.stderr, fd: 2)
            let o = result.outcome
            if let r = o.result { print(r) }
            let line = "[\(o.status.rawValue)] wall \(o.wallNanos / 1_000_000) ms, cpu \(o.cpuNanos / 1_000_000) ms, peak memory \(o.peakMemoryBytes >> 10) KiB\n"
            FileHandleOut.write(line, fd: 2)
            switch o.status {
            case .ok: return
            case .timeout: throw ExitCode(124)
            case .died: throw ExitCode(137)
            default: throw ExitCode(1)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that this host can run kernels, and run print(1).")
        @OptionGroup var configOptions: ConfigOptions
        func run() throws {
            let c = try configOptions.load()
            let start = monotonicNanos()
            let out = try withKernelService(c) { service in
                let r = try await service.run(code: "print(1)", timeout: 10)
                return "backend \(service.backendName); kernels: \(service.kernelNames.joined(separator: ", ")); print(1) -> \(r.stdout.debugDescription) [\(r.outcome.status.rawValue)]"
            }
            print(out)
            print("total \((monotonicNanos() - start) / 1_000_000) ms (includes preparing the backend)")
        }
    }
}

/// Starts a kernel service on its own loop, runs `body`, shuts everything down.
func withKernelService<T: Sendable>(_ c: TandemConfiguration, _ body: @escaping @Sendable (KernelService) async throws -> T) throws -> T {
    _ = cliLogging
    var logger = Logger(label: "tandem")
    logger.logLevel = Logger.Level(rawValue: c.log.level) ?? .info
    let group = try EventLoopGroup(count: 1, logger: logger)
    defer { group.shutdown() }
    let cwd = currentDirectory(), log = logger
    return try blockOn {
        let service = try await KernelService.start(settings: c.kernels, base: cwd, loop: group.loops[0], logger: log)
        do {
            let v = try await body(service)
            await service.shutdownAll()
            return v
        } catch {
            await service.shutdownAll()
            throw error
        }
    }
}

/// Runs async work from a synchronous command and waits for its result (the commands are
/// synchronous ParsableCommands; their main thread has nothing else to do meanwhile).
func blockOn<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

/// Text logs on stderr for the CLI commands, bootstrapped once per process.
let cliLogging: Void = LoggingSystem.bootstrap { label in TandemLogHandler(label: label, level: .info, json: false) }

final class ResultBox<T: Sendable>: Sendable {
    private let value = LockedValue<Result<T, any Error>?>(nil)
    func set(_ r: Result<T, any Error>) { value.set(r) }
    func get() throws -> T { try value.get()!.get() }
}

import Synchronization
final class LockedValue<V: Sendable>: Sendable {
    private let m: Mutex<V>
    init(_ v: V) { m = Mutex(v) }
    func set(_ v: V) { m.withLock { $0 = v } }
    func get() -> V { m.withLock { $0 } }
}

func currentDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buf, buf.count) != nil else { return "." }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func readAll(fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

enum FileHandleOut {
    static func write(_ s: String, fd: Int32) {
        let b = Array(s.utf8)
        var off = 0
        while off < b.count {
            let n = b[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
    }
}
