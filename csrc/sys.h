/*
 * sys.h: the few system-call wrappers every part of the core shares.
 *
 * The core returns errno values and never exits, aborts or longjmps; these
 * helpers keep EINTR handling and descriptor creation in one place, so every
 * descriptor is close-on-exec from birth and no call is lost to a signal.
 */
#ifndef APPSTART_SYS_H
#define APPSTART_SYS_H

#include <sys/stat.h>
#include <signal.h>
#include <sys/types.h>

/* Close *fd if open and mark it closed. Never retried on EINTR: on Linux the
 * descriptor is released even when close reports EINTR. */
void sys_close(int *fd);

/* read/write/recvmsg retried on EINTR; -1 with errno otherwise. */
ssize_t sys_read(int fd, void *buf, size_t len);

/* The whole of a small file (at dirfd/name, or a path when dirfd is
 * AT_FDCWD) into buf (len bytes with the NUL), NUL-terminated: its length
 * or -errno. */
ssize_t sys_read_small(int dirfd, const char *name, char *buf, size_t len);

/* Signal sets as the kernel takes them: the first SYS_SIGSET_BYTES of a
 * sigset_t, signal n at bit n - 1 of an array of unsigned long. The C
 * library's calls leave out the two signals it keeps for itself (32 and
 * 33): sigaddset refuses them, sigprocmask neither blocks them nor keeps
 * them blocked across a SIG_SETMASK, sigaction will not say how they are
 * disposed. These are the kernel's own calls. */
#define SYS_SIGSET_BYTES ((NSIG - 1 + 7) / 8)
void sys_sigset_add(sigset_t *set, int sig);
int sys_sigset_has(const sigset_t *set, int sig);

/* The thread's signal mask (how: SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK):
 * 0 or an errno value. */
int sys_sigmask(int how, const sigset_t *set, sigset_t *old);

/* SIGCHLD ignored (SIG_IGN survives exec: a launcher may inherit it), or
 * its handler's SA_NOCLDWAIT, has the kernel reap the launcher's children:
 * their exit status is lost, and waitid can no longer see them end. Put
 * back as a spawn needs it: the default for SIG_IGN, the caller's handler
 * without that flag. (The parent's side, before a spawn.) */
void sys_keep_child_status(void);

/* A signalfd for set (flags: SFD_*): the descriptor, or -1 with errno. */
int sys_signalfd(const sigset_t *set, int flags);

/* Is signal sig ignored (SIG_IGN)? And set it to its default
 * (async-signal-safe: the spawned child's reset). */
int sys_signal_ignored(int sig);
void sys_signal_default(int sig);
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

/* The places a sweep of what killed launchers left has looked at in this
 * process, and when to look again (the notify sockets' base directories,
 * the cgroups' parents): a few, past which every call sweeps, which is
 * only slower. The caller holds its own lock around both calls. */
#define SYS_SWEEPS 4
#define SYS_SWEEP_AGAIN 1.0 /* seconds after a sweep ended */
struct sys_sweeps {
    char place[SYS_SWEEPS][128];
    double again_at[SYS_SWEEPS]; /* 0: never again */
    int n;
};
/* Whether place is due: never swept here, or its time to look again has
 * come. */
int sys_sweep_due(const struct sys_sweeps *s, const char *place);
/* Place has just been swept: look again SYS_SWEEP_AGAIN seconds from now
 * (again), or never. */
void sys_swept(struct sys_sweeps *s, const char *place, int again);

/* Whether err says the system is out of descriptors or memory for now
 * (EMFILE, ENFILE, ENOMEM, ENOBUFS): a try that failed and is made again
 * later, never a verdict on the app. */
int sys_lacks_resources(int err);

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

/* ---- paths another user cannot redirect ---- */

/* The directory named by the first len bytes of path (absolute: from "/",
 * else from the working directory), opened O_PATH and close-on-exec into
 * *out by a walk of one component at a time (openat, O_NOFOLLOW) that no
 * user but root and the launcher (its euid) can steer, whoever owns the
 * directories on the way: a component that is a symbolic link is followed
 * only when the link is owned by root or the launcher, and so is the
 * directory holding it, which no one else can write (not others, nor a
 * group but root's) unless it is sticky (then only an entry's owner, the
 * directory's or root may replace the link). The idea is systemd's
 * chase() with CHASE_SAFE: /var/run -> /run (root's link in root's 0755
 * /var) is followed, a link /home/u/logs made by u is not.
 *
 * ".." in path is refused; in the target of a link so followed it is the
 * parent of the directory walked through (checked to be that very one). At
 * most SYS_MAX_LINKS links are followed. Returns 0, or an errno value with
 * *out -1; *why is then a phrase for what the walk refused ("a symbolic
 * link on its way that a user other than root could change (never
 * followed)"), or NULL when the error is the system's (ENOENT, EACCES,
 * ENOTDIR...). Only system calls and string functions: every caller runs
 * in the launcher, before the spawn, none between fork and exec. */
#define SYS_MAX_LINKS 40
int sys_open_dir_safely(const char *path, size_t len, int *out, const char **why);

/* The same for the directory holding path's last component, which is
 * *name (within path: after its last '/'; "" when path ends with '/'). */
int sys_open_parent_safely(const char *path, int *dir_fd, const char **name, const char **why);

/* The kernel's fs.protected_regular and protected_fifos, in user space:
 * is the regular file or FIFO st, found in the directory dir_fd, one the
 * launcher must not use? Yes (EPERM) when dir_fd is sticky and writable
 * by others (as /tmp is) and st's owner is none of root, the launcher's
 * euid, the directory's owner and `also` (the app's user; (uid_t)-1:
 * none): another user planted it there. 0 when it may be used (or st is
 * neither), else an errno value. */
int sys_foreign_in_sticky_dir(int dir_fd, const struct stat *st, uid_t also);

/* A file the launcher opens to read for an app of another user (app_uid;
 * (uid_t)-1: none, or the launcher's own: no check): is the regular file
 * st, found in dir_fd, one that user could not read itself (not its own,
 * not readable by all, nor by a group it is in as it logs in), in a
 * directory whose names a user other than root
 * and the launcher's can change (its owner is another, or it is writable
 * by others, or by a group other than root's, sticky or not)? That user
 * may have moved it there (root's, another user's file), to have the
 * launcher read it for the app: EACCES then; 0 when it may be read, else
 * an errno value. */
int sys_unreadable_moved_in(int dir_fd, const struct stat *st, uid_t app_uid);

/* The same for whatever is named name in dir_fd (any type: a name the
 * launcher would rename or remove), not following a link: 0 when there
 * is none. */
int sys_foreign_name_in_sticky_dir(int dir_fd, const char *name, uid_t also);

#endif
