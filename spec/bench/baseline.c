/*
 * baseline.c: the plain C baselines that `make bench` (spec/bench/run.lua)
 * measures appstart against, on the same fixture in the same run.
 *
 *   baseline seq FIXTURE N
 *       B1: N starts one after the other: pipe, posix_spawn with the pipe's
 *       write end at fd 3, read the ready line, waitpid. FIXTURE runs as
 *       `FIXTURE line=3:baseline` (writes its line and exits).
 *   baseline seq-attested FIXTURE N
 *       B1 again, with what appstart's guarantees cost in plain C: the
 *       ready channel a unix socket pair with SO_PASSCRED (the kernel
 *       attests who wrote the line, which the reader checks), a pidfd for
 *       the app (its death wakes the wait even while a grandchild holds the
 *       channel), and a poll on both; still no timeouts, no exec-error
 *       channel. The floor under appstart's mechanism.
 *   baseline many FIXTURE N
 *       B2/B5: N concurrent starts: posix_spawn all (`FIXTURE line=3:baseline
 *       pause`), poll all pipes until every ready line is in, then SIGTERM and
 *       waitpid all.
 *
 *   baseline cat FILE N
 *       B10: `cat FILE` into a pipe (its stdout), read in 64 KiB chunks and
 *       its lines counted (memchr), N times; then waitpid. The floor under
 *       appstart's output reading: no line splitting into a ring, no Lua.
 *
 * Output: `key=value` lines on stdout (seconds, cpu: this process's own CPU
 * seconds, starts, vmhwm_kb, vmrss_start_kb). Exit 1 on any failure, with the reason on stderr.
 *
 * What it leaves out on purpose, being the floor: no exec-error channel, no
 * pidfd, no credentials check, no timeouts. posix_spawn is glibc's
 * clone(CLONE_VM | CLONE_VFORK) path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process alone (not its children). */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what)
{
    fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A field of /proc/self/status in kB, or -1. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t len = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* Start argv with a fresh pipe's write end at fd 3; the read end (close-on-
 * exec, blocking) goes to *rd. */
static pid_t spawn_with_pipe(char *const argv[], int *rd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        fail("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* dup2 onto another number clears close-on-exec on the copy */
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    pid_t pid;
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (err) {
        errno = err;
        fail("posix_spawn");
    }
    *rd = p[0];
    return pid;
}

/* Read from fd until a newline; 1 when the line is complete, 0 at EOF
 * before it, -1 on EAGAIN (nonblocking descriptors only). */
static int read_line(int fd)
{
    char buf[256];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return -1;
        if (n < 0)
            fail("read");
        if (n == 0)
            return 0;
        if (memchr(buf, '\n', (size_t)n))
            return 1;
    }
}

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail("waitpid");
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Start argv with a fresh socket pair's end at fd 3 (credentials on the
 * launcher's end, *rd) and a pidfd for it (*pidfd). */
