// Workspace file access: openat2 with scoped resolution, *at calls relative to directory
// descriptors, getdents and inotify parsing. Every function returns -errno on failure and
// retries EINTR, so the Swift side never reads the thread-local errno.
#define _GNU_SOURCE
#include "CTandemSystem.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

const int CTANDEM_O_RDONLY = O_RDONLY;
const int CTANDEM_O_WRONLY = O_WRONLY;
const int CTANDEM_O_PATH = O_PATH;
const int CTANDEM_O_DIRECTORY = O_DIRECTORY;
const int CTANDEM_O_NOFOLLOW = O_NOFOLLOW;
const int CTANDEM_O_CREAT = O_CREAT;
const int CTANDEM_O_EXCL = O_EXCL;
const int CTANDEM_O_NONBLOCK = O_NONBLOCK;
const int CTANDEM_O_NOCTTY = O_NOCTTY;
const uint64_t CTANDEM_RESOLVE_WORKSPACE =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
const unsigned CTANDEM_RENAME_NOREPLACE = RENAME_NOREPLACE;
const unsigned CTANDEM_RENAME_EXCHANGE = RENAME_EXCHANGE;

const uint32_t CTANDEM_IN_CREATE = IN_CREATE;
const uint32_t CTANDEM_IN_MODIFY = IN_MODIFY;
const uint32_t CTANDEM_IN_CLOSE_WRITE = IN_CLOSE_WRITE;
const uint32_t CTANDEM_IN_DELETE = IN_DELETE;
const uint32_t CTANDEM_IN_DELETE_SELF = IN_DELETE_SELF;
const uint32_t CTANDEM_IN_MOVE_SELF = IN_MOVE_SELF;
const uint32_t CTANDEM_IN_MOVED_FROM = IN_MOVED_FROM;
const uint32_t CTANDEM_IN_MOVED_TO = IN_MOVED_TO;
const uint32_t CTANDEM_IN_ATTRIB = IN_ATTRIB;
const uint32_t CTANDEM_IN_IGNORED = IN_IGNORED;
const uint32_t CTANDEM_IN_ISDIR = IN_ISDIR;
const uint32_t CTANDEM_IN_Q_OVERFLOW = IN_Q_OVERFLOW;
const uint32_t CTANDEM_IN_UNMOUNT = IN_UNMOUNT;
const uint32_t CTANDEM_IN_ONLYDIR = IN_ONLYDIR;
const uint32_t CTANDEM_IN_EXCL_UNLINK = IN_EXCL_UNLINK;

int ctandem_openat2(int dirfd, const char *path, int flags, unsigned mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = resolve;
    // EAGAIN: RESOLVE_BENEATH could not rule out a ".." race (a concurrent rename); the
    // kernel asks the caller to retry. Bounded, so a hostile renamer cannot spin us forever.
    for (int attempt = 0;; attempt++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno == EINTR) continue;
        if (errno == EAGAIN && attempt < 16) continue;
        return -errno;
    }
}

static void fill_stat(const struct stat *st, ctandem_file_stat *out) {
    memset(out, 0, sizeof *out);
    if (S_ISREG(st->st_mode)) out->kind = CTANDEM_KIND_FILE;
    else if (S_ISDIR(st->st_mode)) out->kind = CTANDEM_KIND_DIRECTORY;
    else if (S_ISLNK(st->st_mode)) out->kind = CTANDEM_KIND_SYMLINK;
    else out->kind = CTANDEM_KIND_OTHER;
    out->mode = st->st_mode & 07777;
    out->size = st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    out->dev = st->st_dev;
    out->ino = st->st_ino;
    out->uid = st->st_uid;
    out->gid = st->st_gid;
    out->nlink = st->st_nlink;
}

int ctandem_fstat(int fd, ctandem_file_stat *out) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    fill_stat(&st, out);
    return 0;
}

