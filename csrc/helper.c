/*
 * helper.c: the appstart-helper program.
 *
 * The launcher runs it with a pipe inherited at --pid-fd. It forks the app
 * (optionally in a new session, as another user, in another directory),
 * waits only until the app's exec has succeeded or failed, reports the app's
 * pid on the pid fd and exits without waiting: the app is then no child of
 * the helper's (the launcher, a child subreaper while it starts apps through
 * helpers, adopts it). A failed start is reported on stderr with no pid
 * written.
 *
 * With --user the app always leads a session of its own, so it has no
 * controlling terminal: an app running as another user could otherwise push
 * keystrokes into the launcher's terminal (TIOCSTI). An app of a user other
 * than the caller's enters its directory as that user, by its absolute
 * path: the caller's current directory, inherited, may lie where that user
 * could never reach (under root's 0700 home). Nothing ever runs
 * through a shell: the PATH search is done here, without execvp's /bin/sh
 * fallback for a file that is not a valid executable.
 *
 * Setuid mode. The program may be installed setuid root, or with file
 * capabilities (cap_setuid,cap_setgid+ep), so that an unprivileged launcher
 * can start apps as other users. Run that way (AT_SECURE) it trusts nothing
 * its caller controls:
 *   - descriptors 0-2 are made to exist before anything is opened;
 *   - resource limits are reset (to pid 1's where readable), and no core
 *     file can be written while privileged;
 *   - a root-owned policy file, at a path compiled in
 *     (APPSTART_HELPER_POLICY), says which caller (the real uid) may start
 *     apps as which users: lines "CALLER: USER...", by name or uid; a caller
 *     with no line is refused, root is never a target, --group must be one
 *     of the target's own groups; without --user (or with the caller's own)
 *     the app runs as the caller; the identity is the target uid's own
 *     passwd entry (a name that is another entry of that uid is refused);
 *   - an environment given for the app (--encoded-env without
 *     --login-env) is refused: it would be replaced;
 *   - the app's environment is rebuilt from a fixed PATH, the target's
 *     HOME/USER/LOGNAME/SHELL and a short list of variables kept from the
 *     caller (never LD_* and the like);
 *   - every capability is dropped and proven gone (a file-capabilities copy
 *     keeps them across setuid between two non-zero uids);
 *   - every descriptor above 2 is closed except the --keep-fd ones;
 *   - the app always gets a session of its own.
 * Run by root without AT_SECURE it needs no policy.
 *
 * Plain libc, standalone: it shares no code with the core on purpose, so the
 * program can be installed and audited on its own. Raw system calls stand in
 * where libc has no wrapper (capget/capset, close_range, getdents64).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef APPSTART_VERSION
#error "APPSTART_VERSION: the build passes the VERSION file's"
#endif

#ifndef APPSTART_HELPER_POLICY
#define APPSTART_HELPER_POLICY "/etc/appstart/helper.policy"
#endif

/* a policy file is a handful of lines; a large one is a mistake or an
 * attack on the reader, refused either way */
#define POLICY_MAX_BYTES (64 * 1024)
#define POLICY_NAME_MAX 256
#define MAX_KEEP_FDS 64
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
/* --encoded-env: the prefix of each of the app's variables */
#define ENV_PREFIX "APPSTART_ENV_"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

extern char **environ;

/* Exit codes: 126/127 follow the shell's convention for exec failures. */
enum {
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_GONE = 3,          /* --signal: the process has ended */
    EXIT_NOT_PERMITTED = 4, /* --signal: the target user may not signal it */
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
    STEP_CAPS,
    STEP_VERIFY,
    STEP_RLIMIT,
    STEP_CHDIR,
    STEP_FDS,
    STEP_TERMINAL,
    STEP_KEYRING,
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
    const char *path;       /* NULL: ARGV[0] is searched in the app's PATH */
    int setsid;
    int login_env;
    int encoded_env;
    int pid_fd;
    enum pid_format pid_format;
    int keep_fds[MAX_KEEP_FDS];
    int nkeep;
    int error_fd;           /* -1: none (see say) */
    char **argv;
    int signal;             /* --signal: the signal to send (0: none,
                               the check alone, as kill(pid, 0)) */
    int signal_mode;        /* --signal given: start nothing */
    int process_group;      /* --process-group */
    int target_fd;          /* --pidfd: the target's pidfd (default 3) */
    pid_t pgid;             /* --pgid: a process group instead (0: none) */
    const char *start_only; /* an option of a start's, for --signal's error */
};

/* The identity to switch to, resolved entirely before fork. */
struct identity {
    uid_t uid;
    gid_t gid;
    gid_t *groups;          /* NULL with ngroups 0: no supplementary groups */
    int ngroups;
    char *name;             /* NULL when the uid has no passwd entry */
    char *home;
    char *shell;
};

/* Everything the child does, decided before fork: the child may not call
 * getpw* or malloc (they take locks another thread could hold at fork
 * time), so it only reads this. */
struct child_plan {
    int setsid;
    int secure;                 /* AT_SECURE: the extra steps of setuid mode */
    const struct identity *id;  /* NULL: keep the current identity */
    const char *dir;
    int dir_or_root;            /* dir is the caller's own: "/" where it
                                   cannot be entered */
    int pid_fd;
    const int *keep_fds;        /* sorted when close_fds */
    int nkeep;
    int close_fds;
    struct rlimit core_limit;   /* secure: the app's RLIMIT_CORE */
    /* secure: the caller's own limits, which an app that runs as the
     * caller gets back (no higher than pid 1's) */
    struct rlimit caller_limits[RLIMIT_NLIMITS];
    int own_limits;
    char **argv;
    char **envp;                /* the app's environment */
    char **candidates;          /* paths to execve in turn, NULL-terminated */
    int search;                 /* candidates come from a PATH search */
};

static void print_usage(FILE *out)
{
    fputs("usage: appstart-helper [--user NAME|UID] [--group NAME|GID] [--setsid]\n"
          "                       [--login-env] [--chdir DIR] [--keep-fd N]...\n"
          "                       [--pid-fd N] [--pid-format int32le|line]\n"
          "                       [--error-fd N] [--path DIRS] [--encoded-env]\n"
          "                       [--module-version V] -- ARGV...\n"
          "       appstart-helper --signal N --user NAME|UID [--process-group]\n"
          "                       [--pidfd N | --pgid N] [--module-version V]\n"
          "       appstart-helper --version | --help\n", out);
}

static void print_help(void)
{
    print_usage(stdout);
    fputs("\nForks ARGV (switching user, session and directory as asked), writes the\n"
          "app's pid to fd N (default 3) once its exec has succeeded, and exits\n"
          "without waiting for it. Nothing runs through a shell: ARGV[0] without a\n"
          "'/' is searched in PATH, and a file that is not a valid executable fails.\n"
          "Options end at \"--\" or at the first word that is none (what follows is\n"
          "ARGV's); each is given once, but --keep-fd.\n"
          "\n"
          "  --user NAME|UID    run the app as this user: its groups, then the uid;\n"
          "                     the app leads a session of its own (no controlling\n"
          "                     terminal). A uid with no passwd entry uses the uid as\n"
          "                     its gid and no supplementary groups (setuid: refused\n"
          "                     where that gid is a group's).\n"
          "  --group NAME|GID   primary group with --user (default: the user's own)\n"
          "  --setsid           the app leads a session of its own\n"
          "  --login-env        HOME, USER, LOGNAME, SHELL from the target's passwd\n"
          "                     entry (all four unset when it has none)\n"
          "  --chdir DIR        change to DIR as the target user, before the exec;\n"
          "                     with --user (another user than the caller), a\n"
          "                     relative DIR is taken from the current directory\n"
          "                     and entered by its absolute path, and without\n"
          "                     --chdir the current directory is entered so, or\n"
          "                     / where that user cannot enter it\n"
          "  --keep-fd N        an open descriptor (3 or more) the app keeps in setuid\n"
          "                     mode (run by root, it keeps every inherited one);\n"
          "                     repeatable\n"
          "  --pid-fd N         where to write the pid (default 3, not inherited)\n"
          "  --pid-format F     int32le (4 bytes, little endian) or line (digits, \\n)\n"
          "  --error-fd N       why it failed goes to fd N (a pipe the caller reads,\n"
          "                     not inherited) instead of stderr, which the app\n"
          "                     shares and may have on /dev/null\n"
          "  --path DIRS        search ARGV[0] in DIRS (colon-separated, as PATH; the\n"
          "                     caller's own) rather than in the app's PATH (an\n"
          "                     ARGV[0] with a '/' is not searched: refused)\n"
          "  --encoded-env      the environment given is the app's, each variable's\n"
          "                     name prefixed with " ENV_PREFIX " (any other is\n"
          "                     dropped): the helper's own loader and C library\n"
          "                     never see LD_PRELOAD and the like meant for the app\n"
          "  --signal N         start nothing: send signal N (a number; 0: only\n"
          "                     check that it could be sent) as --user\n"
          "  --pidfd N          --signal: the target's pidfd (default 3)\n"
          "  --process-group    --signal: to the process group the target is in\n"
          "  --pgid N           --signal: to process group N instead (no pidfd)\n"
          "  --module-version V the version of the appstart module calling: another\n"
          "                     than the helper's own (" APPSTART_VERSION ") is a usage\n"
          "                     error, said on the error fd where there is one\n",
          stdout);
    fputs("\n"
          "With --signal it starts nothing: it takes the user's uid as its effective\n"
          "uid (the caller's stays its real and saved uid) and sends signal N to the\n"
          "process whose pidfd it inherits at fd N (--pidfd, default 3), with\n"
          "--process-group to the process group that process is in, or with\n"
          "--pgid N to process group N (one whose leader has ended); what that\n"
          "user may not signal is not signalled. So an unprivileged launcher\n"
          "stops the apps it started as other users.\n"
          "\n"
          "Installed setuid root or with file capabilities, it obeys the policy file\n"
          "  " APPSTART_HELPER_POLICY "\n"
          "(owned by root, writable by root only): lines \"CALLER: USER...\" say\n"
          "who may start apps as whom, by name or uid. Root is never a target; a\n"
          "--user name must be its uid's own passwd entry (no other name of that\n"
          "uid); without --user the app runs as the caller (the real uid). The app\n"
          "then gets PATH=" DEFAULT_PATH ", the target's HOME, USER,\n"
          "LOGNAME and SHELL, and of the caller's environment only NOTIFY_SOCKET,\n"
          "WATCHDOG_USEC, WATCHDOG_PID, LISTEN_FDS, LISTEN_PID, TERM, LANG, LANGUAGE,\n"
          "TZ and LC_* (so --encoded-env without --login-env, an environment given\n"
          "for the app, is a usage error); no capability; no descriptor above 2\n"
          "but the --keep-fd ones;\n"
          "resource limits reset (running as the caller, none above its own); a\n"
          "session of its own.\n"
          "\n"
          "A SIGTERM before the pid is written kills the app forked (SIGKILL),\n"
          "then the helper exits 1: a caller that stops a start leaves no app it\n"
          "cannot know (after the write it exits 1 alone: the caller has the pid).\n"
          "A SIGUSR1 kills the app forked, its pid written or not, then exits 1.\n"
          "\n"
          "Exit status: 0 started, 1 failed (nothing runs unless its pid was\n"
          "written), 2 usage, 126 cannot execute, 127 not found; with --signal\n"
          "0 sent, 1 failed or refused, 2 usage, 3 the process has ended, 4 the\n"
          "user may not signal it.\n", stdout);
}

