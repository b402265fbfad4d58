// A WebSocket load generator on Tandem's own client, for what wsbench cannot measure:
// permessage-deflate. C connections each keep D messages in flight against an echo server,
// with realistic compressible JSON-ish text; reports messages/s, payload MB/s and latency
// percentiles as one JSON line. With --hold, connections stay open after the run (for memory
// measurements of the server) until stdin closes.
//
// usage: tandem-loadgen URL [--connections C] [--inflight D] [--size BYTES] [--duration S]
//                           [--warmup S] [--deflate|--no-deflate] [--hold]
import TandemServer
import TandemLoop
import TandemWebSocket
import Logging
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var url = "ws://127.0.0.1:8080/echo"
    var connections = 10
    var inflight = 1
    var size = 1024
    var duration = 5.0
    var warmup = 1.0
    var deflate = true
    var hold = false
    /// A text file whose slices become the messages (non-ASCII bytes replaced by '?').
    var corpus: String? = nil
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()[...]
    while let a = args.popFirst() {
        switch a {
        case "--connections", "-c": o.connections = Int(args.popFirst() ?? "") ?? o.connections
        case "--inflight", "-d": o.inflight = Int(args.popFirst() ?? "") ?? o.inflight
        case "--size", "-s": o.size = Int(args.popFirst() ?? "") ?? o.size
        case "--duration": o.duration = Double(args.popFirst() ?? "") ?? o.duration
        case "--warmup": o.warmup = Double(args.popFirst() ?? "") ?? o.warmup
        case "--deflate": o.deflate = true
        case "--no-deflate": o.deflate = false
        case "--hold": o.hold = true
        case "--corpus": o.corpus = args.popFirst()
        case "-h", "--help":
            print("usage: tandem-loadgen URL [--connections C] [--inflight D] [--size BYTES] [--duration S] [--warmup S] [--deflate|--no-deflate] [--hold] [--corpus FILE]")
            exit(0)
        default: o.url = a
        }
    }
    return o
}

/// Compressible but varied text: collaboration-protocol-like JSON with a counter and words.
func makePayload(size: Int, seed: Int) -> [UInt8] {
    let words = ["def", "return", "self", "value", "import", "numpy", "print", "result", "workspace", "kernel", "editor", "for", "in",
                 "range", "if", "else", "data", "frame", "index", "patch", "review", "cursor", "line", "column"]
    var s = "{\"type\":\"op\",\"doc\":\"src/main.py\",\"rev\":\(seed),\"text\":\""
    var x = UInt64(truncatingIfNeeded: seed &* 2_654_435_761 &+ 1)
    while s.utf8.count < size - 3 {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        s += words[Int(x % UInt64(words.count))]
        s += (x >> 32) % 7 == 0 ? "\\n    " : " "
    }
    var bytes = Array(s.utf8.prefix(size - 2))
    bytes += Array("\"}".utf8)
    return bytes
}

final class Stats: Sendable {
    struct State {
        var measuring = false
        var done = false
        var messages = 0
        var bytes = 0
        var latencies: [UInt64] = []
        var open = 0
        var failures = 0
    }
    let state = Mutex(State())
}

final class LoadConnection: WebSocketEndpoint {
    let options: Options
    let stats: Stats
    let payloads: [[UInt8]]
    var sentAt: [UInt64] = []
    var head = 0
    var counter = 0
    var measuredCount = 0
    var measuredBytes = 0
    var latencies: [UInt64] = []

    init(options: Options, stats: Stats, payloads: [[UInt8]]) {
        self.options = options
        self.stats = stats
        self.payloads = payloads
    }

    func webSocketOpened(_ ws: WebSocketConnection) {
        stats.state.withLock { $0.open += 1 }
        for _ in 0..<options.inflight { sendNext(ws) }
    }

