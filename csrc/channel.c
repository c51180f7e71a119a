/*
 * channel.c: the ready socket pair, the private notify socket, and receiving
 * with kernel-attested credentials.
 */
#include "channel.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int channel_ready_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return errno;
    int one = 1, err = 0;
    /* the launcher only reads: the app's writes are what we attest */
    if (setsockopt(fds[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        shutdown(fds[0], SHUT_WR) < 0)
        err = errno;
    /* a fresh socket has no other status flag to keep: no F_GETFL */
    if (!err && fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
        err = errno;
    if (err) {
        sys_close(&fds[0]);
        sys_close(&fds[1]);
    }
    return err;
}

int channel_notify_open(struct notify_channel *c, const char *base,
                        uid_t owner)
{
    c->fd = -1;
    c->dir[0] = c->path[0] = '\0';
    if (!base || !*base)
        base = "/tmp";
    if ((size_t)snprintf(c->dir, sizeof c->dir, "%s/appstart.XXXXXX", base) >=
        sizeof c->dir) {
        c->dir[0] = '\0';
        return ENAMETOOLONG;
    }
    /* mkdtemp makes the directory 0700: the socket inside is reachable only
     * by its owner (and root), whatever the socket's own mode */
    if (!mkdtemp(c->dir)) {
        int err = errno;
        c->dir[0] = '\0';
        return err;
    }
    snprintf(c->path, sizeof c->path, "%s/notify", c->dir);
    int err = 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(c->path) >= sizeof sa.sun_path) {
        err = ENAMETOOLONG;
        goto fail;
    }
    strcpy(sa.sun_path, c->path);
    c->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        err = errno;
        goto fail;
    }
    int one = 1;
    if (setsockopt(c->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 ||
        bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        err = errno;
        goto fail;
    }
    if (owner != (uid_t)-1 &&
        (chown(c->dir, owner, (gid_t)-1) < 0 ||
         chown(c->path, owner, (gid_t)-1) < 0)) {
        err = errno;
        goto fail;
    }
    return 0;
fail:
    channel_notify_close(c);
    return err;
}

void channel_notify_close(struct notify_channel *c)
{
    sys_close(&c->fd);
    if (c->path[0]) {
        (void)unlink(c->path);
        c->path[0] = '\0';
    }
    if (c->dir[0]) {
        (void)rmdir(c->dir);
        c->dir[0] = '\0';
    }
}

ssize_t channel_recv(int fd, char *buf, size_t cap, pid_t *sender,
                     int *truncated)
{
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    /* room for the credentials and a few descriptors: sd_notify clients
     * pass some (systemd-notify's barrier pipe). They are closed below,
     * which is what releases such a barrier; any beyond this room the
     * kernel discards itself (MSG_CTRUNC), so none can leak. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
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
                sys_close(&passed);
            }
        }
    }
    return n;
}
