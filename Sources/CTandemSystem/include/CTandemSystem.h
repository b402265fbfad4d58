#ifndef CTANDEM_SYSTEM_H
#define CTANDEM_SYSTEM_H
// Thin, prefixed wrappers over Linux system calls whose C declarations do not
// import cleanly into Swift (packed structs, macros, enum-typed constants).
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct {
    uint32_t events;
    uint64_t data;
} ctandem_event;

extern const uint32_t CTANDEM_EPOLLIN;
extern const uint32_t CTANDEM_EPOLLOUT;
extern const uint32_t CTANDEM_EPOLLRDHUP;
extern const uint32_t CTANDEM_EPOLLERR;
extern const uint32_t CTANDEM_EPOLLHUP;
extern const uint32_t CTANDEM_EPOLLET;

int ctandem_epoll_create(void);
int ctandem_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int ctandem_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int ctandem_epoll_del(int epfd, int fd);
/// Waits like epoll_wait and copies the packed kernel structs into `out`.
int ctandem_epoll_wait(int epfd, ctandem_event *out, int max, int timeout_ms);

int ctandem_eventfd(void);
int ctandem_eventfd_signal(int fd);
int ctandem_eventfd_drain(int fd);

/// Creates a non-blocking, close-on-exec listening socket bound to host:port.
/// Returns the fd or -errno. `host` is a numeric IPv4 or IPv6 address.
int ctandem_listen(const char *host, int port, int backlog, int reuseport, int *bound_port);
/// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; returns fd or -errno. Writes the peer address
/// as text into `peer` (at least 64 bytes).
int ctandem_accept(int fd, char *peer, int peerlen);
/// Starts a non-blocking connect to a numeric host; returns fd or -errno. `*in_progress` is
/// set when the connect has not completed yet.
int ctandem_connect(const char *host, int port, int *in_progress);
/// Resolves a host name to a numeric address string (first result). Returns 0 or -1.
int ctandem_resolve(const char *host, char *out, int outlen);
/// SO_ERROR of a socket (for a finished non-blocking connect).
int ctandem_socket_error(int fd);
int ctandem_set_nodelay(int fd);
int ctandem_shutdown_write(int fd);

/// read/writev returning -errno on failure, retrying EINTR.
ssize_t ctandem_read(int fd, void *buf, size_t len);
ssize_t ctandem_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t ctandem_write(int fd, const void *buf, size_t len);
int ctandem_close(int fd);

/// Monotonic clock in nanoseconds.
uint64_t ctandem_now_ns(void);
/// Ignores SIGPIPE process-wide (writes to closed sockets return EPIPE instead).
void ctandem_ignore_sigpipe(void);
int ctandem_iov_max(void);
/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
long ctandem_raise_nofile(void);
int ctandem_set_thread_name(const char *name);
/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (threads created later inherit it).
void ctandem_block_signals(void);
/// Waits for one of the blocked signals; returns its number.
int ctandem_wait_signal(void);

// ---- Processes and namespaces (process.c) ----

/// Spawns `path` with `argv`/`envp` (NULL-terminated). The child gets `nfds` descriptors:
/// child fd i = parent fd `fds[i]` (-1 = /dev/null); every other descriptor is closed.
/// The child starts a new session, unblocks all signals and restores default dispositions,
/// enters the mount namespace `mntns_fd` first when it is >= 0, and changes to `cwd` when
/// non-NULL. Returns the pid (> 0) and a pidfd in `*pidfd` (or -1 when pidfd_open is missing),
/// or -errno, including the errno of a failed setns/chdir/execve in the child.
int ctandem_spawn(const char *path, char *const argv[], char *const envp[],
                  const int *fds, int nfds, int mntns_fd, const char *cwd, int *pidfd);
/// pidfd_open(2); -errno on failure.
int ctandem_pidfd_open(int pid);
/// waitpid(pid, WNOHANG). Returns pid when reaped (with *exit_code = exit status or -1 and
/// *term_signal = signal or 0), 0 when still running, -errno on failure.
int ctandem_reap(int pid, int *exit_code, int *term_signal);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our children are re-parented to us.
int ctandem_set_child_subreaper(void);
/// pipe2 with O_CLOEXEC (and O_NONBLOCK on the ends flagged). fds[0] read end, fds[1] write end.
int ctandem_pipe(int fds[2], int nonblock_read, int nonblock_write);
/// Creates a mount namespace (a slave copy of ours) in which `unmount_path` is lazily unmounted,
/// and returns a descriptor that keeps it alive (for setns). -errno on failure.
int ctandem_mount_ns_without(const char *unmount_path);
/// Mounts host directory `source` (a recursive bind, nosuid and nodev) at `target` inside the
/// mount namespace of process `pid`, from a short-lived child: open_tree(OPEN_TREE_CLONE),
/// mount_setattr, setns, move_mount. Returns 0 or -errno.
int ctandem_attach_mount(const char *source, int pid, const char *target);
/// pread into buf; -errno on failure.
ssize_t ctandem_pread(int fd, void *buf, size_t len, long offset);
/// Sets or clears O_NONBLOCK.
int ctandem_set_nonblocking(int fd, int on);
// ---- Workspace files (files.c) ----
// Scoped path resolution and *at calls for the workspace file layer (TandemFiles). Every call
// returns -errno on failure and retries EINTR; descriptors are opened close-on-exec.