    func sendNext(_ ws: WebSocketConnection) {
        let p = payloads[counter % payloads.count]
        counter += 1
        sentAt.append(monotonicNanos())
        ws.send(.text, p)
    }

    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        let t0 = sentAt[head]
        head += 1
        if head > 4096 { sentAt.removeFirst(head); head = 0 }
        let (measuring, done) = stats.state.withLock { ($0.measuring, $0.done) }
        if measuring {
            measuredCount += 1
            measuredBytes += message.payload.count
            if latencies.count < 200_000 { latencies.append(monotonicNanos() - t0) }
        }
        if done {
            flush()
            if !options.hold { ws.close() }
            return
        }
        sendNext(ws)
    }

    func flush() {
        guard measuredCount > 0 || !latencies.isEmpty else { return }
        let (c, b, l) = (measuredCount, measuredBytes, latencies)
        measuredCount = 0; measuredBytes = 0; latencies = []
        stats.state.withLock {
            $0.messages += c
            $0.bytes += b
            $0.latencies += l
        }
    }

    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        flush()
        stats.state.withLock { $0.open -= 1 }
    }
}

let options = parseOptions()
guard let url = WebSocketURL(options.url) else {
    print("tandem-loadgen: invalid URL \(options.url)")
    exit(2)
}
let group = try EventLoopGroup(count: 1, logger: Logger(label: "loadgen"))
let stats = Stats()
let payloads: [[UInt8]] = {
    guard let path = options.corpus else { return (0..<64).map { makePayload(size: options.size, seed: $0) } }
    guard let text = readWholeFile(path), text.count > options.size else {
        FileHandleStderr.write("tandem-loadgen: corpus \(path) missing or smaller than --size\n")
        exit(2)
    }
    let ascii = text.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }
    return (0..<64).map { i in
        let start = (i * 7919) % (ascii.count - options.size)
        return Array(ascii[start..<start + options.size])
    }
}()
var wsOptions = WebSocketOptions()
wsOptions.deflate.enabled = options.deflate
wsOptions.pingIntervalNanos = 0
wsOptions.idleTimeoutNanos = 0
let configured = wsOptions
for _ in 0..<options.connections {
    group.loops[0].execute { loop in
        let ep = LoadConnection(options: options, stats: stats, payloads: payloads)
        WebSocketClient.connect(url: url, loop: loop, options: configured, endpoint: ep) { failure in
            stats.state.withLock { $0.failures += 1 }
            FileHandleStderr.write("tandem-loadgen: \(failure)\n")
        }
    }
}
usleep(UInt32(options.warmup * 1_000_000))
let started = monotonicNanos()
stats.state.withLock { $0.measuring = true }
usleep(UInt32(options.duration * 1_000_000))
stats.state.withLock { $0.measuring = false; $0.done = true }
let elapsed = Double(monotonicNanos() - started) / 1e9
usleep(300_000)
let s = stats.state.withLock { $0 }
let lat = s.latencies.sorted()
func pct(_ p: Double) -> Double { lat.isEmpty ? 0 : Double(lat[min(lat.count - 1, Int(Double(lat.count) * p))]) / 1000 }
let rate = Double(s.messages) / elapsed
print("{\"tool\":\"tandem-loadgen\",\"url\":\"\(options.url)\",\"connections\":\(options.connections),\"inflight\":\(options.inflight),"
    + "\"size\":\(options.size),\"deflate\":\(options.deflate),\"seconds\":\(String(format3: elapsed)),\"messages\":\(s.messages),"
    + "\"msgs_per_s\":\(Int(rate)),\"mb_per_s\":\(String(format3: Double(s.bytes) / elapsed / 1e6)),"
    + "\"p50_us\":\(String(format3: pct(0.5))),\"p99_us\":\(String(format3: pct(0.99))),\"open\":\(s.open),\"failures\":\(s.failures)}")
if options.hold {
    FileHandleStderr.write("tandem-loadgen: holding \(s.open) connections until stdin closes\n")
    var b = [UInt8](repeating: 0, count: 64)
    while read(0, &b, 64) > 0 {}
}
group.shutdown()

enum FileHandleStderr {
    static func write(_ s: String) {
        var b = Array(s.utf8)
        _ = b.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

extension String {
    init(format3 v: Double) {
        let scaled = Int((v * 1000).rounded())
        let frac = String(abs(scaled) % 1000)
        self = "\(scaled / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }
}
