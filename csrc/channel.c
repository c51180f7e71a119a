/*
 * channel.c: the ready socket pair, and receiving with kernel-attested
 * credentials.
 */
#include "channel.h"
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The most descriptors one message carries: the kernel's own limit on a
 * sendmsg (SCM_MAX_FD), and a read never takes those of two messages. */
#define CHANNEL_MAX_FDS 253

/* How deep close_passed looks into unix sockets passed inside passed
 * unix sockets: the kernel refuses to pass one nested deeper than 4 (its
 * MAX_RECURSION_LEVEL). */
#define PASSED_DEPTH_MAX 8

static void close_passed_at(int fd, int depth);
static void drain_passed(int fd, int depth);
static ssize_t recv_closing(int fd, char *buf, size_t cap, pid_t *sender, int *truncated, int depth);

int channel_ready_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return errno;
    int one = 1, err = 0;
    /* the launcher only reads (the app's writes are what we attest), and
     * its end stays blocking: channel_recv never waits (MSG_DONTWAIT). No
     * shutdown(SHUT_WR) either: an app that reads its end just waits, as
     * it would on the write end of a pipe. A system call a start spared. */
    if (setsockopt(fds[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        err = errno;
    if (err) {
        sys_close(&fds[0]);
        sys_close(&fds[1]);
    }
    return err;
}

/* Close a descriptor a sender passed along, without waiting: a socket set
 * to linger (SO_LINGER) would hold the launcher until its unsent data has
 * gone, as long as the sender likes, if this close is its last; lingering
 * is turned off first (the data still goes, after the close). A unix
 * socket may hold more such sockets, passed into its own queue, or
 * connections not accepted yet: the kernel would close those inside this
 * close, lingering on; they are taken out and closed so first. */
static void close_passed_at(int fd, int depth)
{
    struct stat st;
    struct linger lg;
    socklen_t len = sizeof lg;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
        if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff) {
            lg.l_onoff = 0;
            lg.l_linger = 0;
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        int domain = 0;
        len = sizeof domain;
        if (depth < PASSED_DEPTH_MAX && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
            domain == AF_UNIX)
            drain_passed(fd, depth + 1);
    }
    sys_close(&fd);
}

/* A passed unix socket's queue, or its connections not accepted yet, each
 * closed as close_passed_at closes: shut first, so that nothing more comes
 * (a stream's or a datagram's sender gets EPIPE), and so the queue is
 * finite (a stream's is its sender's buffer at most). */
static void drain_passed(int fd, int depth)
{
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
        (void)shutdown(fd, SHUT_RDWR); /* (no more connections) */
        int c;
        while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0 || errno == EINTR ||
               errno == ECONNABORTED)
            if (c >= 0)
                close_passed_at(c, depth);
        return;
    }
    (void)shutdown(fd, SHUT_RD);
    int type = 0;
    len = sizeof type;
    (void)getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    char buf[256];
    for (;;) {
        pid_t sender;
        int truncated;
        ssize_t n = recv_closing(fd, buf, sizeof buf, &sender, &truncated, depth);
        /* (an empty datagram is a message, and may carry descriptors; a
         * stream says 0 at its end) */
        if (n < 0 || (n == 0 && type == SOCK_STREAM))
            return;
    }
}

/* channel_recv, the descriptors passed closed as close_passed_at(depth)
 * closes them */
static ssize_t recv_closing(int fd, char *buf, size_t cap, pid_t *sender, int *truncated, int depth)
{
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    /* room for the credentials and as many descriptors as one message
     * can carry: sd_notify clients pass some (systemd-notify's barrier
     * pipe). They are closed below, which is what releases such a
     * barrier. None may be left to the kernel: those beyond the room
     * would be closed by it (MSG_CTRUNC) inside this call, with a
     * socket's lingering still on, and the launcher would wait it out. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(CHANNEL_MAX_FDS * sizeof(int))];
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    *sender = 0;
    *truncated = 0;
    if (n < 0)
        return -1;
    *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            *sender = cred.pid;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            /* descriptors nobody asked for: close them, or they leak */
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                close_passed_at(passed, depth);
            }
        }
    }
    return n;
}

ssize_t channel_recv(int fd, char *buf, size_t cap, pid_t *sender,
                     int *truncated)
{
    return recv_closing(fd, buf, cap, sender, truncated, 0);
}

void channel_close(int *fd, int type)
{
    if (*fd < 0)
        return;
    /* from now on a sender's message is refused (EPIPE): what is queued is
     * all there is */
    (void)shutdown(*fd, SHUT_RD);
    char buf[4096];
    /* (every message: a stream's queue, bounded by its sender's buffer,
     * may hold thousands, each with a descriptor) */
    for (;;) {
        pid_t sender;
        int truncated;
        ssize_t n = channel_recv(*fd, buf, sizeof buf, &sender, &truncated);
        /* (an empty datagram is a message, and may carry descriptors; a
         * stream says 0 at its end) */
        if (n < 0 || (n == 0 && type != SOCK_DGRAM))
            break;
    }
    sys_close(fd);
}
