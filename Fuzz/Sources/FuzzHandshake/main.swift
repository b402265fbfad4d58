// Fuzzes the opening handshake: the input is parsed as a request head and, when it parses, run
// through the server handshake (with permessage-deflate negotiation); it is also parsed as a
// response head and checked by the client handshake. Checks: no crash; an accepted handshake
// always carries a correct Sec-WebSocket-Accept.
import TandemHTTP
import TandemWebSocket

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var parser = HTTPRequestParser()
    parser.append(bytes)
    if case .head(let head)? = try? parser.next() {
        var config = WebSocketServerHandshake.Configuration()
        config.subprotocols = ["tandem.v1"]
        if case .success(let accepted) = WebSocketServerHandshake.accept(head, configuration: config) {
            let key = head.headers["Sec-WebSocket-Key"]!.trimmingOWS()
            precondition(accepted.response.headers["Sec-WebSocket-Accept"] == WebSocketServerHandshake.acceptValue(forKey: String(key)))
        }
        _ = WebSocketExtensionOffer.parse(head.headers.values("Sec-WebSocket-Extensions"))
    }
    if let parsed = try? HTTPResponseHeadParser.parse(Array(bytes)) {
        let client = WebSocketClientHandshake(subprotocols: ["tandem.v1"], deflate: PerMessageDeflateConfiguration(), key: "dGhlIHNhbXBsZSBub25jZQ==")
        _ = try? client.validate(status: parsed.status, headers: parsed.headers)
    }
    return 0
}
