// Fuzzes the HTTP/1.1 request parser: the first byte picks the chunk size. Checks: no crash,
// bodies never exceed the limit, every head has a method and a target.
import TandemHTTP

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let chunk = Int(data[0]) % 32 + 1
    var limits = HTTPRequestParser.Limits()
    limits.maxBodySize = 4096
    limits.maxHeaderBytes = 2048
    limits.maxRequestLine = 512
    var parser = HTTPRequestParser(limits: limits)
    let bytes = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var offset = 0
    var body = 0
    while offset < bytes.count {
        let n = min(chunk, bytes.count - offset)
        parser.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
        offset += n
        do {
            while let e = try parser.next() {
                switch e {
                case .head(let h):
                    precondition(!h.method.isEmpty && !h.target.isEmpty)
                    body = 0
                case .body(let b):
                    body += b.count
                    precondition(body <= limits.maxBodySize, "body over the limit")
                case .end:
                    body = 0
                }
            }
        } catch {
            return 0
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
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzHTTPParser))
