// Drives Tandem's WebSocket client through the Autobahn fuzzing server: reads the case count,
// runs every case as an echo client (offering permessage-deflate), then asks for the report.
// Environment: AUTOBAHN_URL (ws://127.0.0.1:PORT), AUTOBAHN_AGENT (report name).
import TandemServer
import TandemLoop
import TandemWebSocket
import Logging
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

final class Echo: WebSocketEndpoint {
    let done: @Sendable () -> Void
    var onText: ((String) -> Void)?
    init(done: @escaping @Sendable () -> Void) { self.done = done }
    func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        if let onText, let t = message.text { onText(t); return }
        ws.send(message.opcode, message.payload)
    }
    func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) { done() }
}

func env(_ k: String) -> String? { getenv(k).map { String(cString: $0) } }

let base = env("AUTOBAHN_URL") ?? (CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "ws://127.0.0.1:9001")
let agent = env("AUTOBAHN_AGENT") ?? "tandem"
let group = try EventLoopGroup(count: 1, logger: Logger(label: "autobahn-client"))
let loop = group.loops[0]
let options: WebSocketOptions = {
    var o = WebSocketOptions()
    o.maxFrameSize = 64 * 1024 * 1024
    o.maxMessageSize = 64 * 1024 * 1024
    o.pingIntervalNanos = 0
    o.idleTimeoutNanos = 0
    o.deflate = PerMessageDeflateConfiguration()
    return o
}()

/// Runs one connection to `target` and waits until it closes; returns the first text message.
func run(_ target: String, captureText: Bool = false) -> String? {
    let sem = DispatchSemaphore(value: 0)
    let box = TextBox()
    guard let url = WebSocketURL(base + target) else { fatalError("bad URL \(base + target)") }
    let opts = options
    loop.execute { l in
        let ep = Echo { sem.signal() }
        if captureText { ep.onText = { box.set($0) } }
        WebSocketClient.connect(url: url, loop: l, options: opts, endpoint: ep) { failure in
            FileHandleStderr.write("connect \(target): \(failure)\n")
            sem.signal()
        }
    }
    sem.wait()
    return box.get()
}

import Synchronization
final class TextBox: Sendable {
    private let value = Mutex<String?>(nil)
    func set(_ s: String) { value.withLock { if $0 == nil { $0 = s } } }
    func get() -> String? { value.withLock { $0 } }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var b = Array(s.utf8)
        b.withUnsafeMutableBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

guard let countText = run("/getCaseCount", captureText: true), let count = Int(countText) else {
    FileHandleStderr.write("cannot read the case count\n")
    exit(2)
}
FileHandleStderr.write("autobahn client: \(count) cases\n")
for i in 1...max(count, 1) where count > 0 {
    _ = run("/runCase?case=\(i)&agent=\(agent)")
}
_ = run("/updateReports?agent=\(agent)")
group.shutdown()
