/*
 * sys.h: the few system-call wrappers every part of the core shares.
 *
 * The core returns errno values and never exits, aborts or longjmps; these
 * helpers keep EINTR handling and descriptor creation in one place, so every
 * descriptor is close-on-exec from birth and no call is lost to a signal.
 */
#ifndef APPSTART_SYS_H
#define APPSTART_SYS_H

#include <sys/types.h>

/* Close *fd if open and mark it closed. Never retried on EINTR: on Linux the
 * descriptor is released even when close reports EINTR. */
void sys_close(int *fd);

/* read/write/recvmsg retried on EINTR; -1 with errno otherwise. */
ssize_t sys_read(int fd, void *buf, size_t len);
ssize_t sys_write_all(int fd, const void *buf, size_t len);

/* waitpid retried on EINTR (skalibs' waitpid_nointr): the pid, 0 (WNOHANG
 * and still running) or -1 with errno. */
pid_t sys_waitpid(pid_t pid, int *status, int flags);

/* A pipe whose both ends are close-on-exec; the read end is non-blocking
 * when nonblock_read is set. Returns 0 or an errno value. */
int sys_pipe(int fds[2], int nonblock_read);

/* Set or clear O_NONBLOCK. Returns 0 or an errno value. */
int sys_set_nonblock(int fd, int on);

/* Monotonic time in seconds. */
double sys_now(void);

/* Wait for fd to become readable for up to timeout seconds (negative:
 * forever). Returns 1 when readable (or hung up), 0 at the timeout or when
 * a signal interrupted the wait, -1 with errno on error. A wait that can
 * last returns to its caller on EINTR rather than retrying: the caller owns
 * the deadline and waits again with the time left, and a Lua host's ^C
 * hook (lua5.4 at the REPL) runs only once C has returned. */
int sys_wait_readable(int fd, double timeout);

/* The same for any of n descriptors (at most 8; none: a sleep). With
 * ready not NULL, bit i of *ready says whether fds[i] was readable. */
int sys_wait_any_readable(const int *fds, int n, double timeout);
int sys_poll_readable(const int *fds, int n, double timeout, unsigned *ready);

#endif
