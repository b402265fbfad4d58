// `/echo`: sends every message back unchanged. Off by default; for conformance suites and load
// generators.
public import TandemWebSocket

public final class EchoEndpoint: WebSocketEndpoint {
    public init() {}
    public func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        ws.send(message.opcode, message.payload)
    }
    public func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {}
}

/// `/broadcast`: relays every message to every connection of the same loop (wsbench's fan-out
/// scenario). Loop-confined: one instance per loop.
public final class BroadcastHub: WebSocketEndpoint {
    private var members: [ObjectIdentifier: WebSocketConnection] = [:]
    public init() {}
    public func webSocketOpened(_ ws: WebSocketConnection) { members[ObjectIdentifier(ws)] = ws }
    public func webSocket(_ ws: WebSocketConnection, received message: WebSocketMessage) {
        for m in members.values { m.send(message.opcode, message.payload) }
    }
    public func webSocketClosed(_ ws: WebSocketConnection, code: WebSocketCloseCode?, reason: String) {
        members[ObjectIdentifier(ws)] = nil
    }
}
