// Daily usage counters and UTC calendar days.

/// One user's usage on one UTC day.
public struct Usage: Sendable, Hashable {
    public var user: User.ID
    /// `YYYY-MM-DD`, UTC.
    public var day: String
    /// Code executions started.
    public var executions: Int64
    /// CPU time used, in milliseconds.
    public var cpuMs: Int64

    public init(user: User.ID, day: String, executions: Int64, cpuMs: Int64) {
        self.user = user
        self.day = day
        self.executions = executions
        self.cpuMs = cpuMs
    }
}

/// Calendar arithmetic on unix seconds, UTC, without Foundation.
public enum UTCDay {
    /// `YYYY-MM-DD` for the UTC day containing `unixSeconds` (proleptic Gregorian calendar;
    /// years 0...9999 print with four digits).
    public static func string(_ unixSeconds: Int64) -> String {
        let (y, m, d) = civil(daysSinceEpoch: floorDiv(unixSeconds, 86_400))
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// Whether `s` has the shape `YYYY-MM-DD` with a month 01–12 and a day 01–31.
    public static func isValid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return false }
        for i in [0, 1, 2, 3, 5, 6, 8, 9] where !(b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9")) { return false }
        let month = Int(b[5] - 48) * 10 + Int(b[6] - 48)
        let day = Int(b[8] - 48) * 10 + Int(b[9] - 48)
        return (1...12).contains(month) && (1...31).contains(day)
    }

    /// Year, month, day from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civil(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