static pid_t spawn_attested(char *const argv[], int *rd, int *pidfd)
{
    int p[2], one = 1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
        fail("socketpair");
    if (setsockopt(p[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        fail("setsockopt");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    pid_t pid;
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (err) {
        errno = err;
        fail("posix_spawn");
    }
    *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (*pidfd < 0)
        fail("pidfd_open");
    *rd = p[0];
    return pid;
}

/* Wait for the line on rd or the death of the app (pidfd), then read it
 * and check that the app itself wrote it. */
static int read_attested_line(int rd, int pidfd, pid_t pid)
{
    struct pollfd p[2] = { { rd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll");
        }
        char buf[256];
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = { buf, sizeof buf };
        struct msghdr msg = { 0 };
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        ssize_t n = recvmsg(rd, &msg, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            fail("recvmsg");
        if (n == 0)
            return 0;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        struct ucred cred;
        if (!c || c->cmsg_type != SCM_CREDENTIALS)
            return 0;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        if (cred.pid != pid)
            return 0;
        if (memchr(buf, '\n', (size_t)n))
            return 1;
    }
}

static int run_seq_attested(const char *fixture, int n)
{
    char *argv[] = { (char *)fixture, "line=3:baseline", NULL };
    double *each = calloc((size_t)n, sizeof *each);
    if (!each)
        fail("calloc");
    double c0 = cpu(), t0 = now();
    for (int i = 0; i < n; i++) {
        double s0 = now();
        int rd, pidfd;
        pid_t pid = spawn_attested(argv, &rd, &pidfd);
        if (read_attested_line(rd, pidfd, pid) != 1) {
            fprintf(stderr, "baseline: no attested ready line from pid %d\n", (int)pid);
            return 1;
        }
        close(rd);
        reap(pid);
        close(pidfd);
        each[i] = now() - s0;
    }
    double t = now() - t0;
    double c = cpu() - c0;
    qsort(each, (size_t)n, sizeof *each, compare_double);
    printf("seconds=%.6f\ncpu=%.6f\nstarts=%d\nstart_median=%.9f\n", t, c, n, each[n / 2]);
    free(each);
    return 0;
}

static int run_seq(const char *fixture, int n)
{
    char *argv[] = { (char *)fixture, "line=3:baseline", NULL };
    double *each = calloc((size_t)n, sizeof *each);
    if (!each)
        fail("calloc");
    double c0 = cpu(), t0 = now();
    for (int i = 0; i < n; i++) {
        double s0 = now();
        int rd;
        pid_t pid = spawn_with_pipe(argv, &rd);
        if (read_line(rd) != 1) {
            fprintf(stderr, "baseline: no ready line from pid %d\n", (int)pid);
            return 1;
        }
        close(rd);
        reap(pid);
        each[i] = now() - s0;
    }
    double t = now() - t0;
    double c = cpu() - c0;
    qsort(each, (size_t)n, sizeof *each, compare_double);
    printf("seconds=%.6f\ncpu=%.6f\nstarts=%d\nstart_median=%.9f\n", t, c, n, each[n / 2]);
    free(each);
    return 0;
}

static int run_many(const char *fixture, int n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    long rss_start = status_kb("VmRSS");
    char *argv[] = { (char *)fixture, "line=3:baseline", "pause", NULL };
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
    if (!pids || !pfd)
        fail("calloc");

    double c0 = cpu(), t0 = now();
    for (int i = 0; i < n; i++) {
        int rd;
        pids[i] = spawn_with_pipe(argv, &rd);
        if (fcntl(rd, F_SETFL, O_NONBLOCK) < 0)
            fail("fcntl");
        pfd[i] = (struct pollfd){ .fd = rd, .events = POLLIN, .revents = 0 };
    }
    /* poll the ones still waiting; a finished one is swapped out of the
     * array's live prefix */
    int waiting = n;
    while (waiting > 0) {
        int r = poll(pfd, (nfds_t)waiting, 10000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            fail("poll");
        if (r == 0) {
            fprintf(stderr, "baseline: %d ready lines missing after 10 s\n", waiting);
            return 1;
        }
        for (int i = 0; i < waiting;) {
            if (pfd[i].revents) {
                int got = read_line(pfd[i].fd);
                if (got == 0) {
                    fprintf(stderr, "baseline: a fixture closed fd 3 without a line\n");
                    return 1;
                }
                if (got == 1) {
                    close(pfd[i].fd);
                    pfd[i] = pfd[--waiting];
                    continue;
                }
            }
            i++;
        }
    }
    double ready_at = now() - t0;
    for (int i = 0; i < n; i++)
        if (kill(pids[i], SIGTERM) < 0)
            fail("kill");
    for (int i = 0; i < n; i++)
        reap(pids[i]);
    double t = now() - t0;
    printf("seconds=%.6f\nstart_seconds=%.6f\ncpu=%.6f\nstarts=%d\nvmhwm_kb=%ld\nvmrss_start_kb=%ld\n",
           t, ready_at, cpu() - c0, n, status_kb("VmHWM"), rss_start);
    free(pids);
    free(pfd);
    return 0;
}

static int run_cat(const char *file, int n)
{
    static char buf[65536];
    double t0 = now(), c0 = cpu();
    long long lines = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            fail("pipe2");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        char *argv[] = { "/bin/cat", (char *)file, NULL };
        pid_t pid;
        int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (err) {
            errno = err;
            fail("posix_spawn");
        }
        for (;;) {
            ssize_t got = read(p[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                fail("read");
            if (got == 0)
                break;
            bytes += got;
            for (const char *q = buf, *end = buf + got; (q = memchr(q, '\n', (size_t)(end - q))); q++)
                lines++;
        }
        close(p[0]);
        reap(pid);
    }
    printf("seconds=%.6f\ncpu=%.6f\nlines=%lld\nbytes=%lld\nvmhwm_kb=%ld\n", now() - t0, cpu() - c0, lines,
           bytes, status_kb("VmHWM"));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: baseline seq|seq-attested|many FIXTURE N | baseline cat FILE N\n");
        return 2;
    }
    int n = atoi(argv[3]);
    if (n <= 0) {
        fprintf(stderr, "baseline: bad count '%s'\n", argv[3]);
        return 2;
    }
    if (strcmp(argv[1], "seq") == 0)
        return run_seq(argv[2], n);
    if (strcmp(argv[1], "seq-attested") == 0)
        return run_seq_attested(argv[2], n);
    if (strcmp(argv[1], "many") == 0)
        return run_many(argv[2], n);
    if (strcmp(argv[1], "cat") == 0)
        return run_cat(argv[2], n);
    fprintf(stderr, "baseline: unknown mode '%s'\n", argv[1]);
    return 2;
}
