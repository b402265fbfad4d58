// Serves the web client's files: safe path mapping, content types, strong ETags from content
// hashes, If-None-Match, HEAD, and a small cache keyed by path and modification time.
import TandemHTTP
import TandemCrypto
import TandemLoop
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class StaticFiles: Sendable {
    public let root: String
    /// Resolved root (symlinks followed), so a file can be checked to lie inside it.
    private let realRoot: String?
    private let cache = Mutex<[String: Entry]>([:])
    /// Files larger than this are not cached.
    private let maxCachedFile = 4 * 1024 * 1024
    private let contentSecurityPolicy: String

    struct Entry: Sendable {
        var mtime: Int
        var size: Int
        var etag: String
        var body: [UInt8]
    }

    public init(root: String, contentSecurityPolicy: String = StaticFiles.defaultCSP) {
        self.root = root
        self.realRoot = resolvePath(root)
        self.contentSecurityPolicy = contentSecurityPolicy
    }

    /// Monaco needs blob: workers and inline styles; everything else is same-origin only.
    public static let defaultCSP =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        + "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

    public var isPresent: Bool { realRoot != nil }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard let rel = Self.safeRelativePath(String(request.path)) else {
            return .error(.badRequest, code: "bad_path", message: "invalid path")
        }
        guard let realRoot else { return .error(.notFound, code: "not_found", message: "no web client installed") }
        var candidate = realRoot + "/" + rel
        if rel.isEmpty || isDirectory(candidate) { candidate += (rel.isEmpty ? "" : "/") + "index.html" }
        // Follow symlinks and require the result to stay under the root.
        guard let real = resolvePath(candidate), real == realRoot || real.hasPrefix(realRoot + "/") else {
            return .error(.notFound, code: "not_found", message: "no such file")
        }
        guard let entry = load(real) else { return .error(.notFound, code: "not_found", message: "no such file") }
        var headers = HTTPHeaders()
        headers.add("ETag", entry.etag)
        headers.add("Cache-Control", real.contains("/vendor/") ? "public, max-age=86400" : "no-cache")
        let type = Self.contentType(for: real)
        headers.add("Content-Type", type)
        if type.hasPrefix("text/html") { headers.add("Content-Security-Policy", contentSecurityPolicy) }
        if let inm = request.head.headers["If-None-Match"], inm.split(separator: ",").contains(where: { $0.trimmingOWS() == entry.etag || $0.trimmingOWS() == "*" }) {
            return HTTPResponse(status: .notModified, headers: headers)
        }
        return HTTPResponse(status: .ok, headers: headers, body: entry.body)
    }

    private func load(_ path: String) -> Entry? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let mtime = Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)
        let size = Int(st.st_size)
        if let e = cache.withLock({ $0[path] }), e.mtime == mtime, e.size == size { return e }
        guard let body = readWholeFile(path) else { return nil }
        let entry = Entry(mtime: mtime, size: size, etag: "\"" + Hex.encode(Digest.sha256(body).prefix(16)) + "\"", body: body)
        if size <= maxCachedFile { cache.withLock { $0[path] = entry } }
        return entry
    }

    /// Maps a URL path to a relative file path, or nil when it tries to leave the root
    /// (`..`, encoded slashes or NULs, backslashes, hidden files).
    static func safeRelativePath(_ urlPath: String) -> String? {
        guard urlPath.hasPrefix("/") else { return nil }
        var parts: [String] = []
        for raw in urlPath.split(separator: "/", omittingEmptySubsequences: true) {
            guard let seg = percentDecode(raw) else { return nil }
            if seg.isEmpty || seg == "." { continue }
            if seg == ".." || seg.hasPrefix(".") || seg.contains("/") || seg.contains("\\") || seg.contains("\0") { return nil }
            parts.append(seg)
        }
        return parts.joined(separator: "/")
    }

    static func contentType(for path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json", "map": return "application/json; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        case "ttf": return "font/ttf"
        case "txt", "md": return "text/plain; charset=utf-8"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}

func resolvePath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// Reads a whole regular file; nil on any error.
public func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}
