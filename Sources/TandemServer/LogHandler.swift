// swift-log output: one line per event, JSON when stderr is not a terminal, text otherwise.
// Messages and metadata carry identifiers and sizes only, never content (code, output, tokens).
public import Logging
#if canImport(Glibc)
import Glibc
#endif

public struct TandemLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let json: Bool

    public init(label: String, level: Logger.Level, json: Bool) {
        self.label = label
        self.logLevel = level
        self.json = json
    }

    /// Whether stderr is a terminal (for `log.format = auto`).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let m = event.metadata { all.merge(m) { _, new in new } }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var secs = ts.tv_sec
        gmtime_r(&secs, &tm)
        let time = isoTimestamp(tm, millis: Int(ts.tv_nsec / 1_000_000))
        var line: String
        if json {
            line = "{\"time\":\"\(time)\",\"level\":\"\(event.level)\",\"logger\":\(jsonString(label)),\"message\":\(jsonString(event.message.description))"
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += ",\(jsonString(k)):\(jsonString("\(v)"))" }
            line += "}\n"
        } else {
            line = "\(time) \(event.level) \(label): \(event.message)"
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
            line += "\n"
        }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { b in _ = write(2, b.baseAddress, b.count) }
    }
}

func isoTimestamp(_ tm: tm, millis: Int) -> String {
    func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
    return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T"
        + "\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2)).\(pad(millis, 3))Z"
}
