// Readiness callbacks for descriptors that are not sockets: pipes to kernel containers, pidfds
// of child processes. Loop-confined, like everything a ``Loop`` owns.
import CTandemSystem

/// A descriptor registered with a loop; `handler` runs on the loop thread with the epoll bits.
/// The watch does not own the descriptor: ``cancel()`` deregisters it and the owner closes it.
public final class FileDescriptorWatch: Selectable {
    public let fd: Int32
    private unowned let loop: Loop
    private var id: UInt64 = 0
    private var handler: ((UInt32) -> Void)?

    fileprivate init(fd: Int32, loop: Loop, handler: @escaping (UInt32) -> Void) {
        self.fd = fd
        self.loop = loop
        self.handler = handler
    }

    public var isActive: Bool { handler != nil }

    public func ready(events: UInt32) { handler?(events) }

    /// Changes the events the watch waits for (for example adding `Epoll.writable`).
    public func update(events: UInt32) {
        guard handler != nil else { return }
        loop.modify(fd: fd, id: id, events: events)
    }

    /// Stops the callbacks; safe to call more than once.
    public func cancel() {
        guard handler != nil else { return }
        handler = nil
        loop.deregister(fd: fd, id: id)
    }

    fileprivate func register(events: UInt32) throws(IOError) {
        id = try loop.register(fd: fd, events: events, self)
    }
}

extension Loop {
    /// Calls `handler` on this loop whenever `fd` is ready for `events` (level-triggered).
    public func watch(fd: Int32, events: UInt32, _ handler: @escaping (UInt32) -> Void) throws(IOError) -> FileDescriptorWatch {
        let w = FileDescriptorWatch(fd: fd, loop: self, handler: handler)
        try w.register(events: events)
        return w
    }
}

@available(*, unavailable)
extension FileDescriptorWatch: Sendable {}