/* Where messages go: stderr, or the caller's error pipe (--error-fd). */
static int message_fd = 2;

/* One message, "appstart-helper: TEXT\n", in one write. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    char text[600];
    int n = snprintf(text, sizeof text, "appstart-helper: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(text + n, sizeof text - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof text - 2)
        len = sizeof text - 2;
    text[len++] = '\n';
    ssize_t w;
    do
        w = write(message_fd, text, len);
    while (w < 0 && errno == EINTR);
}

static void usage_error(const char *why, const char *what) __attribute__((noreturn));

static void usage_error(const char *why, const char *what)
{
    if (what)
        say("%s: %s", why, what);
    else
        say("%s", why);
    if (message_fd == 2)
        print_usage(stderr);
    exit(EXIT_USAGE);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Set once --signal's uids begin to change (or a file-capabilities copy's
 * to kill its app, kill_forked): from then on the process ends with _exit
 * (no exit handler runs: a sanitizer's leak check at exit cannot trace a
 * process whose uids changed, and nothing is buffered). */
static int uids_changed;

/* A failure of the world (unknown user, no fork, a refused policy): message
 * and exit 1, with nothing started. */
static void fail(const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    say("%s", text);
    if (uids_changed)
        _exit(EXIT_FAILED);
    exit(EXIT_FAILED);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        fail("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    return memcpy(xmalloc(len), s, len);
}

/* "NAME=VALUE", freshly allocated */
static char *make_variable(const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    char *s = xmalloc(nlen + 1 + vlen + 1);
    memcpy(s, name, nlen);
    s[nlen] = '=';
    memcpy(s + nlen + 1, value, vlen + 1);
    return s;
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

static int parse_fd(const char *v, const char *what)
{
    unsigned long fd;
    /* 0-2 are the app's stdio: the pid fd is closed in the child, and a
     * kept descriptor is one above the layout's stdio */
    if (parse_decimal(v, INT_MAX, &fd) != 0 || fd < 3)
        usage_error(what, v);
    return (int)fd;
}

/* Every option, once: its name, whether it takes a value ("--name value"
 * or "--name=value"), whether it goes with starting an app only (not with
 * --signal), and whether it may be given more than once (one that takes a
 * value would otherwise have its first value silently replaced). */
enum option_id {
    OPT_HELP, OPT_VERSION, OPT_SETSID, OPT_LOGIN_ENV, OPT_ENCODED_ENV,
    OPT_PROCESS_GROUP, OPT_SIGNAL, OPT_PGID, OPT_PIDFD, OPT_USER, OPT_GROUP,
    OPT_CHDIR, OPT_PATH, OPT_PID_FD, OPT_ERROR_FD, OPT_KEEP_FD,
    OPT_MODULE_VERSION, OPT_PID_FORMAT
};
static const struct option_spec {
    const char *name;
    enum option_id id;
    unsigned char takes_value, start_only, repeatable;
} OPTIONS[] = {
    { "--help", OPT_HELP, 0, 0, 1 },
    { "--version", OPT_VERSION, 0, 0, 1 },
    { "--setsid", OPT_SETSID, 0, 1, 1 },
    { "--login-env", OPT_LOGIN_ENV, 0, 1, 1 },
    { "--encoded-env", OPT_ENCODED_ENV, 0, 1, 1 },
    { "--process-group", OPT_PROCESS_GROUP, 0, 0, 1 },
    { "--signal", OPT_SIGNAL, 1, 0, 0 },
    { "--pgid", OPT_PGID, 1, 0, 0 },
    { "--pidfd", OPT_PIDFD, 1, 0, 0 },
    { "--user", OPT_USER, 1, 0, 0 },
    { "--group", OPT_GROUP, 1, 1, 0 },
    { "--chdir", OPT_CHDIR, 1, 1, 0 },
    { "--path", OPT_PATH, 1, 1, 0 },
    { "--pid-fd", OPT_PID_FD, 1, 1, 0 },
    { "--error-fd", OPT_ERROR_FD, 1, 1, 0 },
    { "--keep-fd", OPT_KEEP_FD, 1, 1, 1 },
    { "--module-version", OPT_MODULE_VERSION, 1, 0, 0 },
    { "--pid-format", OPT_PID_FORMAT, 1, 1, 0 },
};
#define NOPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

/* The option arg is (NULL: none), with *value its "=value" part, if any
 * (only an option that takes a value has one). */
static const struct option_spec *find_option(const char *arg, const char **value)
{
    *value = NULL;
    for (size_t k = 0; k < NOPTIONS; k++) {
        size_t len = strlen(OPTIONS[k].name);
        if (strncmp(arg, OPTIONS[k].name, len) != 0)
            continue;
        if (arg[len] == '\0')
            return &OPTIONS[k];
        if (arg[len] == '=' && OPTIONS[k].takes_value) {
            *value = arg + len + 1;
            return &OPTIONS[k];
        }
    }
    return NULL;
}

/* A module of another version than this helper's (an upgrade that left
 * one of the two behind) may pass options this one reads otherwise, or
 * not at all: it says so, before any option is parsed (rather than
 * failing on the first it does not know), on the error fd where one is
 * named and open. Looks at the options only, as parse_options takes them
 * (up to "--" or the first word that is none: the app's own arguments
 * are not the helper's), and at nothing it cannot read (parse_options
 * says what is wrong with them). */
static void check_module_version(int argc, char **argv)
{
    const char *version = NULL, *error_fd = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0 && argv[i][0] == '-'; i++) {
        const char *v;
        const struct option_spec *o = find_option(argv[i], &v);
        if (!o || !o->takes_value)
            continue;
        if (!v && i + 1 < argc)
            v = argv[++i]; /* (its value, whatever it looks like) */
        if (o->id == OPT_MODULE_VERSION)
            version = v;
        else if (o->id == OPT_ERROR_FD)
            error_fd = v;
    }
    if (!version || strcmp(version, APPSTART_VERSION) == 0)
        return;
    unsigned long fd;
    if (error_fd && parse_decimal(error_fd, INT_MAX, &fd) == 0 && fd > 2 && fcntl((int)fd, F_GETFD) >= 0)
        message_fd = (int)fd;
    say("this is appstart-helper " APPSTART_VERSION ", called by appstart %.40s: "
        "install the helper built with the module", version);
    exit(EXIT_USAGE);
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    int i;
    unsigned seen = 0;
    opt->pid_fd = 3;
    opt->error_fd = -1;
    opt->pid_format = PID_INT32LE;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-')
            break; /* the first non-option starts ARGV, as with getopt's "+" mode */
        const struct option_spec *o = find_option(arg, &v);
        if (!o)
            usage_error("unknown option", arg);
        if (o->takes_value && !v) {
            if (i + 1 >= argc)
                usage_error("option needs a value", o->name);
            v = argv[++i];
        }
        if (!o->repeatable) {
            if (seen & (1u << o->id))
                usage_error("option given twice", o->name);
            seen |= 1u << o->id;
        }
        if (o->start_only)
            opt->start_only = o->name;
        switch (o->id) {
        case OPT_HELP:
            print_help();
            exit(0);
        case OPT_VERSION:
            puts("appstart-helper " APPSTART_VERSION);
            exit(0);
        case OPT_SETSID:
            opt->setsid = 1;
            break;
        case OPT_LOGIN_ENV:
            opt->login_env = 1;
            break;
        case OPT_ENCODED_ENV:
            opt->encoded_env = 1;
            break;
        case OPT_PROCESS_GROUP:
            opt->process_group = 1;
            break;
        case OPT_SIGNAL: {
            unsigned long sig;
            if (parse_decimal(v, 64, &sig) != 0)
                usage_error("--signal must be a signal number (0 to 64)", v);
            opt->signal = (int)sig;
            opt->signal_mode = 1;
            break;
        }
        case OPT_PGID: {
            unsigned long g;
            /* kill(-1) would be every process the user may signal */
            if (parse_decimal(v, INT_MAX, &g) != 0 || g < 2)
                usage_error("--pgid must be a process group (2 or more)", v);
            opt->pgid = (pid_t)g;
            break;
        }
        case OPT_PIDFD:
            opt->target_fd = parse_fd(v, "--pidfd must be a number of 3 or more");
            break;
        case OPT_USER:
            opt->user = v;
            break;
        case OPT_GROUP:
            opt->group = v;
            break;
        case OPT_CHDIR:
            opt->dir = v;
            break;
        case OPT_PATH:
            opt->path = v;
            break;
        case OPT_PID_FD:
            opt->pid_fd = parse_fd(v, "--pid-fd must be a number of 3 or more");
            break;
        case OPT_ERROR_FD:
            opt->error_fd = parse_fd(v, "--error-fd must be a number of 3 or more");
            break;
        case OPT_KEEP_FD:
            if (opt->nkeep >= MAX_KEEP_FDS)
                usage_error("too many --keep-fd options", v);
            opt->keep_fds[opt->nkeep++] =
                parse_fd(v, "--keep-fd must be a number of 3 or more");
            break;
        case OPT_MODULE_VERSION:
            break; /* (checked before: check_module_version) */
        case OPT_PID_FORMAT:
            if (strcmp(v, "int32le") == 0)
                opt->pid_format = PID_INT32LE;
            else if (strcmp(v, "line") == 0)
                opt->pid_format = PID_LINE;
            else
                usage_error("--pid-format must be int32le or line", v);
            break;
        }
    }
    opt->argv = argv + i;
    if (opt->signal_mode) {
        /* what would be ignored is refused */
        if (i < argc)
            usage_error("--signal takes no command", argv[i]);
        if (opt->start_only)
            usage_error("this option does not go with --signal", opt->start_only);
        if (!opt->user)
            usage_error("--signal needs --user (the user the target runs as)", NULL);
        if (opt->pgid && (opt->process_group || opt->target_fd))
            usage_error("--pgid names the target itself: no --process-group or --pidfd with it", NULL);
        return;
    }
    if (opt->process_group || opt->target_fd || opt->pgid)
        usage_error("--process-group, --pidfd and --pgid go with --signal only", NULL);
    if (i >= argc)
        usage_error("no command given", NULL);
    /* (a command that names its file is not searched for) */
    if (opt->path && strchr(argv[i], '/'))
        usage_error("--path does not go with a command that names its path", argv[i]);
    if (opt->group && !opt->user)
        usage_error("--group needs --user", NULL);
    if (opt->dir && opt->dir[0] == '\0')
        usage_error("--chdir needs a directory", NULL);
    for (int k = 0; k < opt->nkeep; k++)
        if (opt->keep_fds[k] == opt->pid_fd || opt->keep_fds[k] == opt->error_fd)
            usage_error("--keep-fd cannot be the pid fd or the error fd", NULL);
    if (opt->error_fd == opt->pid_fd)
        usage_error("--error-fd cannot be the pid fd", NULL);
}

