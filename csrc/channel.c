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
    /* out-of-band data inline: a message sent MSG_OOB is read as the rest
     * are, its descriptors with it (left out of band, a read past it has
     * the kernel close them inside the launcher's read, a socket's
     * lingering still on) */
    else if (setsockopt(fds[0], SOL_SOCKET, SO_OOBINLINE, &one, sizeof one) < 0)
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
 * is turned off first (the data still goes, after the close). */
static void close_passed(int fd)
{
    struct stat st;
    struct linger lg;
    socklen_t len = sizeof lg;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
        getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff) {
        lg.l_onoff = 0;
        lg.l_linger = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    sys_close(&fd);
}

ssize_t channel_recv(int fd, char *buf, size_t cap, pid_t *sender,
                     int *truncated)
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
                close_passed(passed);
            }
        }
    }
    return n;
}

void channel_close(int *fd, int type)
{
    if (*fd < 0)
        return;
    /* from now on a sender's message is refused (EPIPE): what is queued is
     * all there is */
    (void)shutdown(*fd, SHUT_RD);
    char buf[4096];
    /* (every message: no new one can come, and a stream's queue, bounded
     * by its sender's buffer, may hold thousands, each with a descriptor
     * the kernel would close, lingering on, were it left to the close) */
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
