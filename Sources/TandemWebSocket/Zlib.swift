// Raw DEFLATE streams over zlib for permessage-deflate (RFC 7692 §7.2).
internal import CZlib

/// A zlib failure.
public struct ZlibError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "zlib error \(code): \(message)" }
}

/// A raw-deflate compressor. The `z_stream` lives on the heap because zlib keeps a pointer back
/// to it; the class owns it and frees it in `deinit`. Confined to one connection's loop.
public final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// Bytes zlib allocated for this stream's state (window + hash tables), for accounting.
    public let approximateMemory: Int

    /// - Parameters:
    ///   - windowBits: 9...15. (zlib refuses 8 for raw deflate; the caller maps 8 to 9 with
    ///     `huffmanOnly` so that no back-reference can exceed a 256-byte window.)
    ///   - memLevel: 1...9; memory is about `2^(windowBits+2) + 2^(memLevel+9)` bytes.
    public init(windowBits: Int, memLevel: Int, level: Int = 6, huffmanOnly: Bool = false) throws(ZlibError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let r = czlib_deflateInit2(stream, Int32(level), -Int32(windowBits), Int32(memLevel), huffmanOnly ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY)
        guard r == Z_OK else {
            stream.deallocate()
            throw ZlibError(code: r, message: "deflateInit2 failed")
        }
        approximateMemory = (1 << (windowBits + 2)) + (1 << (memLevel + 9)) + 6 * 1024
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses one whole message and flushes with `Z_SYNC_FLUSH`, then removes the trailing
    /// empty stored block `00 00 FF FF` (RFC 7692 §7.2.1). Appends to `out`.
    public func compressMessage(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(ZlibError) {
        let start = out.count
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        var chunk = max(64, input.count / 2 + 64)
        while true {
            var produced = 0
            var r: Int32 = Z_OK
            let oldCount = out.count
            out.append(contentsOf: repeatElement(0, count: chunk))
            out.withUnsafeMutableBufferPointer { b in
                stream.pointee.next_out = b.baseAddress! + oldCount
                stream.pointee.avail_out = UInt32(chunk)
                r = deflate(stream, Z_SYNC_FLUSH)
                produced = chunk - Int(stream.pointee.avail_out)
            }
            out.removeLast(chunk - produced)
            if r != Z_OK && r != Z_BUF_ERROR { throw ZlibError(code: r, message: "deflate failed") }
            // Done when all input is consumed and zlib did not fill the buffer (flush complete).
            if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { break }
            chunk = max(chunk, 4096) * 2
        }
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        if out.count - start >= 4 && out[(out.count - 4)...].elementsEqual([0, 0, 0xFF, 0xFF]) {
            out.removeLast(4)
        }
    }

    /// Forgets the sliding window (no context takeover).
    public func reset() { deflateReset(stream) }
}

/// A raw-inflate decompressor with an output bound (no decompression bombs).
public final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    public static let approximateMemory = (1 << 15) + 7 * 1024

    public init() throws(ZlibError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // A 15-bit window decodes data made with any smaller window.
        let r = czlib_inflateInit2(stream, -15)
        guard r == Z_OK else {
            stream.deallocate()
            throw ZlibError(code: r, message: "inflateInit2 failed")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    public enum Result: Equatable {
        case ok
        /// The output would exceed the limit.
        case limitExceeded
    }

    /// Inflates `input`, appending to `out`, failing once `out` would exceed `limit` bytes.
    public func inflate(_ input: UnsafeRawBufferPointer, into out: inout [UInt8], limit: Int) throws(ZlibError) -> Result {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        defer { stream.pointee.next_in = nil; stream.pointee.next_out = nil }
        while true {
            let room = limit - out.count
            // Ask for one byte beyond the limit so "exactly at the limit" is not mistaken for overflow.
            let chunk = min(max(input.count * 4, 4096), max(room + 1, 1))
            let oldCount = out.count
            out.append(contentsOf: repeatElement(0, count: chunk))
            var r: Int32 = Z_OK
            var produced = 0
            out.withUnsafeMutableBufferPointer { b in
                stream.pointee.next_out = b.baseAddress! + oldCount
                stream.pointee.avail_out = UInt32(chunk)
                r = CZlib.inflate(stream, Z_SYNC_FLUSH)
                produced = chunk - Int(stream.pointee.avail_out)
            }
            out.removeLast(chunk - produced)
            if out.count > limit { return .limitExceeded }
            switch r {
            case Z_OK, Z_BUF_ERROR:
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { return .ok }
                if r == Z_BUF_ERROR && produced == 0 { return .ok }
            case Z_STREAM_END:
                // A block with BFINAL ended the stream (RFC 7692 §7.2.3.3 allows it); what follows
                // (at least the 00 00 FF FF we appended) starts a new one.
                inflateReset(stream)
                if stream.pointee.avail_in == 0 { return .ok }
            default:
                let msg = stream.pointee.msg.map { String(cString: $0) } ?? "inflate failed"
                throw ZlibError(code: r, message: msg)
            }
        }
    }

    public func reset() { inflateReset(stream) }
}

@available(*, unavailable)
extension Deflater: Sendable {}
@available(*, unavailable)
extension Inflater: Sendable {}
