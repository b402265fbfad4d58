// TLS through the system OpenSSL, driven on the event loop with memory BIOs: ciphertext moves
// between the socket and the BIOs; the SSL object never touches the fd.
internal import COpenSSL

/// A TLS failure, with OpenSSL's error queue rendered as text.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { "TLS: \(message)" }

    static func fromQueue(_ context: String) -> TLSError {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TLSError(message: parts.isEmpty ? context : "\(context): \(parts.joined(separator: "; "))")
    }
}

/// An `SSL_CTX`: certificates and protocol settings, shared by every connection of a server or
/// client.
///
/// `@unchecked Sendable`: the `SSL_CTX` is configured completely in `init` and never changed
/// afterwards; OpenSSL locks its internal state (session cache, reference counts) itself, so
/// creating `SSL` objects from it on several loop threads is safe.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    public let isServer: Bool

    /// A server context with a PEM certificate chain and private key. TLS 1.2 minimum.
    public init(serverCertificateChain certPath: String, privateKey keyPath: String) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw .fromQueue("SSL_CTX_new") }
        self.ctx = ctx
        self.isServer = true
        _ = ctandem_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        _ = ctandem_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        guard SSL_CTX_use_certificate_chain_file(ctx, certPath) == 1 else { throw .fromQueue("cannot load certificate \(certPath)") }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyPath, SSL_FILETYPE_PEM) == 1 else { throw .fromQueue("cannot load private key \(keyPath)") }
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw .fromQueue("private key does not match the certificate") }
    }

    /// A client context. With `verify` the server certificate is checked against `caFile` (or the
    /// system store) and the host name.
    public init(clientVerifying verify: Bool, caFile: String? = nil) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw .fromQueue("SSL_CTX_new") }
        self.ctx = ctx
        self.isServer = false
        _ = ctandem_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        _ = ctandem_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        if verify {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let caFile {
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else { throw .fromQueue("cannot load CA file \(caFile)") }
            } else {
                SSL_CTX_set_default_verify_paths(ctx)
            }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    deinit { SSL_CTX_free(ctx) }
}

/// One connection's TLS state. Loop-confined.
final class TLSSession {
    let ssl: OpaquePointer
    let rbio: OpaquePointer
    let wbio: OpaquePointer
    private(set) var handshakeDone = false

    init(context: TLSContext, serverName: String?) throws(TLSError) {
        guard let ssl = SSL_new(context.ctx) else { throw .fromQueue("SSL_new") }
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .fromQueue("BIO_new")
        }
        self.ssl = ssl
        rbio = r
        wbio = w
        SSL_set_bio(ssl, r, w)  // the SSL now owns both BIOs
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName {
                _ = ctandem_SSL_set_tlsext_host_name(ssl, serverName)
                if SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE { SSL_set1_host(ssl, serverName) }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// Ciphertext from the socket.
    func feed(_ bytes: UnsafeRawBufferPointer) {
        var off = 0
        while off < bytes.count {
            let n = BIO_write(rbio, bytes.baseAddress! + off, Int32(bytes.count - off))
            if n <= 0 { break }
            off += Int(n)
        }
    }

    enum ReadResult {
        case data(Int)
        case wantMore
        case closed  // close_notify received
        case failed(TLSError)
    }

    /// Advances the handshake; returns false while it is still in progress.
    func handshake() throws(TLSError) -> Bool {
        if handshakeDone { return true }
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            handshakeDone = true
            return true
        }
        let e = SSL_get_error(ssl, r)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return false }
        throw .fromQueue("handshake failed")
    }

    /// Plaintext into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
        if n > 0 { return .data(Int(n)) }
        let e = SSL_get_error(ssl, n)
        switch e {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantMore
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: return .failed(.fromQueue("read failed"))
        }
    }

    /// Encrypts plaintext into the write BIO.
    func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        var off = 0
        while off < bytes.count {
            let n = SSL_write(ssl, bytes.baseAddress! + off, Int32(min(bytes.count - off, 1 << 30)))
            if n <= 0 { throw .fromQueue("write failed") }
            off += Int(n)
        }
    }

    /// Sends close_notify.
    func shutdown() { _ = SSL_shutdown(ssl) }

    /// Ciphertext waiting to go to the socket.
    var pendingCiphertext: Int { Int(ctandem_BIO_pending(wbio)) }

    /// Moves pending ciphertext out of the write BIO.
    func drainCiphertext(_ body: (UnsafeRawBufferPointer) -> Void, scratch: UnsafeMutableRawBufferPointer) {
        while true {
            let n = BIO_read(wbio, scratch.baseAddress, Int32(scratch.count))
            if n <= 0 { break }
            body(UnsafeRawBufferPointer(rebasing: scratch[0..<Int(n)]))
        }
    }
}

@available(*, unavailable)
extension TLSSession: Sendable {}

extension TLSSession {
    var isServerSide: Bool { SSL_is_server(ssl) == 1 }
}
