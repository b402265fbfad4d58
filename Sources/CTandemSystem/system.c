#define _GNU_SOURCE
#include "CTandemSystem.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const uint32_t CTANDEM_EPOLLIN = EPOLLIN;
const uint32_t CTANDEM_EPOLLOUT = EPOLLOUT;
const uint32_t CTANDEM_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t CTANDEM_EPOLLERR = EPOLLERR;
const uint32_t CTANDEM_EPOLLHUP = EPOLLHUP;
const uint32_t CTANDEM_EPOLLET = EPOLLET;

int ctandem_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}
int ctandem_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) { return ctl(epfd, EPOLL_CTL_ADD, fd, events, data); }
int ctandem_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data) { return ctl(epfd, EPOLL_CTL_MOD, fd, events, data); }
int ctandem_epoll_del(int epfd, int fd) { return ctl(epfd, EPOLL_CTL_DEL, fd, 0, 0); }

int ctandem_epoll_wait(int epfd, ctandem_event *out, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n;
    do { n = epoll_wait(epfd, evs, max, timeout_ms); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) { out[i].events = evs[i].events; out[i].data = evs[i].data.u64; }
    return n;
}

int ctandem_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
int ctandem_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t r;
    do { r = write(fd, &one, sizeof one); } while (r < 0 && errno == EINTR);
    return r < 0 && errno != EAGAIN ? -errno : 0;
}
int ctandem_eventfd_drain(int fd) {
    uint64_t v;
    ssize_t r;
    do { r = read(fd, &v, sizeof v); } while (r < 0 && errno == EINTR);
    return r < 0 && errno != EAGAIN ? -errno : 0;
}

int ctandem_listen(const char *host, int port, int backlog, int reuseport, int *bound_port) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    int family;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        family = AF_INET; a4->sin_family = AF_INET; a4->sin_port = htons((uint16_t)port); len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        family = AF_INET6; a6->sin6_family = AF_INET6; a6->sin6_port = htons((uint16_t)port); len = sizeof *a6;
    } else {
        return -EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
        int e = errno; close(fd); return -e;
    }
    if (bound_port) {
        struct sockaddr_storage b; socklen_t bl = sizeof b;
        getsockname(fd, (struct sockaddr *)&b, &bl);
        *bound_port = b.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&b)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&b)->sin_port);
    }
    return fd;
}

int ctandem_accept(int fd, char *peer, int peerlen) {
    struct sockaddr_storage ss; socklen_t len = sizeof ss;
    int c;
    do { c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC); } while (c < 0 && errno == EINTR);
    if (c < 0) return -errno;
    if (peer && peerlen > 0) {
        peer[0] = 0;
        if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, peerlen);
        else if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, peerlen);
    }
    return c;
}

int ctandem_connect(const char *host, int port, int *in_progress) {
    struct sockaddr_storage ss; socklen_t len; memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    int family;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        family = AF_INET; a4->sin_family = AF_INET; a4->sin_port = htons((uint16_t)port); len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        family = AF_INET6; a6->sin6_family = AF_INET6; a6->sin6_port = htons((uint16_t)port); len = sizeof *a6;
    } else {
        return -EINVAL;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    *in_progress = 0;
    int r;
    do { r = connect(fd, (struct sockaddr *)&ss, len); } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EINPROGRESS) { *in_progress = 1; }
        else { int e = errno; close(fd); return -e; }
    }
    return fd;
}

int ctandem_resolve(const char *host, char *out, int outlen) {
    struct addrinfo hints, *res = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, 0, &hints, &res) != 0 || !res) return -1;
    const void *addr = res->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    const char *ok = inet_ntop(res->ai_family, addr, out, outlen);
    freeaddrinfo(res);
    return ok ? 0 : -1;
}

int ctandem_socket_error(int fd) {
    int err = 0; socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}
int ctandem_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ? -errno : 0;
}
int ctandem_shutdown_write(int fd) { return shutdown(fd, SHUT_WR) < 0 ? -errno : 0; }

ssize_t ctandem_read(int fd, void *buf, size_t len) {
    ssize_t r;
    do { r = read(fd, buf, len); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}
ssize_t ctandem_writev(int fd, const struct iovec *iov, int iovcnt) {
    ssize_t r;
    do { r = writev(fd, iov, iovcnt); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}
ssize_t ctandem_write(int fd, const void *buf, size_t len) {
    ssize_t r;
    do { r = write(fd, buf, len); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}
int ctandem_close(int fd) { return close(fd) < 0 ? -errno : 0; }

uint64_t ctandem_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
void ctandem_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
int ctandem_iov_max(void) { return IOV_MAX; }
long ctandem_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

#include <pthread.h>
int ctandem_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15); buf[15] = 0;
    return pthread_setname_np(pthread_self(), buf);
}

static void shutdown_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}
void ctandem_block_signals(void) {
    sigset_t set;
    shutdown_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, 0);
}
int ctandem_wait_signal(void) {
    sigset_t set;
    shutdown_set(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig;
}