/* ---- setuid mode: the first things done, before anything is opened ---- */

/* A caller can start us with 0, 1 or 2 closed; the next file we open would
 * take that number and the app would write its output into it. glibc has
 * filled them already in setuid mode, before main, the wrong way round on
 * purpose: /dev/full write-only on 0, /dev/null read-only on 1 and 2, so
 * that every use fails (the app's echo failed, its read of stdin too).
 * Those become /dev/null, read and write, as a closed one does. */
static int glibc_filler(int fd)
{
    struct stat st;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    if (fd == 0)
        return st.st_rdev == makedev(1, 7) && (flags & O_ACCMODE) == O_WRONLY;
    return st.st_rdev == makedev(1, 3) && (flags & O_ACCMODE) == O_RDONLY;
}

static void ensure_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        int closed = fcntl(fd, F_GETFD) < 0 && errno == EBADF;
        if (!closed && !glibc_filler(fd))
            continue;
        int got = open("/dev/null", O_RDWR | (closed ? 0 : O_CLOEXEC));
        if (!closed && got > 2 && dup2(got, fd) == fd)
            (void)close(got);
        else if (got != fd)
            _exit(EXIT_FAILED);     /* nowhere safe to say why */
    }
}

/* A caller's odd limits (a tiny RLIMIT_FSIZE, RLIMIT_CPU about to expire,
 * few descriptors) must not make the privileged part fail halfway: take
 * pid 1's limits where we may read them; at least make RLIMIT_FSIZE and
 * RLIMIT_CPU non-binding. No core file while privileged: *core_for_app is
 * what the child restores once it has dropped. */
static void reset_limits(struct rlimit *core_for_app)
{
    for (int r = 0; r < RLIMIT_NLIMITS; r++) {
        struct rlimit lim;
        if (prlimit(1, r, NULL, &lim) == 0 && setrlimit(r, &lim) == 0)
            continue;
        if ((r == RLIMIT_FSIZE || r == RLIMIT_CPU) && getrlimit(r, &lim) == 0 &&
            lim.rlim_cur != lim.rlim_max) {
            lim.rlim_cur = lim.rlim_max;
            if (setrlimit(r, &lim) != 0)
                fail("cannot reset resource limit %d: %s", r, strerror(errno));
        }
    }
    if (getrlimit(RLIMIT_CORE, core_for_app) != 0)
        fail("cannot read RLIMIT_CORE: %s", strerror(errno));
    struct rlimit none = { 0, core_for_app->rlim_max };
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        fail("cannot lower RLIMIT_CORE: %s", strerror(errno));
}

/* The variables a setuid helper passes on from its caller. */
static int kept_name(const char *entry, size_t nlen)
{
    static const char *const names[] = {
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
        "LISTEN_PID", "TERM", "LANG", "LANGUAGE", "TZ",
    };
    if (nlen > 3 && strncmp(entry, "LC_", 3) == 0)
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == nlen && strncmp(entry, names[i], nlen) == 0)
            return 1;
    return 0;
}

/* Locale and terminal names with a '/' are paths the app's libc would read
 * as the target user (a caller's own locale or terminfo files); a TZ that
 * is a path must stay under the zoneinfo directory. As sudo checks them. */
static int kept_value_is_safe(const char *entry, size_t nlen)
{
    const char *value = entry + nlen + 1;
    if (nlen == 2 && strncmp(entry, "TZ", 2) == 0) {
        const char *tz = value[0] == ':' ? value + 1 : value;
        if (strstr(tz, "..") || strchr(tz, '%'))
            return 0;
        return tz[0] != '/' || strncmp(tz, "/usr/share/zoneinfo/", 20) == 0;
    }
    if ((nlen == 4 && strncmp(entry, "TERM", 4) == 0) ||
        (nlen == 4 && strncmp(entry, "LANG", 4) == 0) ||
        (nlen == 8 && strncmp(entry, "LANGUAGE", 8) == 0) ||
        strncmp(entry, "LC_", 3) == 0)
        return !strchr(value, '/') && !strchr(value, '%');
    return 1;
}

/* Copy the caller's variables (from) a setuid app may see, then clear the
 * helper's own environment: nothing below reads a caller's variable. */
static char **take_kept_environment(char **from)
{
    size_t n = 0, count = 0;
    for (char **e = from; e && *e; e++)
        n++;
    char **kept = xmalloc((n + 1) * sizeof *kept);
    for (char **e = from; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t nlen = (size_t)(eq - *e);
        if (!kept_name(*e, nlen) || !kept_value_is_safe(*e, nlen))
            continue;
        int dup = 0;    /* the first of two entries is the one getenv sees */
        for (size_t k = 0; k < count && !dup; k++)
            dup = strncmp(kept[k], *e, nlen + 1) == 0;
        if (!dup)
            kept[count++] = xstrdup(*e);
    }
    kept[count] = NULL;
    if (clearenv() != 0)
        fail("cannot clear the environment");
    return kept;
}

/* The caller's environment, the app's to be: the helper's own, or with
 * --encoded-env the variables given with ENV_PREFIX before their names,
 * that prefix taken off; the helper's own environment is emptied then,
 * so that nothing it calls reads one. Its dynamic loader saw prefixed
 * names only, which it knows nothing of: an LD_PRELOAD, LD_LIBRARY_PATH
 * or GLIBC_TUNABLES meant for the app (in a directory of the app's user)
 * never reaches a helper that runs as root. */
static char **take_caller_environment(int encoded)
{
    if (!encoded)
        return environ;
    size_t n = 0, count = 0, plen = strlen(ENV_PREFIX);
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = xmalloc((n + 1) * sizeof *env);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, ENV_PREFIX, plen) == 0 && strchr(*e + plen, '=') > *e + plen)
            env[count++] = xstrdup(*e + plen);
    env[count] = NULL;
    if (clearenv() != 0)
        fail("cannot clear the environment");
    return env;
}

