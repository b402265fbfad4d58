// `tandem user …` and `tandem token …`: accounts and API tokens in the metadata store
// (<server.data>/.tandem/tandem.db). Safe to run while the server runs (SQLite WAL; a write
// waits for the server's write lock).
import ArgumentParser
import TandemConfig
import TandemStore
#if canImport(Glibc)
import Glibc
#endif

/// Where the store lives, from the configuration (or `--data`).
struct StoreLocation: ParsableArguments {
    @OptionGroup var configOptions: ConfigOptions
    @Option(help: "Data root (overrides server.data); the store is <data>/.tandem/tandem.db.") var data: String?

    /// Opens the store, creating `<data>` (0755) and `<data>/.tandem` (0700) when missing.
    func open() throws -> TandemStore {
        var overrides: [String: ConfigValue] = [:]
        if let data { overrides["server.data"] = .string(data) }
        let c = try configOptions.load(overrides: overrides)
        let root = c.server.data.isEmpty ? "." : c.server.data
        let dir = root + "/.tandem"
        for (d, mode) in [(root, mode_t(0o755)), (dir, mode_t(0o700))] where mkdir(d, mode) != 0 && errno != EEXIST {
            throw ValidationError("cannot create \(d): \(String(cString: strerror(errno)))")
        }
        // The store holds token and session digests: owner only, even if the directory existed.
        _ = chmod(dir, 0o700)
        return try TandemStore(path: dir + "/tandem.db")
    }
}

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage user accounts.", subcommands: [Add.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user.")
        @OptionGroup var location: StoreLocation
        @Argument(help: "Login name: a-z, 0-9, '.', '_', '-' (up to 64, starting with a letter or digit).") var name: String
        @Flag(help: "Make the user an administrator.") var admin = false
        @Option(help: "Name shown to others (default: the login name).") var displayName: String?

        func run() throws {
            let store = try location.open()
            let u = try store.createUser(name: name, displayName: displayName, isAdmin: admin)
            print("created user \(u.name) (id \(u.id))\(u.isAdmin ? ", administrator" : "")")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var location: StoreLocation

        func run() throws {
            let store = try location.open()
            var rows = [["ID", "NAME", "DISPLAY NAME", "ADMIN", "STATE", "CREATED"]]
            for u in try store.users() {
                rows.append([
                    "\(u.id)", u.name, u.displayName, u.isAdmin ? "yes" : "no", u.isDisabled ? "disabled" : "active",
                    formatTime(u.createdAt),
                ])
            }
            printTable(rows)
        }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token and print it (once).")
        @OptionGroup var location: StoreLocation
        @Option(help: "The user the token acts for.") var user: String
        @Option(help: "A label for the token.") var name = "cli"
        @Option(help: "Limit the token to this workspace id.") var workspace: String?
        @Option(help: "Expire after D days (default: never).") var expiresDays: Int?

        func validate() throws {
            if let expiresDays, expiresDays <= 0 { throw ValidationError("--expires-days must be positive") }
            if let workspace, Workspace.ID(workspace) == nil {
                throw ValidationError("--workspace must be a workspace id (12 characters of a-z, 2-7)")
            }
        }

        func run() throws {
            let store = try location.open()
            guard let u = try store.user(named: user) else { throw ValidationError("no user \(user)") }
            let (token, info) = try store.createToken(
                user: u.id, name: name, workspace: workspace.flatMap { Workspace.ID($0) },
                expiresIn: expiresDays.map { Int64($0) * 86_400 })
            print(token)
            var note = "token \(info.id) for \(u.name)"
            if let scope = info.workspaceScope { note += ", limited to workspace \(scope)" }
            if let e = info.expiresAt { note += ", expires \(formatTime(e))" }
            printError(note)
            printError("Store it now: it cannot be shown again.")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API tokens (never the tokens themselves).")
        @OptionGroup var location: StoreLocation
        @Option(help: "Only this user's tokens.") var user: String?

        func run() throws {
            let store = try location.open()
            var owner: User.ID? = nil
            if let user {
                guard let u = try store.user(named: user) else { throw ValidationError("no user \(user)") }
                owner = u.id
            }
            let names = Dictionary(uniqueKeysWithValues: try store.users().map { ($0.id, $0.name) })
            let now = Int64(time(nil))
            var rows = [["ID", "USER", "PREFIX", "NAME", "SCOPE", "CREATED", "LAST USED", "STATE"]]
            for t in try store.tokens(of: owner) {
                var state = t.state(at: now).rawValue
                if state == "active", let e = t.expiresAt { state += " (expires \(formatTime(e)))" }
                rows.append([
                    "\(t.id)", names[t.user] ?? "\(t.user)", t.prefix + "…", t.name, t.workspaceScope?.rawValue ?? "all",
                    formatTime(t.createdAt), t.lastUsedAt.map(formatTime) ?? "never", state,
                ])
            }
            printTable(rows)
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API token by id.")
        @OptionGroup var location: StoreLocation
        @Argument(help: "The token id (see `tandem token list`).") var id: Int64

        func run() throws {
            let store = try location.open()
            let info = try store.revokeToken(id: TokenInfo.ID(id), by: nil)
            print("revoked token \(info.id) (\(info.prefix)…, \(info.name))")
        }
    }
}

/// `YYYY-MM-DD HH:MM` UTC.
private func formatTime(_ unix: Int64) -> String {
    var t = time_t(unix)
    var parts = tm()
    guard gmtime_r(&t, &parts) != nil else { return "\(unix)" }
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min))"
}

/// Prints rows in left-aligned columns separated by two spaces.
private func printTable(_ rows: [[String]]) {
    var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    for r in rows {
        var line = ""
        for (i, c) in r.enumerated() {
            line += i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2)
        }
        print(line)
    }
}

private func printError(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
