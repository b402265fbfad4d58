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

/// The queue itself. Owned by one connection, confined to its loop.
struct OutboundQueue {
    private(set) var chunks: [OutboundChunk] = []
    private var head = 0
    /// Bytes waiting to be written.
    private(set) var byteCount = 0
    static let chunkSize = 64 * 1024

    var isEmpty: Bool { byteCount == 0 }

    /// Reserves `count` contiguous bytes at the tail; the writer fills them and calls ``commit(_:)``.
    mutating func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if let last = chunks.last, head < chunks.count, last.room >= count {
            return last.base + last.end
        }
        let c = OutboundChunk(capacity: max(Self.chunkSize, count))
        chunks.append(c)
        return c.base
    }

    mutating func commit(_ count: Int) {
        let last = chunks[chunks.count - 1]
        last.end += count
        byteCount += count
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let p = reserve(bytes.count)
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

    /// Marks `count` bytes as written, releasing finished chunks.
    mutating func consume(_ count: Int) {
        var left = count
        byteCount -= count
        while left > 0 {
            let c = chunks[head]
            let take = min(left, c.count)
            c.start += take
            left -= take
            if c.count == 0 { head += 1 }
        }
        while head < chunks.count && chunks[head].count == 0 && chunks[head].room == 0 { head += 1 }
        if byteCount == 0 {
            chunks.removeAll(keepingCapacity: false)
            head = 0
        } else if head > 16 {
            chunks.removeFirst(head)
            head = 0
        }
    }

    /// Moves every pending byte out through `body` (used to feed TLS), then empties the queue.
    mutating func drain(_ body: (UnsafeRawBufferPointer) -> Void) {
        for i in head..<chunks.count {
            let c = chunks[i]
            if c.count > 0 { body(UnsafeRawBufferPointer(start: c.base + c.start, count: c.count)) }
        }
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