/* A variable's value in env (NULL-terminated), as getenv: the first. */
static const char *lookup(char **env, const char *name)
{
    size_t len = strlen(name);
    for (char **e = env; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* ---- setuid mode: the policy ---- */

static void check_policy_dir(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        fail("policy: %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        fail("policy: %s is not a directory", path);
    if (st.st_uid != 0)
        fail("policy: refused: directory %s is not owned by root", path);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        fail("policy: refused: directory %s is writable by others than root", path);
}

/* Open the policy file, refusing one that anyone but root could have
 * written or replaced: every directory on its compiled-in path is checked
 * as it is entered (each one opened relative to the last, never following
 * a link), so nothing can be swapped in behind a check. A symbolic link on
 * the path is refused: the directory holding it may be checked, but not
 * what it points to, nor the directories on the way there (resolving the
 * path first checked those of the target only, never a directory others
 * could write that held the link). */
static int open_policy(const char *path)
{
    char dir[PATH_MAX + 1];
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' || !slash || slash[1] == '\0')
        fail("policy: the compiled-in path %s is not an absolute file name", path);
    size_t dlen = (size_t)(slash - path);
    if (dlen >= sizeof dir)
        fail("policy: %s: %s", path, strerror(ENAMETOOLONG));
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';

    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail("policy: /: %s", strerror(errno));
    check_policy_dir(fd, "/");
    char walked[PATH_MAX + 1] = "";
    size_t wlen = 0;
    for (char *part = dir; *part;) {
        while (*part == '/')
            part++;
        if (!*part)
            break;
        char *end = strchr(part, '/');
        if (end)
            *end = '\0';
        /* walked is a prefix of dir, so it fits */
        walked[wlen++] = '/';
        memcpy(walked + wlen, part, strlen(part) + 1);
        wlen += strlen(part);
        int next = openat(fd, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int err = errno;
            struct stat link;
            if ((err == ENOTDIR || err == ELOOP) && fstatat(fd, part, &link, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(link.st_mode))
                fail("policy: refused: %s is a symbolic link (the path to the policy must name real directories)",
                     walked);
            fail("policy: refused: %s: %s", walked, strerror(err));
        }
        (void)close(fd);
        fd = next;
        check_policy_dir(fd, walked);
        if (!end)
            break;
        part = end + 1;
    }

    int file = openat(fd, slash + 1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int err = errno;
    (void)close(fd);
    if (file < 0)
        fail("policy: refused: %s: %s", path,
             err == ELOOP ? "is a symbolic link" : strerror(err));
    struct stat st;
    if (fstat(file, &st) != 0)
        fail("policy: %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        fail("policy: refused: %s is not a regular file", path);
    if (st.st_uid != 0)
        fail("policy: refused: %s is not owned by root", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        fail("policy: refused: %s is writable by others than root", path);
    if (st.st_size > POLICY_MAX_BYTES)
        fail("policy: refused: %s is larger than %d bytes", path, POLICY_MAX_BYTES);
    return file;
}

/* The whole file, NUL-terminated, into buf (POLICY_MAX_BYTES + 1 bytes);
 * its length. The size is checked again here: the file may grow. */
static size_t read_policy(int fd, const char *path, char *buf)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, POLICY_MAX_BYTES + 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail("policy: reading %s: %s", path, strerror(errno));
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > POLICY_MAX_BYTES)
            fail("policy: refused: %s is larger than %d bytes", path, POLICY_MAX_BYTES);
    }
    (void)close(fd);
    buf[got] = '\0';
    return got;
}

/* A uid or a user name (looked up); -1 for a name with no passwd entry,
 * which matches nobody. */
static int name_to_uid(const char *name, uid_t *uid)
{
    unsigned long num;
    if (parse_decimal(name, (uid_t)-2, &num) == 0) {
        *uid = (uid_t)num;
        return 0;
    }
    const struct passwd *pw = getpwnam(name);
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    return 0;
}

struct policy_query {
    uid_t caller;
    uid_t target;
    int caller_listed;
    int target_listed;
};

static void policy_malformed(const char *path, unsigned lineno, const char *why)
    __attribute__((noreturn));

static void policy_malformed(const char *path, unsigned lineno, const char *why)
{
    fail("policy: refused: %s line %u: %s (expected \"CALLER: USER...\")",
         path, lineno, why);
}

/* Next space- or tab-separated word of *p, NUL-terminated in place; NULL at
 * the end of the line. */
static char *next_word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return NULL;
    char *w = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return w;
}

static void check_policy_word(const char *path, unsigned lineno, const char *w)
{
    unsigned long num;
    if (strlen(w) >= POLICY_NAME_MAX)
        policy_malformed(path, lineno, "a name is too long");
    if (strchr(w, ':'))
        policy_malformed(path, lineno, "more than one ':'");
    if (w[strspn(w, "0123456789")] == '\0' && parse_decimal(w, (uid_t)-2, &num) != 0)
        policy_malformed(path, lineno, "a uid out of range");
}

/* Check every line (one malformed line refuses the whole file) and answer
 * q: is the caller listed, is the target on one of the caller's lines. */
static void check_policy(const char *path, char *text, size_t len,
                         struct policy_query *q)
{
    unsigned lineno = 0;
    char *line = text, *end = text + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        lineno++;
        for (const unsigned char *c = (unsigned char *)line; c < (unsigned char *)stop; c++)
            if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                policy_malformed(path, lineno, "a control character");
        *stop = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *colon = strchr(line, ':');
        if (!colon) {
            if (line[strspn(line, " \t")] != '\0')
                policy_malformed(path, lineno, "no ':'");
        } else {
            *colon = '\0';
            char *p = line;
            char *caller = next_word(&p);
            if (!caller)
                policy_malformed(path, lineno, "no caller before ':'");
            if (next_word(&p))
                policy_malformed(path, lineno, "more than one caller before ':'");
            check_policy_word(path, lineno, caller);
            uid_t uid;
            int mine = name_to_uid(caller, &uid) == 0 && uid == q->caller;
            if (mine)
                q->caller_listed = 1;
            p = colon + 1;
            for (char *w; (w = next_word(&p));) {
                check_policy_word(path, lineno, w);
                if (mine && name_to_uid(w, &uid) == 0 && uid == q->target)
                    q->target_listed = 1;
            }
        }
        line = stop + 1;
    }
}

static const char *user_label(uid_t uid, char *buf, size_t size)
{
    const struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(buf, size, "%s (uid %lu)", pw->pw_name, (unsigned long)uid);
    else
        snprintf(buf, size, "uid %lu", (unsigned long)uid);
    return buf;
}

/* Setuid mode: may the real uid start apps as `user` (NULL: as itself)?
 * Exits with a message when not; returns the target uid. */
static uid_t enforce_policy(const char *user)
{
    static char text[POLICY_MAX_BYTES + 1];
    struct policy_query q = { getuid(), getuid(), 0, 0 };
    char who[300], whom[300];

    if (user) {
        errno = 0;
        if (name_to_uid(user, &q.target) != 0) {
            if (errno != 0 && errno != ENOENT && errno != ESRCH)
                say("looking up user %s: %s",
                        user, strerror(errno));
            fail("unknown user: %s", user);
        }
    }
    const char *path = APPSTART_HELPER_POLICY;
    size_t len = read_policy(open_policy(path), path, text);
    check_policy(path, text, len, &q);
    user_label(q.caller, who, sizeof who);
    user_label(q.target, whom, sizeof whom);
    if (!q.caller_listed)
        fail("policy: refused: %s has no line in %s", who, path);
    if (q.target == 0)
        fail("policy: refused: root is never a target of a setuid helper");
    /* running as oneself gives nothing away */
    if (q.target != q.caller && !q.target_listed)
        fail("policy: refused: %s may not start apps as %s (%s)", who, whom, path);
    return q.target;
}

/* ---- identity ---- */

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
            say("looking up group %s: %s",
                    group, strerror(errno));
        fail("unknown group: %s", group);
    }
    return gr->gr_gid;
}

/* The groups of user `name` with primary group gid (gid included). */
static gid_t *group_list(const char *name, gid_t gid, int *count)
{
    int cap = 32;
    for (;;) {
        int n = cap;
        gid_t *list = xmalloc((size_t)cap * sizeof *list);
        if (getgrouplist(name, gid, list, &n) >= 0) {
            *count = n;
            return list;
        }
        free(list);
        /* n now holds the size needed; grow at least by doubling in case the
         * group database changed between calls */
        if (cap > INT_MAX / 2)
            fail("user %s is in too many groups", name);
        cap = n > cap * 2 ? n : cap * 2;
    }
}

/* Resolve the user (a name or a uid), the group and the supplementary
 * groups, all before fork. With `secure`, a --group must be one the user
 * already has: else a caller allowed to run apps as a user could run them
 * with any group (shadow, disk); and a name must be its uid's own entry. */
static void resolve_identity(const char *user, const char *group, int secure,
                             struct identity *id)
{
    unsigned long num;
    const struct passwd *pw;
    gid_t own_gid;

    errno = 0;
    if (parse_decimal(user, (uid_t)-2, &num) == 0) {
        id->uid = (uid_t)num;
        pw = getpwuid(id->uid);
    } else {
        pw = getpwnam(user);
        if (!pw) {
            if (errno != 0 && errno != ENOENT && errno != ESRCH)
                say("looking up user %s: %s",
                        user, strerror(errno));
            fail("unknown user: %s", user);
        }
        id->uid = pw->pw_uid;
        /* In setuid mode the policy grants a uid, so the identity is that
         * uid's own entry (getpwuid's), whatever the caller named: a second
         * entry with the same uid (an alias, "app-web-admin" with gid 0 and
         * in groups disk and shadow) would otherwise bring its gid and
         * groups along. A name that is not that entry is refused. */
        if (secure) {
            char *named = xstrdup(pw->pw_name);
            gid_t named_gid = pw->pw_gid;
            pw = getpwuid(id->uid);
            int same = pw && strcmp(pw->pw_name, named) == 0 && pw->pw_gid == named_gid;
            free(named);
            if (!same && pw)
                fail("policy: refused: user %s is not uid %lu's own passwd entry, %s: a setuid helper "
                     "runs apps as a uid's own name and groups (name that user)",
                     user, (unsigned long)id->uid, pw->pw_name);
            if (!same)
                fail("policy: refused: user %s: uid %lu has no passwd entry of its own", user,
                     (unsigned long)id->uid);
        }
    }
    if (pw) {
        /* copies: later get*ent calls reuse static storage */
        id->name = xstrdup(pw->pw_name);
        id->home = xstrdup(pw->pw_dir);
        id->shell = xstrdup(pw->pw_shell[0] ? pw->pw_shell : "/bin/sh");
        own_gid = pw->pw_gid;
    } else {
        /* a uid with no passwd entry: its uid as its gid (gid_t is as wide
         * as uid_t, and the uid is at most (uid_t)-2) */
        own_gid = (gid_t)id->uid;
        /* in setuid mode never a group no entry gives it: that gid may
         * name a privileged one (uid 27 would run in group 27, sudo) */
        if (secure) {
            errno = 0;
            const struct group *gr = getgrgid(own_gid);
            if (gr)
                fail("policy: refused: uid %lu has no passwd entry and gid %lu is group %s",
                     (unsigned long)id->uid, (unsigned long)own_gid, gr->gr_name);
            if (errno != 0 && errno != ENOENT && errno != ESRCH)
                fail("policy: refused: uid %lu has no passwd entry and gid %lu could not be looked up: %s",
                     (unsigned long)id->uid, (unsigned long)own_gid, strerror(errno));
        }
    }
    id->gid = group ? resolve_group(group) : own_gid;