int ctandem_fstatat_nofollow(int dirfd, const char *name, ctandem_file_stat *out) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    fill_stat(&st, out);
    return 0;
}

int ctandem_reopen(int fd, int flags) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int r;
    do { r = open(path, flags | O_CLOEXEC); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

int ctandem_mkdirat(int dirfd, const char *name, unsigned mode) {
    return mkdirat(dirfd, name, (mode_t)mode) < 0 ? -errno : 0;
}

int ctandem_unlinkat(int dirfd, const char *name, int is_dir) {
    return unlinkat(dirfd, name, is_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

int ctandem_renameat2(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned flags) {
    long r = syscall(SYS_renameat2, olddirfd, oldname, newdirfd, newname, flags);
    return r < 0 ? -errno : 0;
}

int ctandem_fchown(int fd, uint32_t uid, uint32_t gid) {
    return fchown(fd, (uid_t)uid, (gid_t)gid) < 0 ? -errno : 0;
}

int ctandem_fchmod(int fd, unsigned mode) {
    return fchmod(fd, (mode_t)mode) < 0 ? -errno : 0;
}

int ctandem_fsync(int fd) {
    int r;
    do { r = fsync(fd); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

ssize_t ctandem_write_all(int fd, const void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t r = write(fd, (const char *)buf + done, len - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t ctandem_read_full(int fd, void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t r = read(fd, (char *)buf + done, len - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int ctandem_rewind_dir(int fd) {
    return lseek(fd, 0, SEEK_SET) < 0 ? -errno : 0;
}

ssize_t ctandem_getdents(int fd, void *buf, size_t len) {
    ssize_t r;
    do { r = syscall(SYS_getdents64, fd, buf, len); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

// The kernel's record; glibc does not declare it.
struct ctandem_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int ctandem_dirent_next(const void *buf, size_t len, size_t *pos, const char **name, uint8_t *type) {
    while (*pos + offsetof(struct ctandem_dirent64, d_name) <= len) {
        const struct ctandem_dirent64 *d = (const void *)((const char *)buf + *pos);
        if (d->d_reclen == 0 || *pos + d->d_reclen > len) return 0;
        *pos += d->d_reclen;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
        *name = d->d_name;
        switch (d->d_type) {
        case DT_REG: *type = CTANDEM_KIND_FILE; break;
        case DT_DIR: *type = CTANDEM_KIND_DIRECTORY; break;
        case DT_LNK: *type = CTANDEM_KIND_SYMLINK; break;
        case DT_UNKNOWN: *type = CTANDEM_KIND_UNKNOWN; break;
        default: *type = CTANDEM_KIND_OTHER; break;
        }
        return 1;
    }
    return 0;
}

int ctandem_inotify_init(void) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ctandem_inotify_add_fd(int ifd, int dirfd, uint32_t mask) {
    // inotify_add_watch takes a path; the magic link of our own descriptor names exactly the
    // directory we resolved safely, whatever happened to its path since.
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", dirfd);
    int wd = inotify_add_watch(ifd, path, mask | IN_ONLYDIR);
    return wd < 0 ? -errno : wd;
}

int ctandem_inotify_rm(int ifd, int wd) {
    return inotify_rm_watch(ifd, wd) < 0 ? -errno : 0;
}

int ctandem_inotify_next(const void *buf, size_t len, size_t *pos, int32_t *wd, uint32_t *mask,
                         uint32_t *cookie, const char **name) {
    if (*pos + sizeof(struct inotify_event) > len) return 0;
    const struct inotify_event *e = (const void *)((const char *)buf + *pos);
    size_t size = sizeof(struct inotify_event) + e->len;
    if (*pos + size > len) return 0;
    *pos += size;
    *wd = e->wd;
    *mask = e->mask;
    *cookie = e->cookie;
    // `name` is NUL-padded to its length; empty for events on the watched directory itself.
    *name = e->len > 0 ? e->name : "";
    return 1;
}
