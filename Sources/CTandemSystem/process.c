// Process spawning, reaping and mount-namespace helpers for the kernel containers.
// The child side of ctandem_spawn runs between fork() and execve() in a copy of a
// multi-threaded process, so it calls only async-signal-safe functions.
#define _GNU_SOURCE
#include "CTandemSystem.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CTANDEM_CLOSE_RANGE_CLOEXEC (1U << 2)
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int ctandem_pidfd_open(int pid) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : fd;
}

static void child_fail(int errfd, int err) {
    (void)!write(errfd, &err, sizeof err);
    _exit(127);
}

int ctandem_spawn(const char *path, char *const argv[], char *const envp[],
                  const int *fds, int nfds, int mntns_fd, const char *cwd, int *pidfd) {
    if (nfds < 0 || nfds > 64) return -EINVAL;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return -e;
    }
    if (pid == 0) {
        int errfd = errpipe[1];
        // The namespace first: its descriptor may sit where a target descriptor goes.
        if (mntns_fd >= 0 && setns(mntns_fd, CLONE_NEWNS) < 0) child_fail(errfd, errno);
        // Move the error pipe and every source above the target range so dup2 cannot clobber.
        int high = 100;
        int moved_err = fcntl(errfd, F_DUPFD_CLOEXEC, high);
        if (moved_err < 0) child_fail(errfd, errno);
        errfd = moved_err;
        int src[64];
        for (int i = 0; i < nfds; i++) {
            src[i] = fds[i] < 0 ? open("/dev/null", O_RDWR | O_CLOEXEC) : fcntl(fds[i], F_DUPFD_CLOEXEC, high);
            if (src[i] < 0) child_fail(errfd, errno);
        }
        for (int i = 0; i < nfds; i++) {
            if (dup2(src[i], i) < 0) child_fail(errfd, errno);  // dup2 clears FD_CLOEXEC
        }
        // Everything above the targets closes at execve (the error pipe only if it succeeds).
        if (syscall(SYS_close_range, (unsigned)nfds, ~0U, CTANDEM_CLOSE_RANGE_CLOEXEC) < 0) {
            for (int fd = nfds; fd < 4096; fd++) if (fd != errfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
        }
        setsid();
        if (cwd && chdir(cwd) < 0) child_fail(errfd, errno);
        execve(path, argv, envp);
        child_fail(errfd, errno);
    }
    close(errpipe[1]);
    int childErr = 0;
    ssize_t n;
    do { n = read(errpipe[0], &childErr, sizeof childErr); } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof childErr) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -childErr;
    }
    if (pidfd) {
        int p = ctandem_pidfd_open(pid);
        *pidfd = p < 0 ? -1 : p;
    }
    return pid;
}

int ctandem_reap(int pid, int *exit_code, int *term_signal) {
    int status = 0;
    pid_t r;
    do { r = waitpid(pid, &status, WNOHANG); } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r == 0) return 0;
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return r;
}

int ctandem_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int ctandem_pipe(int fds[2], int nonblock_read, int nonblock_write) {
    if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
    if (nonblock_read) fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    if (nonblock_write) fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    return 0;
}

int ctandem_set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

ssize_t ctandem_pread(int fd, void *buf, size_t len, long offset) {
    ssize_t n;
    do { n = pread(fd, buf, len, offset); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int ctandem_mount_ns_without(const char *unmount_path) {
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -errno;
    if (pipe2(hold, O_CLOEXEC) < 0) {
        int e = errno;
        close(ready[0]);
        close(ready[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(ready[0]); close(ready[1]); close(hold[0]); close(hold[1]);
        return -e;
    }
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        int err = 0;
        if (unshare(CLONE_NEWNS) < 0) err = errno;
        else if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) err = errno;
        else if (umount2(unmount_path, MNT_DETACH) < 0) err = errno;
        (void)!write(ready[1], &err, sizeof err);
        char c;
        (void)!read(hold[0], &c, 1);  // returns at EOF, once the parent has opened our namespace
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    int err = 0;
    ssize_t n;
    do { n = read(ready[0], &err, sizeof err); } while (n < 0 && errno == EINTR);
    close(ready[0]);
    int result;
    if (n != (ssize_t)sizeof err) result = -EIO;
    else if (err != 0) result = -err;
    else {
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/ns/mnt", (int)pid);
        result = open(p, O_RDONLY | O_CLOEXEC);
        if (result < 0) result = -errno;
    }
    close(hold[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return result;
}

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

int ctandem_attach_mount(const char *source, int pid, const char *target) {
    char nspath[64];
    snprintf(nspath, sizeof nspath, "/proc/%d/ns/mnt", pid);
    int ns = open(nspath, O_RDONLY | O_CLOEXEC);
    if (ns < 0) return -errno;
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) {
        int e = errno;
        close(ns);
        return -e;
    }
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        int e = errno;
        close(tree);
        close(ns);
        return -e;
    }
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        int e = errno;
        close(tree);
        close(ns);
        return -e;
    }
    // setns(CLONE_NEWNS) needs a single-threaded caller: a forked child.
    pid_t child = fork();
    if (child == 0) {
        int err = 0;
        if (setns(ns, CLONE_NEWNS) < 0) err = errno;
        else if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) err = errno;
        (void)!write(errpipe[1], &err, sizeof err);
        _exit(err == 0 ? 0 : 1);
    }
    int e = child < 0 ? errno : 0;
    close(errpipe[1]);
    close(tree);
    close(ns);
    if (child < 0) {
        close(errpipe[0]);
        return -e;
    }
    int err = 0;
    ssize_t n;
    do { n = read(errpipe[0], &err, sizeof err); } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof err) return -EIO;
    return -err;
}
