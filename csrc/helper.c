/*
 * helper.c: the appstart-helper program.
 *
 * The launcher runs it with a pipe inherited at --pid-fd. It forks the app
 * (optionally in a new session, as another user, in another directory),
 * waits only until the app's exec has succeeded or failed, reports the app's
 * pid on the pid fd and exits without waiting, so the app is not the
 * launcher's child. A failed start is reported on stderr with no pid written.
 *
 * Plain libc, standalone: it shares no code with the core on purpose, so the
 * program can be installed and audited on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_VERSION "0.1.0"

/* Exit codes: 126/127 follow the shell's convention for exec failures. */
enum {
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_CANNOT_EXECUTE = 126,
    EXIT_NOT_FOUND = 127
};

enum pid_format { PID_INT32LE, PID_LINE };

/* The steps the child can fail at, sent to the parent over the status pipe. */
enum child_step {
    STEP_SETSID = 1,
    STEP_SETGROUPS,
    STEP_SETGID,
    STEP_SETUID,
    STEP_VERIFY,
    STEP_CHDIR,
    STEP_EXEC
};

struct child_failure {
    int step;
    int err;
};

struct options {
    const char *user;       /* NULL: keep the current identity */
    const char *group;      /* NULL: the user's primary group */
    const char *dir;        /* NULL: stay in the current directory */
    int setsid;
    int pid_fd;
    enum pid_format pid_format;
    char **argv;
};

/* The identity to switch to, resolved entirely before fork. */
struct identity {
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int ngroups;
};

static void print_usage(FILE *out)
{
    fputs("usage: appstart-helper [--user NAME|UID] [--group NAME|GID] [--setsid]\n"
          "                       [--chdir DIR] [--pid-fd N] [--pid-format int32le|line]\n"
          "                       -- ARGV...\n", out);
}

static void print_help(void)
{
    print_usage(stdout);
    fputs("\nForks ARGV (switching user, session and directory as asked), writes the\n"
          "app's pid to fd N (default 3) once its exec has succeeded, and exits\n"
          "without waiting for it.\n", stdout);
}

static void usage_error(const char *why, const char *what) __attribute__((noreturn));

static void usage_error(const char *why, const char *what)
{
    if (what)
        fprintf(stderr, "appstart-helper: %s: %s\n", why, what);
    else
        fprintf(stderr, "appstart-helper: %s\n", why);
    print_usage(stderr);
    exit(EXIT_USAGE);
}

/* Parse a whole decimal string into [0, max]; 0 on success, -1 otherwise.
 * Digits only: strtoul alone would accept " 12", "+12" and "-12". */
static int parse_decimal(const char *s, unsigned long max, unsigned long *out)
{
    if (*s == '\0')
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Accept "--name value" and "--name=value". Returns the value or NULL when
 * arg is not this option; a missing value is a usage error. */
static const char *option_value(const char *arg, const char *name,
                                int argc, char **argv, int *i)
{
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        usage_error("option needs a value", name);
    return argv[++*i];
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    int i;
    const char *v;
    opt->pid_fd = 3;
    opt->pid_format = PID_INT32LE;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "--help") == 0) {
            print_help();
            exit(0);
        } else if (strcmp(arg, "--version") == 0) {
            puts("appstart-helper " HELPER_VERSION);
            exit(0);
        } else if (strcmp(arg, "--setsid") == 0) {
            opt->setsid = 1;
        } else if ((v = option_value(arg, "--user", argc, argv, &i))) {
            opt->user = v;
        } else if ((v = option_value(arg, "--group", argc, argv, &i))) {
            opt->group = v;
        } else if ((v = option_value(arg, "--chdir", argc, argv, &i))) {
            opt->dir = v;
        } else if ((v = option_value(arg, "--pid-fd", argc, argv, &i))) {
            unsigned long fd;
            /* 0-2 are the app's stdio; the child closes the pid fd, so a
             * low number would leave the app without stdin/out/err. */
            if (parse_decimal(v, INT_MAX, &fd) != 0 || fd < 3)
                usage_error("--pid-fd must be a number of 3 or more", v);
            opt->pid_fd = (int)fd;
        } else if ((v = option_value(arg, "--pid-format", argc, argv, &i))) {
            if (strcmp(v, "int32le") == 0)
                opt->pid_format = PID_INT32LE;
            else if (strcmp(v, "line") == 0)
                opt->pid_format = PID_LINE;
            else
                usage_error("--pid-format must be int32le or line", v);
        } else if (arg[0] == '-') {
            usage_error("unknown option", arg);
        } else {
            /* the first non-option starts ARGV, as with getopt's "+" mode */
            break;
        }
    }
    if (i >= argc)
        usage_error("no command given", NULL);
    if (opt->group && !opt->user)
        usage_error("--group needs --user", NULL);
    if (opt->dir && opt->dir[0] == '\0')
        usage_error("--chdir needs a directory", NULL);
    opt->argv = argv + i;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A failure of the world (unknown user, no fork): message and exit 1. */
static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("appstart-helper: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILED);
}

