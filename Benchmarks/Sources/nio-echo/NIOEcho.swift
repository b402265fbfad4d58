// nio-echo: the SwiftNIO WebSocket echo server Tandem is benchmarked against (scripts/bench.sh).
//
//   nio-echo [--host 127.0.0.1] [--port 9001] [--threads 1]
//
// The idiomatic fast path of SwiftNIO 2.x, on purpose nothing cleverer: HTTP/1.1 server pipeline
// with NIOWebSocketServerUpgrader -> WebSocketFrameDecoder/Encoder -> NIOWebSocketFrameAggregator
// -> one ChannelInboundHandler that writes each echo in channelRead and flushes once in
// channelReadComplete (so one read carrying many frames costs one send).
// Paths starting with /broadcast relay every message to all other /broadcast connections instead
// (the fan-out scenario of wsbench); every other path echoes. Pings get pongs; a close frame is
// answered with a close frame carrying the same status code, then the connection is closed.
// No permessage-deflate: NIOWebSocket has none (and wsbench never offers it).
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Command-line settings.
struct Options: Sendable {
    var host = "127.0.0.1"
    var port = 9001
    /// Event-loop threads (the benchmarks compare one core: 1).
    var threads = 1
    /// Largest frame and largest reassembled message accepted, in bytes. Large enough for every
    /// wsbench scenario (16 KiB messages) with room to spare; NIO's own default is 16 KiB.
    var maxMessageSize = 1 << 24

    static let usage = "usage: nio-echo [--host ADDR] [--port P] [--threads N]\n"

    static func parse(_ arguments: ArraySlice<String>) -> Options {
        var o = Options()
        var it = arguments.makeIterator()
        while let a = it.next() {
            switch a {
            case "--host":
                guard let h = it.next() else { fail("--host needs a value") }
                o.host = h
            case "--port":
                guard let p = it.next().flatMap({ Int($0) }), (0...65535).contains(p) else { fail("--port needs 0...65535") }
                o.port = p
            case "--threads":
                guard let t = it.next().flatMap({ Int($0) }), t >= 1 else { fail("--threads needs a number >= 1") }
                o.threads = t
            case "-h", "--help":
                writeStderr(usage)
                exit(0)
            default:
                fail("unknown argument \(a)")
            }
        }
        return o
    }

    private static func fail(_ message: String) -> Never {
        writeStderr("nio-echo: \(message)\n" + usage)
        exit(2)
    }
}

/// Writes to a descriptor directly: C's `stdout`/`stderr` are shared mutable state that Swift 6
/// will not touch, and an unbuffered line shows up in a log file at once.
func writeFD(_ fd: Int32, _ s: String) {
    var s = s
    s.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

func writeStderr(_ s: String) {
    writeFD(2, s)
}

/// The echo endpoint: data messages and pings come back on the same connection.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Set once our close frame is on its way; anything after it is ignored.
    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        guard !closing else { return }
        switch frame.opcode {
        case .text, .binary:
            // Written now, flushed in channelReadComplete together with the other echoes of this read.
            let echo = WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)
            context.write(Self.wrapOutboundOut(echo), promise: nil)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.write(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            closing = true
            replyToClose(frame, context: context)
        default:
            break  // unsolicited pongs; continuations never get here (the aggregator joins them)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}

/// Answers a close frame with a close frame carrying the same status code (RFC 6455 §5.5.1),
/// then closes the TCP connection once that frame is written.
func replyToClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
    var payload = frame.unmaskedData
    let code = payload.readSlice(length: 2) ?? ByteBuffer()
    let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
    let channel = context.channel
    context.writeAndFlush(NIOAny(reply)).whenComplete { _ in channel.close(promise: nil) }
}

/// The connections currently on /broadcast. Shared by every event loop, hence the lock.
final class BroadcastHub: Sendable {
    private let members = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func join(_ channel: any Channel) {
        members.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
    }

    func leave(_ channel: any Channel) {
        _ = members.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func members(except channel: any Channel) -> [any Channel] {
        members.withLockedValue { all in all.values.filter { $0 !== channel } }
    }
}

/// The /broadcast endpoint: each data message goes to every other /broadcast connection.
final class BroadcastHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let hub: BroadcastHub
    private var closing = false

    init(hub: BroadcastHub) {
        self.hub = hub
    }

    func handlerAdded(context: ChannelHandlerContext) {
        hub.join(context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        hub.leave(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        guard !closing else { return }
        switch frame.opcode {
        case .text, .binary:
            let message = WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)
            for other in hub.members(except: context.channel) {
                other.writeAndFlush(message, promise: nil)
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            closing = true
            hub.leave(context.channel)
            replyToClose(frame, context: context)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension BroadcastHandler: Sendable {}

/// Raises the soft descriptor limit to the hard one (the idle scenario holds 10,000 sockets).
func raiseDescriptorLimit() {
    var limit = rlimit()
    #if os(Linux)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(resource, &limit)
}

@main
enum NIOEcho {
    static func main() throws {
        let options = Options.parse(CommandLine.arguments.dropFirst())
        signal(SIGPIPE, SIG_IGN)
        raiseDescriptorLimit()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let hub = BroadcastHub()
        let maxSize = options.maxMessageSize
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: maxSize,
                    automaticErrorHandling: true,
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, head in
                        channel.eventLoop.makeCompletedFuture {
                            let sync = channel.pipeline.syncOperations
                            try sync.addHandler(
                                NIOWebSocketFrameAggregator(
                                    minNonFinalFragmentSize: 0,
                                    maxAccumulatedFrameCount: 1 << 16,
                                    maxAccumulatedFrameSize: maxSize))
                            if head.uri.hasPrefix("/broadcast") {
                                try sync.addHandler(BroadcastHandler(hub: hub))
                            } else {
                                try sync.addHandler(EchoHandler())
                            }
                        }
                    })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                }
            }

        let server = try bootstrap.bind(host: options.host, port: options.port).wait()
        let port = server.localAddress?.port ?? options.port
        writeFD(1, "nio-echo: threads=\(options.threads) listening on \(options.host):\(port)\n")
        try server.closeFuture.wait()
        try group.syncShutdownGracefully()
    }
}
