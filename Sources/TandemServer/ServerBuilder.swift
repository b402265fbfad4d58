// Builds the running server from a configuration: loops, TLS, routes (health, echo, web client).
public import TandemConfig
import TandemLoop
public import TandemWebSocket
import TandemHTTP
public import Logging

public enum TandemVersion {
    public static let string = "0.1.0"
    public static let protocolVersion = "tandem.v1"
}

extension HTTPServerOptions {
    /// The HTTP and WebSocket settings of a configuration.
    public init(_ c: TandemConfiguration) {
        self.init()
        parserLimits.maxRequestLine = c.limits.maxRequestLine
        parserLimits.maxHeaderBytes = c.limits.maxHeaderBytes
        parserLimits.maxHeaderCount = c.limits.maxHeaderCount
        parserLimits.maxBodySize = c.limits.maxBodySize
        headerTimeoutNanos = nanos(c.limits.headerTimeout)
        idleTimeoutNanos = nanos(c.limits.httpIdleTimeout)
        allowedOrigins = c.server.allowedOrigins
        webSocket = WebSocketOptions(c)
    }
}

extension WebSocketOptions {
    public init(_ c: TandemConfiguration) {
        self.init()
        maxFrameSize = c.limits.maxFrameSize
        maxMessageSize = c.limits.maxMessageSize
        pingIntervalNanos = nanos(c.websocket.pingInterval)
        pingTimeoutNanos = nanos(c.websocket.pingTimeout)
        idleTimeoutNanos = nanos(c.limits.idleTimeout)
        closeTimeoutNanos = nanos(c.limits.closeTimeout)
        deflate = PerMessageDeflateConfiguration(c.compression)
    }
}

extension PerMessageDeflateConfiguration {
    public init(_ c: TandemConfiguration.Compression) {
        self.init()
        enabled = c.enabled
        maxWindowBits = c.maxWindowBits
        peerMaxWindowBits = c.clientMaxWindowBits
        memLevel = c.memLevel
        level = c.level
        noContextTakeover = c.noContextTakeover
        minSizeToCompress = c.minSize
    }
}

func nanos(_ seconds: Double) -> UInt64 { seconds <= 0 ? 0 : UInt64(seconds * 1_000_000_000) }

public enum TandemServerBuilder {
    /// The routes every Tandem server has: `/healthz`, optional `/echo` and `/broadcast`, and the
    /// web client as the fallback.
    public static func baseRoutes(_ c: TandemConfiguration) -> Routes {
        var routes = Routes()
        routes.add("/healthz") { _, _, responder in
            responder.respond(.json(.ok, "{\"status\":\"ok\",\"version\":\(jsonString(TandemVersion.string))}"))
        }
        if c.server.echo {
            var hs = WebSocketServerHandshake.Configuration()
            hs.deflate = PerMessageDeflateConfiguration(c.compression)
            // Test endpoints take any origin: conformance suites and load generators send their own.
            routes.webSockets["/echo"] = WebSocketRoute(handshake: hs, checkOrigin: false) { _, _ in EchoEndpoint() }
            routes.webSockets["/broadcast"] = WebSocketRoute(handshake: hs, checkOrigin: false) { _, loop in
                loop.local("tandem.broadcast") { BroadcastHub() }
            }
        }
        let files = StaticFiles(root: c.server.web)
        routes.fallback = Routes.Route(methods: ["GET", "HEAD"]) { request, _, responder in
            responder.respond(files.handle(request))
        }
        return routes
    }

    /// The handshake settings (permessage-deflate) every WebSocket route starts from.
    public static func webSocketHandshake(_ c: TandemConfiguration) -> WebSocketServerHandshake.Configuration {
        var hs = WebSocketServerHandshake.Configuration()
        hs.deflate = PerMessageDeflateConfiguration(c.compression)
        return hs
    }

    /// Starts loops and a listening server for `c` with `routes`.
    public static func start(_ c: TandemConfiguration, routes: Routes, logger: Logger) throws -> HTTPServer {
        let loops = c.server.loops > 0 ? c.server.loops : max(1, Int(systemCoreCount()))
        _ = raiseFileDescriptorLimit()
        let tls: TLSContext? = c.tls.enabled ? try TLSContext(serverCertificateChain: c.tls.certificate, privateKey: c.tls.privateKey) : nil
        let group = try EventLoopGroup(count: loops, logger: logger)
        var connOptions = ConnectionOptions()
        connOptions.writeHighWatermark = c.limits.writeHighWatermark
        connOptions.writeLowWatermark = c.limits.writeLowWatermark
        let server = HTTPServer(
            group: group, host: c.server.host, port: c.server.port, routes: routes, options: HTTPServerOptions(c),
            connectionOptions: connOptions, tls: tls, maxConnections: c.server.maxConnections, logger: logger)
        do {
            try server.start()
        } catch {
            group.shutdown()
            throw error
        }
        return server
    }
}

#if canImport(Glibc)
import Glibc
#endif
func systemCoreCount() -> Int32 { Int32(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
