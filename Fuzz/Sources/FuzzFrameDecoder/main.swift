// Fuzzes the frame decoder and the connection state machine together, as the server runs them:
// the first byte picks the chunk size the input is fed in, the second whether permessage-deflate
// is on. Checks: no crash, no message over the limit, every delivered text message is UTF-8.
import TandemWebSocket

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let chunk = Int(data[0]) % 64 + 1
    let deflate = data[1] & 1 == 1
    let bytes = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    var decoder = WebSocketFrameDecoder(expectMasked: data[1] & 2 == 0, maxFrameSize: 1 << 16)
    decoder.allowRSV1 = deflate
    let codec = deflate ? PerMessageDeflateCodec(parameters: .init(), configuration: .init()) : nil
    var machine = WebSocketConnectionMachine(maxMessageSize: 1 << 16, codec: codec)
    var out: [WebSocketFrameDecoder.Output] = []
    var offset = 0
    outer: while offset < bytes.count {
        let n = min(chunk, bytes.count - offset)
        let error = decoder.decode(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]), into: &out)
        offset += n
        for o in out {
            switch machine.received(o) {
            case .deliver(let m):
                precondition(m.payload.count <= 1 << 16, "message over the limit")
                if m.opcode == .text { precondition(UTF8Validator.isValid(m.payload), "invalid UTF-8 delivered") }
            case .fail, .replyClose, .closeHandshakeComplete:
                break outer
            default:
                break
            }
        }
        out.removeAll(keepingCapacity: true)
        if let error {
            _ = machine.decoderFailed(error)
            break
        }
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
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzFrameDecoder))
