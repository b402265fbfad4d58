// Fuzzes the opening handshake: the input is parsed as a request head and, when it parses, run
// through the server handshake (with permessage-deflate negotiation); it is also parsed as a
// response head and checked by the client handshake. Checks: no crash; an accepted handshake
// always carries a correct Sec-WebSocket-Accept.
import TandemHTTP
import TandemWebSocket

#if canImport(Glibc)
import Glibc
#endif

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

// SwiftPM gives every executable its own entry point, so libFuzzer's main is not used; start the
// fuzzer through its driver API instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

var fuzzArgc = CommandLine.argc
var fuzzArgv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzHandshake))