static gid_t resolve_group(const char *group)
{
    unsigned long id;
    /* (gid_t)-1 means "no change" to setgid-family calls, so refuse it. */
    if (parse_decimal(group, (gid_t)-2, &id) == 0)
        return (gid_t)id;
    errno = 0;
    const struct group *gr = getgrnam(group);
    if (!gr) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH)
            fprintf(stderr, "appstart-helper: looking up group %s: %s\n",
                    group, strerror(errno));
        fail("unknown group: %s", group);
    }
    return gr->gr_gid;
}

/* Resolve --user/--group and the supplementary groups. Every lookup and
 * allocation happens here, before fork: the child may not call getpw* or
 * malloc (they take locks another thread could hold at fork time). */
static void resolve_identity(const struct options *opt, struct identity *id)
{
    char *name = NULL;     /* a copy: later get*ent calls reuse static storage */
    int have_gid = 0;
    unsigned long num;
    const struct passwd *pw;

    errno = 0;
    if (parse_decimal(opt->user, (uid_t)-2, &num) == 0) {
        id->uid = (uid_t)num;
        pw = getpwuid(id->uid);
    } else {
        pw = getpwnam(opt->user);
        if (!pw) {
            if (errno != 0 && errno != ENOENT && errno != ESRCH)
                fprintf(stderr, "appstart-helper: looking up user %s: %s\n",
                        opt->user, strerror(errno));
            fail("unknown user: %s", opt->user);
        }
        id->uid = pw->pw_uid;
    }
    if (pw) {
        name = strdup(pw->pw_name);
        if (!name)
            fail("%s", strerror(errno));
        id->gid = pw->pw_gid;
        have_gid = 1;
    }
    if (opt->group) {
        id->gid = resolve_group(opt->group);
        have_gid = 1;
    }
    if (!have_gid)
        fail("user %s has no passwd entry, so --group is required", opt->user);

    if (!name) {
        /* no passwd entry, so no group memberships to look up */
        id->groups = malloc(sizeof *id->groups);
        if (!id->groups)
            fail("%s", strerror(errno));
        id->groups[0] = id->gid;
        id->ngroups = 1;
        return;
    }
    int cap = 32;
    for (;;) {
        int n = cap;
        gid_t *list = malloc((size_t)cap * sizeof *list);
        if (!list)
            fail("%s", strerror(errno));
        if (getgrouplist(name, id->gid, list, &n) >= 0) {
            id->groups = list;
            id->ngroups = n;
            break;
        }
        free(list);
        /* n now holds the size needed; grow at least by doubling in case the
         * group database changed between calls */
        if (cap > INT_MAX / 2)
            fail("user %s is in too many groups", name);
        cap = n > cap * 2 ? n : cap * 2;
    }
    free(name);
}

/* ---- everything from here to run_child runs in the forked child ---- */

static void child_fail(int status_fd, int step, int err) __attribute__((noreturn));

