// Daily usage per user: executions and CPU milliseconds, by UTC day.

extension TandemStore {
    /// Adds to `user`'s counters for today (UTC, by the store's clock).
    ///
    /// - Throws: `invalid_argument` for negative amounts, `not_found` when there is no such user.
    public func recordUsage(user: User.ID, executions: Int64 = 1, cpuMs: Int64 = 0) throws(StoreError) {
        guard executions >= 0, cpuMs >= 0 else { throw StoreError(.invalidArgument, "usage amounts cannot be negative") }
        let day = UTCDay.string(clock())
        try locked { db throws(StoreError) in
            _ = try db.execute(
                """
                INSERT INTO usage(user_id, day, executions, cpu_ms) VALUES (?, ?, ?, ?)
                ON CONFLICT(user_id, day) DO UPDATE SET executions = executions + excluded.executions, cpu_ms = cpu_ms + excluded.cpu_ms
                """, user, day, executions, cpuMs)
        }
    }

    /// `user`'s counters on `day` (`YYYY-MM-DD`, UTC; default: today); zero when nothing was
    /// recorded.
    ///
    /// - Throws: `invalid_argument` for a malformed day.
    public func usage(of user: User.ID, day: String? = nil) throws(StoreError) -> Usage {
        let day = day ?? UTCDay.string(clock())
        guard UTCDay.isValid(day) else { throw StoreError(.invalidArgument, "a day is written YYYY-MM-DD") }
        return try locked { db throws(StoreError) in
            try db.row("SELECT executions, cpu_ms FROM usage WHERE user_id = ? AND day = ?", user, day) {
                Usage(user: user, day: day, executions: $0.int64(0), cpuMs: $0.int64(1))
            } ?? Usage(user: user, day: day, executions: 0, cpuMs: 0)
        }
    }
}
