/*
 * sys.c: EINTR-safe wrappers and close-on-exec descriptor creation.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void sys_close(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        /* Linux frees the descriptor even if close fails with EINTR, so a
         * retry could close a descriptor another thread just opened. */
        (void)close(*fd);
        *fd = -1;
        errno = saved;
    }
}

ssize_t sys_read(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t sys_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

pid_t sys_waitpid(pid_t pid, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(pid, status, flags);
    while (r < 0 && errno == EINTR);
    return r;
}

int sys_set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, flags) < 0)
        return errno;
    return 0;
}

int sys_pipe(int fds[2], int nonblock_read)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return errno;
    if (nonblock_read) {
        int err = sys_set_nonblock(fds[0], 1);
        if (err) {
            sys_close(&fds[0]);
            sys_close(&fds[1]);
            return err;
        }
    }
    return 0;
}

double sys_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sys_wait_any_readable(const int *fds, int n, double timeout)
{
    return sys_poll_readable(fds, n, timeout, NULL);
}

int sys_poll_readable(const int *fds, int n, double timeout, unsigned *ready)
{
    struct pollfd p[8];
    if (n < 0 || n > 8) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    int ms = -1;
    if (timeout >= 0)
        /* round up so a wait never ends a hair before its deadline */
        ms = timeout > 2e6 ? 2000000000 : (int)(timeout * 1000.0 + 0.999);
    int r = poll(p, (nfds_t)n, ms);
    if (r > 0) {
        if (ready) {
            *ready = 0;
            for (int i = 0; i < n; i++)
                if (p[i].revents)
                    *ready |= 1u << i;
        }
        return 1;
    }
    if (r == 0 || errno == EINTR)
        return 0;
    return -1;
}

int sys_wait_readable(int fd, double timeout)
{
    return sys_wait_any_readable(&fd, 1, timeout);
}