static void child_fail(int status_fd, int step, int err)
{
    struct child_failure f = { step, err };
    /* one write of 8 bytes to a pipe is atomic; only EINTR needs a retry */
    while (write(status_fd, &f, sizeof f) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Switch to the target identity and prove the switch cannot be undone.
 * setgroups and setgid must come before setuid: after setuid the process
 * has lost the right to change its groups and would keep root's. */
static void child_drop_privileges(int status_fd, const struct identity *id)
{
    if (setgroups((size_t)id->ngroups, id->groups) != 0)
        child_fail(status_fd, STEP_SETGROUPS, errno);
    if (setgid(id->gid) != 0)
        child_fail(status_fd, STEP_SETGID, errno);
    if (setuid(id->uid) != 0)
        child_fail(status_fd, STEP_SETUID, errno);
    /* A setuid that "succeeds" without dropping everything (capabilities,
     * a saved set-user-ID of 0) would let the app regain root; refuse to
     * run as root what we were asked to run as another user. */
    if (id->uid != 0) {
        if (setuid(0) == 0)
            child_fail(status_fd, STEP_VERIFY, 0);
        if (id->gid != 0 && setgid(0) == 0)
            child_fail(status_fd, STEP_VERIFY, 0);
    }
    if (getuid() != id->uid || geteuid() != id->uid ||
        getgid() != id->gid || getegid() != id->gid)
        child_fail(status_fd, STEP_VERIFY, 0);
}

static void run_child(const struct options *opt, const struct identity *id,
                      int status_fd)
{
    sigset_t empty;

    if (opt->setsid && setsid() < 0)
        child_fail(status_fd, STEP_SETSID, errno);
    if (id)
        child_drop_privileges(status_fd, id);
    /* after the drop, so the directory is checked as the target user */
    if (opt->dir && chdir(opt->dir) != 0)
        child_fail(status_fd, STEP_CHDIR, errno);
    /* the app must not hold the pid pipe: the launcher would never see EOF
     * on it if the helper died, and the app could write a false pid */
    (void)close(opt->pid_fd);
    /* the mask survives exec; the app must start with no signal blocked */
    sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
    execvp(opt->argv[0], opt->argv);
    child_fail(status_fd, STEP_EXEC, errno);
}

/* ---- parent ---- */

static const char *step_name(int step)
{
    switch (step) {
    case STEP_SETSID: return "setsid";
    case STEP_SETGROUPS: return "setgroups";
    case STEP_SETGID: return "setgid";
    case STEP_SETUID: return "setuid";
    case STEP_VERIFY: return "verify";
    case STEP_CHDIR: return "chdir";
    case STEP_EXEC: return "exec";
    default: return "start";
    }
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read the child's status pipe to EOF. Returns the number of bytes of the
 * failure record received (0 means the exec succeeded), or -1 on error. */
static ssize_t read_status(int fd, struct child_failure *f)
{
    unsigned char *p = (unsigned char *)f;
    size_t got = 0;
    for (;;) {
        unsigned char scratch[64];
        unsigned char *dst = got < sizeof *f ? p + got : scratch;
        size_t room = got < sizeof *f ? sizeof *f - got : sizeof scratch;
        ssize_t n = read(fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return (ssize_t)(got < sizeof *f ? got : sizeof *f);
        got += (size_t)n;
    }
}

static int report_pid(int fd, enum pid_format format, pid_t pid)
{
    unsigned char buf[32];
    size_t len;
    if (format == PID_INT32LE) {
        /* byte by byte: the format is little endian whatever the host is */
        unsigned long v = (unsigned long)pid;
        buf[0] = (unsigned char)(v & 0xff);
        buf[1] = (unsigned char)((v >> 8) & 0xff);
        buf[2] = (unsigned char)((v >> 16) & 0xff);
        buf[3] = (unsigned char)((v >> 24) & 0xff);
        len = 4;
    } else {
        len = (size_t)snprintf((char *)buf, sizeof buf, "%ld\n", (long)pid);
    }
    return write_all(fd, buf, len);
}

int main(int argc, char **argv)
{
    struct options opt = { 0 };
    struct identity ident = { 0 };
    const struct identity *id = NULL;
    int status_pipe[2];
    struct child_failure failure = { 0, 0 };
    ssize_t got;
    pid_t pid;

    parse_options(argc, argv, &opt);
    if (fcntl(opt.pid_fd, F_GETFD) < 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", opt.pid_fd);
        usage_error("pid fd is not open", num);
    }
    if (opt.user) {
        resolve_identity(&opt, &ident);
        id = &ident;
    }

    /* close-on-exec: a successful exec closes the child's end, which is the
     * EOF that tells us the exec worked */
    if (pipe2(status_pipe, O_CLOEXEC) != 0)
        fail("cannot create a pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        fail("cannot fork: %s", strerror(errno));
    if (pid == 0) {
        (void)close(status_pipe[0]);
        run_child(&opt, id, status_pipe[1]);
    }

    free(ident.groups);     /* the child has its copy */
    ident.groups = NULL;

    /* Only now, in the parent: an ignored disposition survives exec, so
     * setting it before fork would hand the app an ignored SIGPIPE. With it
     * ignored, a launcher that went away makes the pid write fail with EPIPE
     * instead of killing us silently. */
    signal(SIGPIPE, SIG_IGN);
    (void)close(status_pipe[1]);
    got = read_status(status_pipe[0], &failure);
    (void)close(status_pipe[0]);

    if (got < 0) {
        int err = errno;
        /* We cannot tell whether the app started; it is still our child,
         * so its pid cannot have been reused and killing it is safe. */
        kill(pid, SIGKILL);
        reap(pid);
        fprintf(stderr, "appstart-helper: reading the exec status: %s\n",
                strerror(err));
        return EXIT_FAILED;
    }
    if (got == 0) {
        if (report_pid(opt.pid_fd, opt.pid_format, pid) != 0) {
            /* leave the app running: the launcher sees no pid and reports
             * the helper as failed; we may not know where the app stands */
            fprintf(stderr, "appstart-helper: cannot write the pid of %s (%ld): %s\n",
                    opt.argv[0], (long)pid, strerror(errno));
            return EXIT_FAILED;
        }
        if (close(opt.pid_fd) != 0 && errno != EINTR) {
            fprintf(stderr, "appstart-helper: closing the pid fd: %s\n",
                    strerror(errno));
            return EXIT_FAILED;
        }
        return 0;
    }

    reap(pid);
    if (got < (ssize_t)sizeof failure) {
        fprintf(stderr, "appstart-helper: the child failed before exec\n");
        return EXIT_FAILED;
    }
    if (failure.step == STEP_EXEC) {
        fprintf(stderr, "appstart-helper: cannot execute %s: %s\n",
                opt.argv[0], strerror(failure.err));
        return failure.err == EACCES || failure.err == EPERM
               ? EXIT_CANNOT_EXECUTE : EXIT_NOT_FOUND;
    }
    if (failure.step == STEP_VERIFY)
        fprintf(stderr, "appstart-helper: verify: the privilege drop did not "
                "stick; refusing to run as root what was asked to run as "
                "another user\n");
    else
        fprintf(stderr, "appstart-helper: %s: %s\n", step_name(failure.step),
                strerror(failure.err));
    return EXIT_FAILED;
}
