// A client that stops reading must not slow the kernel or anyone else: its kernel output is
// buffered up to workspaces.clientBufferBytes and then replaced by a gap, for it alone.
import Testing
import TandemClient
import TandemCrypto
@testable import TandemWorkspace
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A masked client text frame.
func maskedTextFrame(_ text: String) -> [UInt8] {
    let payload = Array(text.utf8)
    var f: [UInt8] = [0x81]
    if payload.count < 126 { f.append(0x80 | UInt8(payload.count)) }
    else { f.append(0x80 | 126); f.append(UInt8(payload.count >> 8)); f.append(UInt8(payload.count & 0xff)) }
    let mask: [UInt8] = [1, 2, 3, 4]
    f += mask
    for (i, b) in payload.enumerated() { f.append(b ^ mask[i % 4]) }
    return f
}

@Suite(.serialized) struct BackpressureTests {
    @Test func aStalledClientGetsAGapWhileOthersKeepTheirLatency() async throws {
        let f = try await WorkspaceFixture.make {
            $0.workspaces.clientBufferBytes = 256 * 1024
            $0.limits.writeHighWatermark = 256 * 1024
            $0.limits.writeLowWatermark = 64 * 1024
            $0.kernels.outputRateBytes = 2 << 20
        }
        let a = try await f.client("alice")
        _ = try await a.request("workspace.join", ["workspace": .s(f.shared)])
        // The stalled client: a raw socket that upgrades, joins, and never reads again.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(f.port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        #expect(connected)
        let upgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(f.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tandem.v1\r\nOrigin: http://127.0.0.1:\(f.port)\r\nAuthorization: Bearer \(f.tokens["bob"]!)\r\n\r\n"
        let join = maskedTextFrame("{\"type\":\"workspace.join\",\"id\":1,\"workspace\":\"\(f.shared)\"}")
        let bytes = Array(upgrade.utf8) + join
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }

        // About 6 MB of output, three seconds at the kernel's 2 MiB/s: more than the socket
        // buffers of the stalled connection and its 256 KiB allowance hold.
        let r = try await a.request("kernel.execute", ["workspace": .s(f.shared), "code": .s("for i in range(60000):\n    print('y' * 99)")])
        let id = try #require(r["executionId"]?.int)
        // Meanwhile alice's round trips stay fast.
        var times: [Duration] = []
        for _ in 0..<7 {
            let t0 = ContinuousClock.now
            _ = try await a.request("ping")
            times.append(ContinuousClock.now - t0)
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let median = times.sorted()[times.count / 2]
        #expect(median < .milliseconds(300), "ping took \(times) during the flood")
        let done = await a.waitForEvent(timeout: 60) { $0.type == "kernel.finished" && $0["executionId"]?.int == id }
        #expect(done?["status"]?.string == "ok")
        // alice got every byte.
        try await Task.sleep(nanoseconds: 200_000_000)
        let text = a.events.filter { $0.type == "kernel.output" && $0["executionId"]?.int == id }.compactMap { $0["text"]?.string }.joined()
        #expect(text.utf8.count == 60000 * 100)
        // The stalled client's share was dropped, for it alone.
        #expect(f.workspaces.metrics.droppedOutputBytes > 500_000)
        a.close()
        await f.close()
    }
}
