// A connection's pending output: a list of heap chunks with stable addresses, written with
// one writev per flush. Chunks are freed as soon as they are written, so an idle connection
// holds no output memory.

/// One malloc'ed block of bytes; `start..<end` is pending.
final class OutboundChunk {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var start = 0
    var end = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }
    deinit { base.deallocate() }

    var count: Int { end - start }
    var room: Int { capacity - end }
}

/// Written-out chunks of the standard size, kept by the loop for the next write. Without it
/// every flush freed a 64 KiB block and the next write faulted fresh pages in (glibc trims the
/// heap top with madvise): measured as a doubling of server CPU for 16 KiB echoes.
final class ChunkPool {
    private var free: [OutboundChunk] = []
    /// At most this many idle chunks per loop (4 MiB).
    let limit = 64

    func take(minimum: Int) -> OutboundChunk {
        if minimum <= OutboundQueue.chunkSize, let c = free.popLast() { return c }
        return OutboundChunk(capacity: max(OutboundQueue.chunkSize, minimum))
    }

    func give(_ c: OutboundChunk) {
        guard c.capacity == OutboundQueue.chunkSize, free.count < limit else { return }
        c.start = 0
        c.end = 0
        free.append(c)
    }
}

@available(*, unavailable)
extension ChunkPool: Sendable {}

/// The queue itself. Owned by one connection, confined to its loop.
struct OutboundQueue {
    private(set) var chunks: [OutboundChunk] = []
    private var head = 0
    /// Bytes waiting to be written.
    private(set) var byteCount = 0
    static let chunkSize = 64 * 1024

    var isEmpty: Bool { byteCount == 0 }

    /// Reserves `count` contiguous bytes at the tail; the writer fills them and calls ``commit(_:)``.
    mutating func reserve(_ count: Int, pool: ChunkPool) -> UnsafeMutableRawPointer {
        if let last = chunks.last, head < chunks.count, last.room >= count {
            return last.base + last.end
        }
        let c = pool.take(minimum: count)
        chunks.append(c)
        return c.base
    }

    mutating func commit(_ count: Int) {
        let last = chunks[chunks.count - 1]
        last.end += count
        byteCount += count
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: ChunkPool) {
        guard bytes.count > 0 else { return }
        let p = reserve(bytes.count, pool: pool)
        p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        commit(bytes.count)
    }

    /// Fills `iov` with up to `max` pending regions; returns how many.
    func fill(_ iov: UnsafeMutablePointer<iovec>, max: Int) -> Int {
        var n = 0
        var i = head
        while i < chunks.count && n < max {
            let c = chunks[i]
            if c.count > 0 {
                iov[n] = iovec(iov_base: c.base + c.start, iov_len: c.count)
                n += 1
            }
            i += 1
        }
        return n
    }

    /// Marks `count` bytes as written, returning finished chunks to the pool.
    mutating func consume(_ count: Int, pool: ChunkPool) {
        var left = count
        byteCount -= count
        while left > 0 {
            let c = chunks[head]
            let take = min(left, c.count)
            c.start += take
            left -= take
            if c.count == 0 { head += 1 }
        }
        if byteCount == 0 {
            for c in chunks { pool.give(c) }
            chunks.removeAll(keepingCapacity: false)
            head = 0
        } else if head > 16 {
            for c in chunks[0..<head] { pool.give(c) }
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// Moves every pending byte out through `body` (used to feed TLS), then empties the queue.
    mutating func drain(pool: ChunkPool, _ body: (UnsafeRawBufferPointer) -> Void) {
        for i in head..<chunks.count {
            let c = chunks[i]
            if c.count > 0 { body(UnsafeRawBufferPointer(start: c.base + c.start, count: c.count)) }
        }
        for c in chunks { pool.give(c) }
        chunks.removeAll(keepingCapacity: false)
        head = 0
        byteCount = 0
    }

    mutating func removeAll() {
        chunks.removeAll(keepingCapacity: false)
        head = 0
        byteCount = 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
