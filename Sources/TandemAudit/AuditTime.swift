// UTC time formatting and parsing without Foundation.

public enum AuditTime {
    /// `2026-11-23T14:07:05.123456Z` for microseconds since the epoch.
    public static func format(micros: Int64) -> String {
        let (secs, us) = micros.quotientAndRemainder(dividingBy: 1_000_000)
        var s = secs, u = us
        if u < 0 {
            u += 1_000_000
            s -= 1
        }
        let (days, rem) = floorDiv(s, 86_400)
        let (y, m, d) = civil(fromDays: days)
        let hh = rem / 3600, mm = (rem % 3600) / 60, ss = rem % 60
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2)).\(pad(u, 6))Z"
    }

    /// Parses a time for `--since`: `2026-11-23`, `2026-11-23T14:07:05Z` (fraction allowed),
    /// a duration back from `now` (`90s`, `15m`, `2h`, `7d`), or microseconds since the epoch.
    public static func parse(_ text: String, now: Int64) -> Int64? {
        let t = text.trimmingWhitespace()
        if let last = t.last, "smhd".contains(last), let n = Int64(t.dropLast()), n >= 0 {
            let unit: Int64 = last == "s" ? 1 : last == "m" ? 60 : last == "h" ? 3600 : 86_400
            return now - n * unit * 1_000_000
        }
        if let n = Int64(t) { return n }
        let u = Array(t.utf8)
        func num(_ r: Range<Int>) -> Int64? {
            guard r.upperBound <= u.count, r.allSatisfy({ u[$0] >= 0x30 && u[$0] <= 0x39 }) else { return nil }
            return r.reduce(0) { $0 * 10 + Int64(u[$1] - 0x30) }
        }
        guard u.count >= 10, u[4] == 0x2D, u[7] == 0x2D, let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10),
            (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        var secs = days(fromCivil: y, mo, d) * 86_400
        var micros: Int64 = 0
        if u.count > 10 {
            guard u.count >= 20, u[10] == 0x54 || u[10] == 0x20, u[13] == 0x3A, u[16] == 0x3A, let hh = num(11..<13), let mi = num(14..<16),
                let ss = num(17..<19), hh < 24, mi < 60, ss < 61
            else { return nil }
            secs += hh * 3600 + mi * 60 + ss
            var i = 19
            if u[i] == 0x2E {
                i += 1
                var digits = 0
                while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                    if digits < 6 {
                        micros = micros * 10 + Int64(u[i] - 0x30)
                        digits += 1
                    }
                    i += 1
                }
                while digits < 6 {
                    micros *= 10
                    digits += 1
                }
            }
            guard i == u.count - 1, u[i] == 0x5A else { return nil }  // only UTC ("Z")
        }
        return secs * 1_000_000 + micros
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        var q = a / b, r = a % b
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }

    /// Howard Hinnant's `civil_from_days`.
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Howard Hinnant's `days_from_civil`.
    private static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