    if (secure && id->gid != own_gid) {
        int n = 0, member = 0;
        gid_t *mine = id->name ? group_list(id->name, own_gid, &n) : NULL;
        for (int i = 0; i < n && !member; i++)
            member = mine[i] == id->gid;
        free(mine);
        if (!member)
            fail("policy: refused: group %s is not one of %s's groups", group, user);
    }
    if (id->name) {
        id->groups = group_list(id->name, id->gid, &id->ngroups);
    } else {
        /* no passwd entry, so no group memberships: none at all */
        id->groups = NULL;
        id->ngroups = 0;
    }
}

static void free_identity(struct identity *id)
{
    free(id->groups);
    free(id->name);
    free(id->home);
    free(id->shell);
    memset(id, 0, sizeof *id);
}

/* ---- the app's environment and program ---- */

static int is_login_variable(const char *entry)
{
    static const char *const names[] = { "HOME=", "USER=", "LOGNAME=", "SHELL=" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* base (NULL-terminated) without HOME, USER, LOGNAME, SHELL, with those of
 * the target's passwd entry instead (none when it has no entry), after
 * `first` when not NULL. */
static char **login_environment(char *first, char **base, const struct identity *id)
{
    size_t n = 0, count = 0;
    for (char **e = base; e && *e; e++)
        n++;
    char **env = xmalloc((n + 6) * sizeof *env);
    if (first)
        env[count++] = first;
    for (char **e = base; e && *e; e++)
        if (!is_login_variable(*e))
            env[count++] = *e;
    if (id && id->name) {
        env[count++] = make_variable("HOME", id->home);
        env[count++] = make_variable("USER", id->name);
        env[count++] = make_variable("LOGNAME", id->name);
        env[count++] = make_variable("SHELL", id->shell);
    }
    env[count] = NULL;
    return env;
}

/* The paths to try for file, as execvp would but never through a shell: a
 * name with a '/' as it is, else each entry of path (unset or empty: the
 * default; an empty entry: the current directory). */
static char **exec_candidates(char *file, const char *path, int *search)
{
    char **list;
    if (strchr(file, '/')) {
        list = xmalloc(2 * sizeof *list);
        list[0] = file;
        list[1] = NULL;
        *search = 0;
        return list;
    }
    *search = 1;
    if (!*file) {
        /* as execvp: an empty name is found nowhere */
        list = xmalloc(sizeof *list);
        list[0] = NULL;
        return list;
    }
    if (!path || !*path)
        path = DEFAULT_PATH;
    size_t entries = 1, flen = strlen(file), count = 0;
    for (const char *p = path; *p; p++)
        entries += *p == ':';
    list = xmalloc((entries + 1) * sizeof *list);
    for (const char *p = path;; p++) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        char *c = xmalloc(dlen + 2 + flen + 1);
        if (dlen == 0) {
            c[0] = '.';
            dlen = 1;
        } else {
            memcpy(c, p, dlen);
        }
        c[dlen] = '/';
        memcpy(c + dlen + 1, file, flen + 1);
        list[count++] = c;
        if (!colon)
            break;
        p = colon;
    }
    list[count] = NULL;
    return list;
}

static int compare_ints(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The directory an app of another user than the caller's starts in, as
 * an absolute path, to be entered after the drop (so as that user, every
 * part of it checked): an absolute dir as it is; a relative one joined to
 * the current directory (entered relative to the inherited directory,
 * only its own parts would be checked as that user); none, the current
 * directory itself, with *or_root set: where that user cannot enter it,
 * or it has no path (removed), the app starts in "/". Read here, before
 * the fork: the child may call nothing but async-signal-safe functions. */
static const char *app_directory(const char *dir, int *or_root)
{
    static char path[PATH_MAX];
    *or_root = 0;
    if (dir && dir[0] == '/')
        return dir;
    /* (a path that is no absolute one: a directory outside the root, as
     * the kernel's getcwd writes it) */
    const char *got = getcwd(path, sizeof path);
    if (!got || path[0] != '/') {
        if (!dir)
            return "/";
        fail("chdir: %s: the current directory it is relative to has no path: %s", dir,
             strerror(got ? ENOENT : errno == ERANGE ? ENAMETOOLONG : errno));
    }
    if (!dir) {
        *or_root = 1;
        return path;
    }
    size_t len = strlen(path), dlen = strlen(dir);
    if (len > 1)
        path[len++] = '/';  /* (none after "/") */
    if (len + dlen >= sizeof path)
        fail("chdir: %s: %s", dir, strerror(ENAMETOOLONG));
    memcpy(path + len, dir, dlen + 1);
    return path;
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

/* Empty the permitted, effective and inheritable sets (the ambient set
 * follows), then read them back. A file-capabilities helper keeps its
 * capabilities across setuid between two non-zero uids, and even setuid
 * root leaves the inheritable set alone. 0, or the step and errno. */
static int child_clear_capabilities(int *err)
{
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) {
        *err = errno;
        return STEP_CAPS;
    }
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    memset(data, 0xff, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) {
        *err = errno;
        return STEP_CAPS;
    }
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].permitted || data[i].effective || data[i].inheritable) {
            *err = 0;
            return STEP_VERIFY;
        }
    return 0;
}

/* Does gid belong to the set of {extra} and the n groups of list? */
static int in_groups(gid_t gid, gid_t extra, const gid_t *list, int n)
{
    if (gid == extra)
        return 1;
    for (int i = 0; i < n; i++)
        if (list[i] == gid)
            return 1;
    return 0;
}

/* Are the process's groups (its effective gid and its supplementary
 * groups) already the target's, as a set? Then a setgroups refused to a
 * caller that is not root (naming its own user, through a helper not
 * installed setuid) had nothing to change. (More than 64 supplementary
 * groups, looked at where they fit on the stack: taken for not the
 * same.) */
static int groups_are(const struct identity *id)
{
    gid_t now[64];
    int n = getgroups(64, now);
    gid_t egid = getegid();
    if (n < 0 || !in_groups(egid, id->gid, id->groups, id->ngroups))
        return 0;
    for (int i = 0; i < n; i++)
        if (!in_groups(now[i], id->gid, id->groups, id->ngroups))
            return 0;
    for (int i = 0; i < id->ngroups; i++)
        if (!in_groups(id->groups[i], egid, now, n))
            return 0;
    return in_groups(id->gid, egid, now, n);
}

/* Switch to the target identity and prove the switch cannot be undone.
 * setgroups and setgid must come before setuid: after setuid the process
 * has lost the right to change its groups and would keep root's. */
static void child_drop_privileges(int status_fd, const struct identity *id)
{
    int err = 0, step;
    if (id->uid != 0)
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (setgroups((size_t)id->ngroups, id->groups) != 0) {
        err = errno; /* (groups_are may set another) */
        if (err != EPERM || !groups_are(id))
            child_fail(status_fd, STEP_SETGROUPS, err);
    }
    if (setgid(id->gid) != 0)
        child_fail(status_fd, STEP_SETGID, errno);
    if (setuid(id->uid) != 0)
        child_fail(status_fd, STEP_SETUID, errno);
    if (id->uid != 0 && (step = child_clear_capabilities(&err)) != 0)
        child_fail(status_fd, step, err);
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
    /* and the supplementary groups are the target's alone (a setgroups
     * that "succeeds" without doing it would leave root's: disk, shadow) */
    gid_t now[64];
    int n = getgroups(0, NULL);
    if (n < 0 || n > id->ngroups)
        child_fail(status_fd, STEP_VERIFY, 0);
    /* (each looked at where they fit on the stack: a target of more than
     * 64 groups has its count checked only) */
    if (n <= 64 && (n = getgroups(n, now)) >= 0) {
        for (int i = 0; i < n; i++) {
            int found = 0;
            for (int j = 0; j < id->ngroups && !found; j++)
                found = now[i] == id->groups[j];
            if (!found)
                child_fail(status_fd, STEP_VERIFY, 0);
        }
    } else if (n < 0) {
        child_fail(status_fd, STEP_VERIFY, 0);
    }
}

/* Mark [lo, hi] close-on-exec (the status pipe must stay open until the
 * exec, so nothing is closed outright). close_range where the kernel has
 * CLOSE_RANGE_CLOEXEC (5.11); else the entries of /proc/self/fd, read with
 * raw getdents64 (no malloc). 0 or an errno. */
