// Kernel events as tandem.v1 JSON text, encoded once per event and shared by every subscriber.
import TandemCrypto
import TandemKernel

/// How a subscriber that cannot keep up treats an event (docs/protocol.md, "Backpressure").
enum StreamKind: Sendable {
    /// Never dropped: state changes, executions started and finished, notices, actions.
    case control
    /// Buffered up to a bound per client, then replaced by a `kernel.gap`.
    case output
    /// Latest wins.
    case stats
}

enum EventJSON {
    static func kernel(_ r: KernelEventRecord) -> (json: String, kind: StreamKind, outputBytes: Int) {
        let ws = JSONText.quote(r.workspace)
        func open(_ t: String) -> String { "{\"type\":\"kernel.\(t)\",\"workspace\":\(ws),\"seq\":\(r.seq)" }
        switch r.event {
        case .state(let s, let reason):
            return (open("state") + ",\"state\":\"\(s.rawValue)\",\"reason\":\(reason.map(JSONText.quote) ?? "null")}", .control, 0)
        case .started(let id, let by):
            return (open("started") + ",\"executionId\":\(id),\"by\":\(JSONText.quote(by))}", .control, 0)
        case .output(let id, let stream, let text):
            return (open("output") + ",\"executionId\":\(id.map(String.init) ?? "null"),\"stream\":\"\(stream.rawValue)\",\"text\":\(JSONText.quote(text))}",
                    .output, text.utf8.count)
        case .finished(let o):
            let error = o.error.map { "{\"name\":\(JSONText.quote($0.name)),\"message\":\(JSONText.quote($0.message))}" } ?? "null"
            return (open("finished") + ",\"executionId\":\(o.executionID),\"status\":\"\(o.status.rawValue)\",\"result\":\(o.result.map(JSONText.quote) ?? "null"),\"error\":\(error),\"wallMs\":\(ms(Int64(o.wallNanos))),\"cpuMs\":\(ms(o.cpuNanos)),\"peakMemory\":\(o.peakMemoryBytes)}",
                    .control, 0)
        case .stats(let s):
            return (open("stats") + ",\"memory\":\(s.memoryBytes),\"memoryLimit\":\(s.memoryLimitBytes),\"memoryPeak\":\(s.memoryPeakBytes),\"tmpfs\":\(s.tmpfsBytes),\"cpuPercent\":\(round1(s.cpuPercent)),\"cpuSeconds\":\(ms(s.cpuNanos) / 1000),\"throttledPeriods\":\(s.throttledPeriods),\"pids\":\(s.pids),\"pidsLimit\":\(s.pidsLimit),\"pidsRefused\":\(s.pidsLimitHits),\"oomKills\":\(s.oomKills)}",
                    .stats, 0)
        case .notice(let code, let message):
            return (open("notice") + ",\"code\":\(JSONText.quote(code)),\"message\":\(JSONText.quote(message))}", .control, 0)
        case .action(let name, let by):
            return (open("action") + ",\"action\":\(JSONText.quote(name)),\"by\":\(JSONText.quote(by))}", .control, 0)
        }
    }

    static func gap(workspace: String, fromSeq: UInt64, toSeq: UInt64, bytes: Int, atLeast: Bool = false) -> String {
        "{\"type\":\"kernel.gap\",\"workspace\":\(JSONText.quote(workspace)),\"fromSeq\":\(fromSeq),\"toSeq\":\(toSeq),\"bytes\":\(bytes),\"atLeast\":\(atLeast)}"
    }

    static func ms(_ nanos: Int64) -> Double { Double(nanos / 1000) / 1000 }
    static func round1(_ v: Double) -> Double { (v * 10).rounded() / 10 }
}