extern const int CTANDEM_O_RDONLY;
extern const int CTANDEM_O_WRONLY;
extern const int CTANDEM_O_PATH;
extern const int CTANDEM_O_DIRECTORY;
extern const int CTANDEM_O_NOFOLLOW;
extern const int CTANDEM_O_CREAT;
extern const int CTANDEM_O_EXCL;
extern const int CTANDEM_O_NONBLOCK;
extern const int CTANDEM_O_NOCTTY;
/// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV.
extern const uint64_t CTANDEM_RESOLVE_WORKSPACE;
extern const unsigned CTANDEM_RENAME_NOREPLACE;
extern const unsigned CTANDEM_RENAME_EXCHANGE;

/// openat2(2) (Linux >= 5.6, syscall 437) with O_CLOEXEC added; `mode` is used only with
/// O_CREAT. Retries EINTR, and EAGAIN (a ".." race under RESOLVE_BENEATH) a bounded number of
/// times. Returns the fd or -errno (ELOOP: a symlink on the way, EXDEV: escape or mount crossing).
int ctandem_openat2(int dirfd, const char *path, int flags, unsigned mode, uint64_t resolve);

/// File kinds in ctandem_file_stat.kind and from ctandem_dirent_next.
#define CTANDEM_KIND_OTHER 0
#define CTANDEM_KIND_FILE 1
#define CTANDEM_KIND_DIRECTORY 2
#define CTANDEM_KIND_SYMLINK 3
/// Only from ctandem_dirent_next: the file system does not fill d_type.
#define CTANDEM_KIND_UNKNOWN 4

/// The fields of struct stat the file layer uses, flattened.
typedef struct {
    uint32_t kind;
    /// Permission bits (mode & 07777).
    uint32_t mode;
    int64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint64_t dev;
    uint64_t ino;
    uint32_t uid;
    uint32_t gid;
    uint64_t nlink;
} ctandem_file_stat;

int ctandem_fstat(int fd, ctandem_file_stat *out);
/// fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW).
int ctandem_fstatat_nofollow(int dirfd, const char *name, ctandem_file_stat *out);
/// Opens the inode an O_PATH descriptor refers to (through /proc/self/fd) with `flags`.
int ctandem_reopen(int fd, int flags);
int ctandem_mkdirat(int dirfd, const char *name, unsigned mode);
/// unlinkat, with AT_REMOVEDIR when `is_dir`.
int ctandem_unlinkat(int dirfd, const char *name, int is_dir);
/// renameat2(2) through syscall(); flags CTANDEM_RENAME_NOREPLACE / CTANDEM_RENAME_EXCHANGE.
int ctandem_renameat2(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned flags);
int ctandem_fchown(int fd, uint32_t uid, uint32_t gid);
int ctandem_fchmod(int fd, unsigned mode);
int ctandem_fsync(int fd);
/// Writes all `len` bytes (looping over short writes); returns len or -errno.
ssize_t ctandem_write_all(int fd, const void *buf, size_t len);
/// Reads until `len` bytes or end of file; returns the count or -errno.
ssize_t ctandem_read_full(int fd, void *buf, size_t len);
/// lseek(fd, 0, SEEK_SET) on a directory, to read its entries again.
int ctandem_rewind_dir(int fd);
/// getdents64(2) into `buf`; 0 at the end of the directory.
ssize_t ctandem_getdents(int fd, void *buf, size_t len);
/// Steps through a getdents64 buffer from `*pos`, skipping "." and "..". Returns 1 with the
/// entry's NUL-terminated name (pointing into `buf`) and its CTANDEM_KIND_*, or 0 at the end.
int ctandem_dirent_next(const void *buf, size_t len, size_t *pos, const char **name, uint8_t *type);

extern const uint32_t CTANDEM_IN_CREATE;
extern const uint32_t CTANDEM_IN_MODIFY;
extern const uint32_t CTANDEM_IN_CLOSE_WRITE;
extern const uint32_t CTANDEM_IN_DELETE;
extern const uint32_t CTANDEM_IN_DELETE_SELF;
extern const uint32_t CTANDEM_IN_MOVE_SELF;
extern const uint32_t CTANDEM_IN_MOVED_FROM;
extern const uint32_t CTANDEM_IN_MOVED_TO;
extern const uint32_t CTANDEM_IN_ATTRIB;
extern const uint32_t CTANDEM_IN_IGNORED;
extern const uint32_t CTANDEM_IN_ISDIR;
extern const uint32_t CTANDEM_IN_Q_OVERFLOW;
extern const uint32_t CTANDEM_IN_UNMOUNT;
extern const uint32_t CTANDEM_IN_ONLYDIR;
extern const uint32_t CTANDEM_IN_EXCL_UNLINK;

/// inotify_init1(IN_NONBLOCK | IN_CLOEXEC).
int ctandem_inotify_init(void);
/// Watches the directory open as `dirfd` (any descriptor, O_PATH included) through its
/// /proc/self/fd magic link, with IN_ONLYDIR added. Returns the watch descriptor.
int ctandem_inotify_add_fd(int ifd, int dirfd, uint32_t mask);
int ctandem_inotify_rm(int ifd, int wd);
/// Steps through a buffer read from an inotify descriptor. Returns 1 with the event's fields
/// (`name` points into `buf`, "" for events on the watched directory itself), or 0 at the end.
int ctandem_inotify_next(const void *buf, size_t len, size_t *pos, int32_t *wd, uint32_t *mask,
                         uint32_t *cookie, const char **name);
// ---- end of workspace files ----
#endif