static int child_cloexec_range(unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
#endif
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return errno;
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
             * d_type (1), d_name */
            const char *rec = buf + off;
            unsigned short reclen;
            memcpy(&reclen, rec + 16, sizeof reclen);
            const char *name = rec + 19;
            unsigned long fd = 0;
            int digits = 0;
            for (; *name >= '0' && *name <= '9' && digits < 10; name++, digits++)
                fd = fd * 10 + (unsigned long)(*name - '0');
            if (digits && *name == '\0' && fd >= lo && fd <= hi && (int)fd != dir &&
                fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0 && errno != EBADF) {
                int err = errno;
                (void)close(dir);
                return err;
            }
            off += reclen;
        }
    }
    int err = n < 0 ? errno : 0;
    (void)close(dir);
    return err;
}

/* A descriptor above 2 the app would inherit (open, not close-on-exec,
 * not the pid channel) that is a terminal, or -1: read from /proc/self/fd (this child of a
 * single-threaded helper may allocate), else looked at up to the limit. */
static int child_inherited_terminal(int pid_fd)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        int found = -1;
        while (found < 0 && (e = readdir(d))) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end || fd < 3 || fd > INT_MAX || fd == dirfd(d) || fd == pid_fd)
                continue;
            int flags = fcntl((int)fd, F_GETFD);
            if (flags >= 0 && !(flags & FD_CLOEXEC) && isatty((int)fd))
                found = (int)fd;
        }
        closedir(d);
        return found;
    }
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
    for (long fd = 3; fd < max; fd++) {
        int flags = fcntl((int)fd, F_GETFD);
        if (fd != pid_fd && flags >= 0 && !(flags & FD_CLOEXEC) && isatty((int)fd))
            return (int)fd;
    }
    return -1;
}

/* Setuid mode: no descriptor of the caller's above 2 reaches the app but
 * the kept ones (sorted). */
static int child_close_fds(const struct child_plan *plan)
{
    unsigned lo = 3;
    for (int i = 0; i < plan->nkeep; i++) {
        unsigned keep = (unsigned)plan->keep_fds[i];
        if (keep > lo) {
            int err = child_cloexec_range(lo, keep - 1);
            if (err)
                return err;
        }
        if (keep >= lo)
            lo = keep + 1;
    }
    return child_cloexec_range(lo, ~0U);
}

/* The PATH search of execvp without its shell fallback: ENOEXEC is an
 * error like any other. Errors that say "not here" go on to the next
 * entry; EACCES is remembered and reported if nothing else works; any
 * other error ends the search (as csrc/spawn.c's child_exec does). */
static void child_exec(const struct child_plan *plan, int status_fd)
    __attribute__((noreturn));

static void child_exec(const struct child_plan *plan, int status_fd)
{
    char **envp = plan->envp;
    int saw_eacces = 0, last = ENOENT;
    for (char **c = plan->candidates; *c; c++) {
        execve(*c, plan->argv, envp);
        last = errno;
        if (!plan->search)
            child_fail(status_fd, STEP_EXEC, last);
        if (last == EACCES)
            saw_eacces = 1;
        else if (last != ENOENT && last != ENOTDIR && last != ESTALE &&
                 last != ENODEV && last != ETIMEDOUT && last != ELOOP &&
                 last != ENAMETOOLONG)
            child_fail(status_fd, STEP_EXEC, last);
    }
    child_fail(status_fd, STEP_EXEC, saw_eacces ? EACCES : last);
}

/* The app forked and not yet reaped (its pid cannot have been reused), or
 * 0. The launcher's stop of a start that has no pid yet sends SIGTERM:
 * the app is killed then (the helper, killed before it has written the
 * pid, would leave an app nobody knows running) unless its pid was
 * written, which the launcher reads once the helper has gone and stops
 * with the stop's own signal (its kill_grace). A start given up on
 * (dropped, with no later step to read the pid) sends SIGUSR1: the app
 * is killed, written or not. Either ends the helper. */
static volatile sig_atomic_t forked_app;
static volatile sig_atomic_t pid_written;
/* The uid the app runs as once dropped (when has_forked_uid): a
 * file-capabilities copy, whose effective uid is its caller's, signals it
 * as that uid (it holds CAP_SETUID; a setuid-root copy and root need not).
 * Set while SIGTERM and SIGUSR1 are blocked, before the handler can run. */
static volatile uid_t forked_uid;
static volatile sig_atomic_t has_forked_uid;

static void on_stop_signal(int sig)
{
    pid_t app = (pid_t)forked_app;
    if (sig == SIGTERM && pid_written)
        app = 0;
    if (app > 0 && kill(app, SIGKILL) < 0 && errno == EPERM && has_forked_uid &&
        syscall(SYS_setresuid, (uid_t)-1, forked_uid, (uid_t)-1) == 0)
        (void)kill(app, SIGKILL);
    _exit(EXIT_FAILED);
}

static void run_child(const struct child_plan *plan, int status_fd)
    __attribute__((noreturn));

static void run_child(const struct child_plan *plan, int status_fd)
{
    sigset_t empty;
    int err;

    if (plan->secure) {
        /* a disposition the caller set to "ignore" survives exec: the
         * target's app starts with the defaults */
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                (void)signal(sig, SIG_DFL);
        /* a caller's umask of 0 would leave the app's files open to it */
        umask(umask(0) | 022);
    }
    /* (SIGTERM and SIGUSR1 stay blocked until the exec: the helper's
     * handler is not the app's) */
    (void)signal(SIGTERM, SIG_DFL);
    (void)signal(SIGUSR1, SIG_DFL);
    if (plan->setsid && setsid() < 0)
        child_fail(status_fd, STEP_SETSID, errno);
    /* no terminal for another user's app, controlling or not: one on
     * 0, 1 or 2 (the caller's), or on a descriptor the caller had kept
     * (--keep-fd, in either mode), would let it read what is typed there */
    for (int fd = 0; plan->id && plan->id->uid != getuid() && fd < 3; fd++)
        if (isatty(fd))
            child_fail(status_fd, STEP_TERMINAL, fd);
    for (int k = 0; plan->id && plan->id->uid != getuid() && k < plan->nkeep; k++)
        if (isatty(plan->keep_fds[k]))
            child_fail(status_fd, STEP_TERMINAL, plan->keep_fds[k]);
    /* run by root, nothing is closed: every descriptor the app inherits,
     * named with --keep-fd or not */
    if (plan->id && plan->id->uid != getuid() && !plan->close_fds) {
        /* (but the pid channel, closed before the exec) */
        int tty = child_inherited_terminal(plan->pid_fd);
        if (tty >= 0)
            child_fail(status_fd, STEP_TERMINAL, tty);
    }
    if (plan->id) {
        child_drop_privileges(status_fd, plan->id);
        /* a session keyring of its own, the target's: the caller's (root's
         * Kerberos tickets, mount keys) is not the app's to read or fill.
         * (No keys in this kernel, or keyctl refused to every process here
         * by a seccomp filter, as a container's: nothing to reach.) */
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS &&
            errno != EPERM)
            child_fail(status_fd, STEP_KEYRING, errno);
    }
    /* unprivileged now: the app may dump core again as its limit says */
    if (plan->secure && setrlimit(RLIMIT_CORE, &plan->core_limit) != 0)
        child_fail(status_fd, STEP_RLIMIT, errno);
    /* an app that runs as its caller has the caller's limits, where they
     * are lower than those it runs with now (pid 1's): the root part's
     * reset gives it none it had not (only lowered: no privilege needed) */
    for (int r = 0; plan->own_limits && r < RLIMIT_NLIMITS; r++) {
        struct rlimit now_lim, mine = plan->caller_limits[r];
        if (getrlimit(r, &now_lim) != 0)
            child_fail(status_fd, STEP_RLIMIT, errno);
        if (mine.rlim_max > now_lim.rlim_max)
            mine.rlim_max = now_lim.rlim_max;
        if (mine.rlim_cur > mine.rlim_max)
            mine.rlim_cur = mine.rlim_max;
        if ((mine.rlim_max != now_lim.rlim_max || mine.rlim_cur != now_lim.rlim_cur) &&
            setrlimit(r, &mine) != 0)
            child_fail(status_fd, STEP_RLIMIT, errno);
    }
    /* after the drop, so the directory is checked as the target user; the
     * caller's own, which that user cannot enter, gives way to "/" (as
     * systemd starts a service with no directory given) */
    if (plan->dir && chdir(plan->dir) != 0 && (!plan->dir_or_root || chdir("/") != 0))
        child_fail(status_fd, STEP_CHDIR, errno);
    if (plan->close_fds && (err = child_close_fds(plan)) != 0)
        child_fail(status_fd, STEP_FDS, err);
    /* the app must not hold the pid pipe: the launcher would never see EOF
     * on it if the helper died, and the app could write a false pid */
    (void)close(plan->pid_fd);
    /* the mask survives exec; the app must start with no signal blocked */
    sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
    child_exec(plan, status_fd);
}

/* ---- parent ---- */

static const char *step_name(int step)
{
    switch (step) {
    case STEP_SETSID: return "setsid";
    case STEP_SETGROUPS: return "setgroups";
    case STEP_SETGID: return "setgid";
    case STEP_SETUID: return "setuid";
    case STEP_CAPS: return "capabilities";
    case STEP_VERIFY: return "verify";
    case STEP_RLIMIT: return "rlimit";
    case STEP_CHDIR: return "chdir";
    case STEP_FDS: return "closing descriptors";
    case STEP_TERMINAL: return "terminal";
    case STEP_KEYRING: return "session keyring";
    case STEP_EXEC: return "exec";
    default: return "start";
    }
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Kill the app forked (still our child, so its pid is its own), as the
 * stop signal's handler does (a file-capabilities copy as the app's uid),
 * and reap it; one that could not be killed is not waited for (the wait
 * would never end). Its end: the helper's, which exits then. */
static void kill_forked(pid_t pid)
{
    int killed = kill(pid, SIGKILL) == 0;
    if (!killed && errno == EPERM && has_forked_uid &&
        syscall(SYS_setresuid, (uid_t)-1, forked_uid, (uid_t)-1) == 0) {
        uids_changed = 1; /* (the helper's end: _exit, as --signal's) */
        killed = kill(pid, SIGKILL) == 0;
    }
    /* (a stop signal until here kills it too; after, before the reap, the
     * handler would signal a pid that may be free) */
    forked_app = 0;
    if (killed)
        reap(pid);
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

/* Can the pid channel take the pid record? Not a regular file whose size
 * limit (a caller's RLIMIT_FSIZE this helper could not lift: it lacks
 * CAP_SYS_RESOURCE) it would pass: the write would fail (SIGXFSZ) with the
 * app forked, running as another user this process can no longer signal,
 * and its pid told to nobody. Asked before the fork. */
static int pid_channel_fits(int fd)
{
    struct stat st;
    struct rlimit lim;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || getrlimit(RLIMIT_FSIZE, &lim) != 0 ||
        lim.rlim_cur == RLIM_INFINITY)
        return 1;
    int fl = fcntl(fd, F_GETFL);
    off_t at = fl >= 0 && (fl & O_APPEND) ? st.st_size : lseek(fd, 0, SEEK_CUR);
    /* the longest record: a pid of 10 digits and its newline */
    return at >= 0 && (unsigned long long)at + 11 <= (unsigned long long)lim.rlim_cur;
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

/* ---- --signal: a signal to an app of the target user ---- */

/* The pid a pidfd names, from /proc/self/fdinfo: > 0, -1 once the process
 * has ended (the kernel says so), 0 when fd is no pidfd. */
static pid_t pidfd_pid(int fd)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        fail("the target's descriptor (fd %d): %s", fd, strerror(errno));
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 &&
           ((r = read(f, buf + len, sizeof buf - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            len += (size_t)r;
    (void)close(f);
    buf[len] = '\0';
    /* "Pid:" at the start of a line ("NSpid:" is another field) */
    for (char *line = buf; *line;) {
        if (strncmp(line, "Pid:", 4) == 0) {
            long v = strtol(line + 4, NULL, 10);
            return v > 0 && v <= INT_MAX ? (pid_t)v : v < 0 ? -1 : 0;
        }
        char *next = strchr(line, '\n');
        if (!next)
            break;
        line = next + 1;
    }
    return 0;
}

/* Has the process of pidfd fd exited (a zombie, or reaped)? A pidfd is
 * readable once it has. */
static int pidfd_exited(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN, .revents = 0 };
    int r;
    do
        r = poll(&pf, 1, 0);
    while (r < 0 && errno == EINTR);
    return r > 0 && (pf.revents & POLLIN);
}

/* Take uid as the effective uid only, the caller's (the real uid) as the
 * real and saved ones, no group but the caller's real one, no capability:
 * the kernel then lets this process signal what uid may and what the
 * caller may (its effective or real uid matches their real or saved uid),
 * nothing else, and lets none of uid's processes signal or trace it
 * (neither its real nor saved uid is theirs, unless uid is the caller's
 * own): an app cannot kill the helper that is about to end it. Root's
 * own run (no setuid) takes uid whole: its real uid would reach every
 * process of root's. Exits with a message when any of it fails. */
static void become_signaller(const struct identity *id)
{
    uid_t uid = id->uid;
    uid_t caller = getuid() != 0 ? getuid() : uid;
    gid_t group = getuid() != 0 ? getgid() : id->gid;
    int err = 0;
    uids_changed = 1;
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (setgroups(0, NULL) != 0)
        fail("setgroups: %s", strerror(errno));
    if (setresgid(group, group, group) != 0)
        fail("setresgid: %s", strerror(errno));
    if (setresuid(caller, uid, caller) != 0)
        fail("setresuid: %s", strerror(errno));
    /* with no uid 0 left, every capability goes */
    if (uid != 0 && child_clear_capabilities(&err) != 0)
        fail("verify: capabilities are still held");
    uid_t r, e, sv;
    if (getresuid(&r, &e, &sv) != 0 || r != caller || e != uid || sv != caller)
        fail("verify: the uids did not change as asked");
    if (uid != 0 && setuid(0) == 0)
        fail("verify: root could be regained");
}

/* Send opt->signal to the process whose pidfd is at opt->target_fd (with
 * --process-group, to the group it is in; with --pgid, to that group) as
 * the target user: the helper takes that user's uid first
 * (become_signaller), so the kernel's own check decides what it may reach,
 * and the pidfd names the process without a pid another could take. In
 * setuid mode the caller must be allowed to start apps as that user (the
 * policy). */
static void signal_mode(const struct options *opt, int secure) __attribute__((noreturn));

static void signal_mode(const struct options *opt, int secure)
{
    static struct identity id;
    int fd = opt->target_fd ? opt->target_fd : 3;
    if (secure) {
        uid_t target = enforce_policy(opt->user);
        resolve_identity(opt->user, NULL, 1, &id);
        if (id.uid != target || id.uid == 0)
            fail("policy: refused: %s changed while it was checked", opt->user);
    } else {
        resolve_identity(opt->user, NULL, 0, &id);
    }
    /* read while privileged: after the drop /proc/self is not ours */
    pid_t pid = opt->pgid ? opt->pgid : pidfd_pid(fd);
    if (pid == 0)
        fail("fd %d is not a pidfd", fd);
    /* a zombie too (its parent has not reaped it yet: a group leader the
     * launcher holds while its group has members): the kernel takes a
     * signal to it, which does nothing; its group is another matter */
    if (pid < 0 || (!opt->pgid && !opt->process_group && pidfd_exited(fd))) {
        say("the process has ended");
        exit(EXIT_GONE);
    }
    /* --process-group: the group the target is in (it may lead none: a
     * main pid moved by MAINPID= to a child), read while the target is
     * known to live (a pidfd names it); the number is held while it is in
     * that group. Not group 1 (kill(-1) means every process the user may
     * signal: a pidfd of pid 1, a launcher that is its pid namespace's
     * first process), nor the helper's own (the launcher's) */
    pid_t group = 0;
    if (opt->process_group && pid == 1) {
        say("pid 1: its group is not signalled (a signal to -1 reaches every process)");
        exit(EXIT_NOT_PERMITTED);
    }
    if (opt->process_group) {
        /* (the pidfd's process is seen to live after this, as the user,
         * before the group is signalled: it lived here too, and the pid
         * was its own) */
        if ((group = getpgid(pid)) < 0) {
            say("pid %ld has ended", (long)pid);
            exit(EXIT_GONE);
        }
        /* (0: a group of another pid namespace's, not to be named here) */
        if (group <= 1 || group == getpgrp()) {
            say("pid %ld: its group %ld is not signalled (%s)", (long)pid, (long)group,
                group == 1 ? "a signal to -1 reaches every process"
                           : group == 0 ? "not in this pid namespace" : "the launcher's own");
            exit(EXIT_NOT_PERMITTED);
        }
    }
    /* --pgid: nor the launcher's own group, as --process-group's */
    if (opt->pgid && opt->pgid == getpgrp()) {
        say("process group %ld is not signalled (the launcher's own)", (long)opt->pgid);
        exit(EXIT_NOT_PERMITTED);
    }
    become_signaller(&id);
    /* from here on _exit (uids_changed) */
    long r;
    if (opt->pgid) {
        /* a group whose leader has ended: the caller knows it has members
         * left (its id is then no other process's); as the user, only
         * that user's are reached */
        r = kill(-opt->pgid, opt->signal);
    } else if (opt->process_group) {
        /* the target is this user's (the check as that user), then the
         * group it is in */
        r = syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0);
        if (r == 0)
            r = kill(-group, opt->signal);
    } else {
        r = syscall(SYS_pidfd_send_signal, fd, opt->signal, NULL, 0);
    }
    if (r == 0)
        _exit(0);
    int err = errno;
    if (err == ESRCH) {
        say(opt->pgid ? "process group %ld has no process left" : "pid %ld has ended", (long)pid);
        _exit(EXIT_GONE);
    }
    if (err == EPERM) {
        say(opt->pgid ? "process group %ld has no process running as %s: not signalled"
                      : "pid %ld does not run as %s: not signalled", (long)pid, opt->user);
        _exit(EXIT_NOT_PERMITTED);
    }
    fail("signal %d to pid %ld: %s", opt->signal, (long)pid, strerror(err));
}

int main(int argc, char **argv)
{
    struct options opt = { 0 };
    /* static: what they point to lives until exit, and stays reachable
     * (leak checkers of the sanitizer builds look for that) */
    static struct identity ident;
    static struct child_plan plan;
    static char **kept_env, **caller_env;
    int status_pipe[2];
    struct child_failure failure = { 0, 0 };
    ssize_t got;
    pid_t pid;

    /* Setuid mode begins before anything else can open a file or read a
     * variable the caller chose (reading the options reads neither). */
    plan.secure = getauxval(AT_SECURE) != 0;
    if (plan.secure) {
        ensure_std_fds();
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        for (int r = 0; r < RLIMIT_NLIMITS; r++)
            if (getrlimit(r, &plan.caller_limits[r]) != 0)
                plan.caller_limits[r].rlim_cur = plan.caller_limits[r].rlim_max = RLIM_INFINITY;
        reset_limits(&plan.core_limit);
    }
    check_module_version(argc, argv);
    parse_options(argc, argv, &opt);
    caller_env = take_caller_environment(opt.encoded_env);
    if (plan.secure)
        kept_env = take_kept_environment(caller_env);
    if (opt.signal_mode)
        signal_mode(&opt, plan.secure);
    /* from here on messages go to the error pipe, which the app does not
     * inherit (in setuid mode the child closes it with the rest) */
    if (opt.error_fd >= 0) {
        /* one that is not open would have the messages go to stderr, the
         * app's (often /dev/null), where the caller does not look */
        if (fcntl(opt.error_fd, F_SETFD, FD_CLOEXEC) != 0) {
            char num[16];
            snprintf(num, sizeof num, "%d", opt.error_fd);
            usage_error("--error-fd is not open", num);
        }
        message_fd = opt.error_fd;
    }
    /* The launcher passes --encoded-env alone when it was given an
     * environment for the app (--login-env when not): one a secure helper
     * would drop for its fixed set. AT_SECURE is not a setuid file alone:
     * the kernel sets it too for a launcher whose effective uid is root
     * and real uid is not, which the launcher may take for root. */
    if (plan.secure && opt.encoded_env && !opt.login_env)
        usage_error("the environment cannot be given through a setuid or secure-mode helper, which rebuilds "
                    "the app's (--encoded-env without --login-env)", NULL);
    if (fcntl(opt.pid_fd, F_GETFD) < 0) {
        char num[16];
        snprintf(num, sizeof num, "%d", opt.pid_fd);
        usage_error("pid fd is not open", num);
    }
    /* a descriptor to keep that is not there: the app would miss it (and
     * in setuid mode the number would be silently skipped) */
    for (int k = 0; k < opt.nkeep; k++)
        if (fcntl(opt.keep_fds[k], F_GETFD) < 0) {
            char num[16];
            snprintf(num, sizeof num, "%d", opt.keep_fds[k]);
            usage_error("--keep-fd is not open", num);
        }

    if (plan.secure) {
        char self[32];
        uid_t target = enforce_policy(opt.user);
        /* without --user, the caller's own uid: never the effective root */
        snprintf(self, sizeof self, "%lu", (unsigned long)getuid());
        resolve_identity(opt.user ? opt.user : self, opt.group, 1, &ident);
        /* the name is looked up twice: both answers must agree */
        if (ident.uid != target || ident.uid == 0)
            fail("policy: refused: %s changed while it was checked",
                 opt.user ? opt.user : self);
        plan.id = &ident;
        plan.own_limits = ident.uid == getuid();
    } else if (opt.user) {
        resolve_identity(opt.user, opt.group, 0, &ident);
        plan.id = &ident;
    }

    if (plan.secure) {
        static char fixed_path[] = "PATH=" DEFAULT_PATH;
        plan.envp = login_environment(fixed_path, kept_env, &ident);
        /* the caller's search path only picks what the target runs, as
         * an absolute ARGV[0] would: the exec comes after the drop */
        plan.candidates = exec_candidates(opt.argv[0], opt.path ? opt.path : DEFAULT_PATH, &plan.search);
        qsort(opt.keep_fds, (size_t)opt.nkeep, sizeof opt.keep_fds[0], compare_ints);
        plan.close_fds = 1;
    } else {
        if (opt.login_env) {
            struct identity own = { 0 };
            if (!plan.id) {
                char self[32];
                snprintf(self, sizeof self, "%lu", (unsigned long)getuid());
                resolve_identity(self, NULL, 0, &own);
            }
            plan.envp = login_environment(NULL, caller_env, plan.id ? plan.id : &own);
            free_identity(&own);
        }
        plan.candidates = exec_candidates(opt.argv[0], opt.path ? opt.path : lookup(caller_env, "PATH"),
                                          &plan.search);
        if (!plan.envp)
            plan.envp = caller_env;
    }
    /* (checked for a terminal in either mode; only setuid mode closes the
     * others) */
    plan.keep_fds = opt.keep_fds;
    plan.nkeep = opt.nkeep;
    /* a user switch always comes with a session of its own: no controlling
     * terminal to push keystrokes into */
    plan.setsid = opt.setsid || plan.id != NULL;
    plan.dir = opt.dir;
    /* an app of another user inherits no directory: its own is entered
     * by path, as that user (what the caller could reach by its
     * directory alone is not the app's) */
    if (plan.id && plan.id->uid != getuid())
        plan.dir = app_directory(opt.dir, &plan.dir_or_root);
    plan.pid_fd = opt.pid_fd;
    plan.argv = opt.argv;

    /* close-on-exec: a successful exec closes the child's end, which is the
     * EOF that tells us the exec worked */
    if (pipe2(status_pipe, O_CLOEXEC) != 0)
        fail("cannot create a pipe: %s", strerror(errno));
    if (!pid_channel_fits(opt.pid_fd))
        fail("the pid channel (fd %d) is a file RLIMIT_FSIZE would not let the pid be written to",
             opt.pid_fd);
    /* a SIGTERM or SIGUSR1 from here on kills the app once it is forked
     * (on_stop_signal): blocked until its pid is known */
    sigset_t term, unblocked;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGUSR1);
    struct sigaction on_term = { .sa_handler = on_stop_signal };
    sigemptyset(&on_term.sa_mask);
    sigaddset(&on_term.sa_mask, SIGTERM);
    sigaddset(&on_term.sa_mask, SIGUSR1);
    (void)sigprocmask(SIG_BLOCK, &term, &unblocked);
    if (plan.id) {
        forked_uid = plan.id->uid;
        has_forked_uid = 1;
    }
    (void)sigaction(SIGTERM, &on_term, NULL);
    (void)sigaction(SIGUSR1, &on_term, NULL);
    /* The app stays our child, a zombie once it has exited, until reap():
     * what makes a kill of forked_app safe. A SIGCHLD the caller had
     * ignored (it survives exec, setuid or not) would have the kernel reap
     * it at once, its pid free for another (root's) process to take before
     * on_stop_signal's SIGKILL */
    struct sigaction chld_default;
    memset(&chld_default, 0, sizeof chld_default);
    chld_default.sa_handler = SIG_DFL;
    sigemptyset(&chld_default.sa_mask);
    (void)sigaction(SIGCHLD, &chld_default, NULL);
    pid = fork();
    if (pid < 0)
        fail("cannot fork: %s", strerror(errno));
    if (pid == 0) {
        (void)close(status_pipe[0]);
        run_child(&plan, status_pipe[1]);
    }
    forked_app = pid;
    (void)sigprocmask(SIG_SETMASK, &unblocked, NULL);

    /* Only now, in the parent: an ignored disposition survives exec, so
     * setting it before fork would hand the app an ignored SIGPIPE. With it
     * ignored, a launcher that went away makes the pid write fail with EPIPE
     * instead of killing us silently. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* (the same for a size limit: EFBIG, said) */
    (void)close(status_pipe[1]);
    got = read_status(status_pipe[0], &failure);
    (void)close(status_pipe[0]);

    if (got < 0) {
        int err = errno;
        /* We cannot tell whether the app started; it is still our child,
         * so its pid cannot have been reused and killing it is safe. */
        kill_forked(pid);
        say("reading the exec status: %s",
                strerror(err));
        if (uids_changed)
            _exit(EXIT_FAILED);
        return EXIT_FAILED;
    }
    if (got == 0) {
        /* (SIGTERM held over the write: one that comes during it finds
         * the pid written, or the write failed and the app unknown) */
        (void)sigprocmask(SIG_BLOCK, &term, NULL);
        int reported = report_pid(opt.pid_fd, opt.pid_format, pid);
        int write_err = reported != 0 ? errno : 0; /* (kept across the unblock) */
        if (reported == 0)
            pid_written = 1;
        (void)sigprocmask(SIG_SETMASK, &unblocked, NULL);
        if (reported != 0) {
            /* the launcher has no pid (or a part of one: bad_pid, nothing
             * signalled), so nothing may run that it cannot know: the app
             * is still our child, its pid ours alone, and killing it is
             * safe */
            kill_forked(pid);
            say("cannot write the pid of %s (%ld): %s: the app killed",
                    opt.argv[0], (long)pid, strerror(write_err));
            if (uids_changed)
                _exit(EXIT_FAILED);
            return EXIT_FAILED;
        }
        /* (a SIGTERM from here on leaves the app to the launcher, which
         * has its pid; a SIGUSR1 still kills it) */
        if (close(opt.pid_fd) != 0 && errno != EINTR) {
            say("closing the pid fd: %s",
                    strerror(errno));
            return EXIT_FAILED;
        }
        return 0;
    }

    forked_app = 0; /* (before its pid is free) */
    reap(pid);
    if (got < (ssize_t)sizeof failure) {
        say("the child failed before exec");
        return EXIT_FAILED;
    }
    if (failure.step == STEP_EXEC) {
        /* a long path loses its middle, not the reason after it (what
         * say() takes is bounded) */
        size_t plen = strlen(opt.argv[0]);
        if (plen > 400)
            say("cannot execute %.200s...%s: %s", opt.argv[0], opt.argv[0] + plen - 150,
                strerror(failure.err));
        else
            say("cannot execute %s: %s", opt.argv[0], strerror(failure.err));
        /* 127 when there is no such program, 126 when there is one that
         * cannot run (no permission, not an executable format) */
        return failure.err == ENOENT || failure.err == ENOTDIR
               ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
    }
    if (failure.step == STEP_VERIFY)
        say("verify: the privilege drop did not stick; refusing to run as "
            "root what was asked to run as another user");
    else if (failure.step == STEP_TERMINAL)
        say("terminal: descriptor %d is a terminal, which an app of another user "
            "never gets (it could read what is typed there)", failure.err);
    else if (failure.err == EPERM && geteuid() != 0 &&
             (failure.step == STEP_SETGROUPS || failure.step == STEP_SETGID || failure.step == STEP_SETUID))
        /* (a caller that is not root, the helper not installed setuid) */
        say("%s: %s (only root may change users: install appstart-helper setuid root, with a policy)",
            step_name(failure.step), strerror(failure.err));
    else
        say("%s: %s", step_name(failure.step),
                strerror(failure.err));
    return EXIT_FAILED;
}
