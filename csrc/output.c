/*
 * output.c: an app's stdout and stderr read by the launcher (output.h).
 *
 * Rotation and root: the launcher may run as root while the file's
 * directory belongs to the app's user. Nothing the launcher writes goes
 * through a name that user can point elsewhere: the directory is opened
 * once (O_PATH) and every name is resolved in it, never through a
 * symbolic link (O_NOFOLLOW); a file found there is appended to only if it
 * is a regular file with a single link (no hard link to another file); a
 * file made by a rotation is created O_EXCL (a name taken meanwhile fails,
 * it is never opened). Renames replace names, never follow them. The
 * directory is reached, at the start, by a walk no user but root and the
 * launcher can redirect (sys_open_parent_safely: a symbolic link on the
 * way is followed only where no one else could have made or changed it),
 * and a file found in a sticky directory others can write (/tmp) is used
 * only if it is root's, the launcher's, the directory owner's or the
 * app's user's (output_set_app_uid): the kernel's fs.protected_regular.
 */
#include "output.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A record in the ring: its mark, the line, its mark again. The mark is
 * the line's length (at most OUTPUT_LINE_MAX, 13 bits) with the stream in
 * bit 15, 16 bits little endian: at the start, so that the oldest is
 * dropped reading forward; at the end, so that the last n lines are
 * found reading back from the newest, in n steps whatever the ring holds
 * (output_keep allows 64 MiB: millions of short lines) */
#define RECORD_MARK 2
#define RECORD_OVERHEAD (2 * RECORD_MARK)

struct output_file {
    int dir_fd, fd;
    int readable; /* fd opened for reading too: a rotation can move a line */
    char name[OUTPUT_NAME_MAX];
    long long size, max_bytes;
    long long open_line; /* bytes of an unfinished line at the file's end
                          * (written here: 0 in a file as found) */
    int keep;
    int top; /* no NAME.i above it (as far as this reader knows): a
              * rotation renames NAME.top .. NAME.1 only, not keep names
              * most of which are not there */
    uid_t app_uid; /* the app's user ((uid_t)-1: none): its names a
                    * rotation may move in a sticky directory */
    dev_t made_dev; /* the last file a rotation made (O_EXCL) */
    ino_t made_ino;
    int skip; /* a failed write dropped the start of a line: what comes
               * up to its '\n' is dropped too (the file holds whole
               * lines) */
};

struct output_stream {
    int fd;       /* the pipe's read end; -1: none or closed */
    int writer;   /* its write end, until the child has it */
    int sink;     /* enum output_sink */
    int level;    /* syslog level */
    int flush;    /* at end of file: the partial line is a line */
    int split;    /* a line was just split at OUTPUT_LINE_MAX: a '\n'
                   * coming next (in this chunk or the next) ends it */
    size_t plen;  /* bytes in partial */
    long long end_left; /* what is left of the app's own output, once it
                           has ended (output_bound_end); -1: not bounded */
    int first_size;     /* the pipe's size as made (enlarged: see below) */
    long enlarged;      /* bytes of the pipe past its first size, counted
                           in the process's pipe budget until its close */
    struct output_file *file;
    char partial[OUTPUT_LINE_MAX];
};

struct output {
    struct output_stream s[2];
    struct output_file files[2];
    int syslog_fd;
    struct sockaddr_un syslog_addr;
    socklen_t syslog_len;
    char tag[OUTPUT_NAME_MAX + 32];
    size_t tag_len;
    long long syslog_dropped, file_dropped;
    int syslog_err; /* the last datagram's that was lost */
    int file_err;
    uid_t app_uid; /* (uid_t)-1: none */
    /* the chunk being split */
    int cstream;
    size_t clen, cpos;
    /* the ring: records of RECORD_OVERHEAD + length bytes */
    size_t cap, head, used, nlines;
    size_t iter_index, iter_pos; /* output_line_at's place, when */
    int iter_valid;              /* iter_valid (no line added since) */
    char scratch[OUTPUT_LINE_MAX];
    char chunk[OUTPUT_CHUNK];
    unsigned char ring[];
};

size_t output_size(size_t keep)
{
    return sizeof(struct output) + keep;
}

static void file_init(struct output_file *f)
{
    f->dir_fd = f->fd = -1;
    f->readable = 0;
    f->name[0] = '\0';
    f->size = f->max_bytes = f->open_line = 0;
    f->keep = f->top = f->skip = 0;
    f->app_uid = (uid_t)-1;
    f->made_dev = 0;
    f->made_ino = 0;
}

void output_init(struct output *o, size_t keep)
{
    for (int i = 0; i < 2; i++) {
        o->s[i].fd = o->s[i].writer = -1;
        o->s[i].enlarged = 0;
        o->s[i].first_size = 0;
        o->s[i].sink = OUTPUT_NONE;
        o->s[i].level = 6;
        o->s[i].flush = 0;
        o->s[i].split = 0;
        o->s[i].plen = 0;
        o->s[i].end_left = -1;
        o->s[i].file = NULL;
        file_init(&o->files[i]);
    }
    o->syslog_fd = -1;
    memset(&o->syslog_addr, 0, sizeof o->syslog_addr);
    o->syslog_len = 0;
    o->tag[0] = '\0';
    o->tag_len = 0;
    o->syslog_dropped = o->file_dropped = 0;
    o->syslog_err = 0;
    o->file_err = 0;
    o->app_uid = (uid_t)-1;
    o->cstream = 0;
    o->clen = o->cpos = 0;
    o->cap = keep;
    o->head = o->used = o->nlines = 0;
    o->iter_index = o->iter_pos = 0;
    o->iter_valid = 0;
}

/* The largest pipe the read at the app's end takes in full (64 chunks of
 * 64 KiB, CHUNKS_AT_END in output.lua): a pipe-max-size raised above it
 * would leave the rest of a full pipe unread at the end. */
#define PIPE_SIZE_MAX (1L << 22)

/* A number in a file of /proc/sys (-1: none to be read). */
static long sysctl_long(const char *path)
{
    char buf[32], *end;
    if (sys_read_small(AT_FDCWD, path, buf, sizeof buf) <= 0)
        return -1;
    long v = strtol(buf, &end, 10);
    return end == buf || v < 0 ? -1 : v;
}

/* What this process's pipes may take past their first size, together:
 * half of the user's pipe-user-pages-soft (past which the kernel gives an
 * unprivileged user's new pipes 8 KiB, its other processes' too, and
 * refuses to enlarge one), 32 MiB where that is unlimited or unread. A
 * pipe's pages are the kernel's memory, never swapped: a launcher that
 * captures the output of many apps enlarges the first ones' only, and
 * the others' keep the size of any pipe. */
static long pipe_budget_used;

static long pipe_budget(void)
{
    long pages = sysctl_long("/proc/sys/fs/pipe-user-pages-soft");
    long page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0 || pages > LONG_MAX / page)
        return 32L << 20;
    return pages * page / 2;
}

/* The largest pipe the system allows an unprivileged process, up to
 * PIPE_SIZE_MAX and within the budget: tried from pipe-max-size down, as
 * a user over pipe-user-pages-soft gets EPERM. Returns the bytes added,
 * counted in the budget. */
static long enlarge_pipe(int fd, int *first_size)
{
    long max = sysctl_long("/proc/sys/fs/pipe-max-size");
    if (max <= 0)
        max = 1L << 20;
    if (max > PIPE_SIZE_MAX)
        max = PIPE_SIZE_MAX;
    int first = fcntl(fd, F_GETPIPE_SZ);
    *first_size = first;
    if (first <= 0)
        return 0;
    long budget = -1;
    for (long size = max; size > first; size /= 2) {
        long extra = size - first;
        if (budget < 0)
            budget = pipe_budget();
        if (__atomic_add_fetch(&pipe_budget_used, extra, __ATOMIC_RELAXED) <= budget &&
            fcntl(fd, F_SETPIPE_SZ, (int)size) >= 0)
            return extra;
        __atomic_sub_fetch(&pipe_budget_used, extra, __ATOMIC_RELAXED);
    }
    return 0;
}

/* Whether a pipe's read end still has a writer (a child the app left
 * holding it): no POLLHUP. */
static int pipe_has_writer(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    int n;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 || !(p.revents & POLLHUP);
}

/* Back to its first size (1), emptied first: what it holds is a
 * writer's that nobody will read, written since the app's end (the kernel
 * refuses to shrink a pipe below what it holds: EBUSY; a few tries, as the
 * writer may fill it again meanwhile). One at its first size or below
 * already (the app shrank it itself) is done. */
static int shrink_pipe(int fd, int first_size)
{
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size < 0 || first_size <= 0)
        return 0;
    if (size <= first_size)
        return 1;
    for (int tries = 0; tries < 4; tries++) {
        char buf[16384];
        /* (as many reads as the pipe's size holds: a bound, however fast
         * the writer) */
        for (int reads = size / (int)sizeof buf + 1; reads > 0; reads--)
            if (sys_read(fd, buf, sizeof buf) <= 0)
                break;
        if (fcntl(fd, F_SETPIPE_SZ, first_size) >= 0)
            return 1;
        if (errno != EBUSY)
            return 0;
    }
    return 0;
}

/* The stream's pipe closed: what it took of the budget is given back. The
 * kernel counts a pipe's pages against the user until its last end is
 * closed, so a pipe a writer still holds is shrunk first, and one that
 * cannot be stays counted (else the budget would let the launcher take
 * the user past pipe-user-pages-soft, its other processes' pipes 8 KiB). */
static void close_pipe(struct output_stream *st)
{
    if (st->fd >= 0 && st->enlarged) {
        if (!pipe_has_writer(st->fd) || shrink_pipe(st->fd, st->first_size))
            __atomic_sub_fetch(&pipe_budget_used, st->enlarged, __ATOMIC_RELAXED);
        st->enlarged = 0;
    }
    sys_close(&st->fd);
}

long output_pipe_budget_used(void)
{
    return __atomic_load_n(&pipe_budget_used, __ATOMIC_RELAXED);
}

int output_open_pipe(struct output *o, int stream, int sink, int *writer)
{
    int p[2];
    int err = sys_pipe(p, 1);
    if (err)
        return err;
    o->s[stream].enlarged = enlarge_pipe(p[0], &o->s[stream].first_size);
    o->s[stream].fd = p[0];
    o->s[stream].sink = sink;
    o->s[stream].writer = p[1];
    *writer = p[1];
    return 0;
}

int output_set_syslog(struct output *o, int stream, const char *socket_path, int level)
{
    size_t len = strlen(socket_path);
    if (len >= sizeof o->syslog_addr.sun_path)
        return ENAMETOOLONG;
    if (o->syslog_fd < 0) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return errno;
        o->syslog_fd = fd;
    }
    o->syslog_addr.sun_family = AF_UNIX;
    memcpy(o->syslog_addr.sun_path, socket_path, len + 1);
    o->syslog_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    o->s[stream].level = level;
    return 0;
}

/* The tag is PROGRAM[PID] (PROGRAM alone for pid 0: not known yet): a
 * syslog daemon reads the program name up to a blank, '[' or ':', so
 * each of those (and any byte that is not printable ASCII) in the
 * program's name is written '_'. */
void output_set_tag(struct output *o, const char *program, long pid)
{
    char name[OUTPUT_NAME_MAX];
    size_t i = 0;
    for (; i < sizeof name - 1 && program[i]; i++) {
        unsigned char c = (unsigned char)program[i];
        name[i] = c > ' ' && c < 127 && c != '[' && c != ']' && c != ':' ? (char)c : '_';
    }
    name[i] = '\0';
    int n = pid > 0 ? snprintf(o->tag, sizeof o->tag, "%s[%ld]: ", name, pid)
                    : snprintf(o->tag, sizeof o->tag, "%s: ", name);
    o->tag_len = n < 0 ? 0 : (size_t)n >= sizeof o->tag ? sizeof o->tag - 1 : (size_t)n;
}

/* ---- files ---- */

static int open_in_dir(int dir_fd, const char *name, int flags)
{
    int fd;
    do
        fd = openat(dir_fd, name, flags | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0640);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

void output_set_app_uid(struct output *o, uid_t uid)
{
    o->app_uid = uid;
}

static const char not_one_link[] = "not a regular file of one link";
static const char symlink_why[] = "a symbolic link (never followed)";
static const char foreign[] = "another user's file in a sticky directory others can write (as /tmp)";

/* The file to append to: a regular file with one link, never through a
 * symbolic link, not another user's in a sticky directory (see the top),
 * and opened without blocking (a FIFO planted there would hold the
 * launcher in open until a reader came; it is refused here). 0, or an
 * errno value and, when a rule refused, *why. */
static int open_log(struct output_file *f, int create_flags, uid_t app_uid, const char **why)
{
    *why = NULL;
    /* read and write: a rotation moves the unfinished line at the end to
     * the next file (file_append). A file the launcher may only write to
     * is written all the same (its lines then split where they come), and
     * what is no regular file is opened write-only, as it always was, for
     * the answer below (a FIFO with no reader: ENXIO, as O_RDWR would not
     * say) */
    int readable = 1;
    struct stat st;
    int fd = open_in_dir(f->dir_fd, f->name, create_flags | O_RDWR);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        sys_close(&fd);
        fd = -EACCES;
    }
    if (fd == -EACCES) {
        readable = 0;
        fd = open_in_dir(f->dir_fd, f->name, create_flags | O_WRONLY);
    }
    if (fd < 0) {
        /* (said in the words of the rules: a symbolic link is ELOOP to
         * open, a FIFO with no reader ENXIO, as is a socket's file) */
        struct stat lst;
        if ((fd == -ELOOP || fd == -ENXIO) && fstatat(f->dir_fd, f->name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISREG(lst.st_mode))
            *why = S_ISLNK(lst.st_mode) ? symlink_why : not_one_link;
        return -fd;
    }
    if (fstat(fd, &st) != 0) {
        int err = errno;
        sys_close(&fd);
        return err;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        sys_close(&fd);
        *why = not_one_link;
        return EPERM;
    }
    int err = sys_foreign_in_sticky_dir(f->dir_fd, &st, app_uid);
    if (err) {
        sys_close(&fd);
        *why = err == EPERM ? foreign : NULL;
        return err;
    }
    f->fd = fd;
    f->readable = readable;
    f->size = st.st_size;
    f->open_line = 0;
    if (create_flags & O_EXCL) {
        f->made_dev = st.st_dev;
        f->made_ino = st.st_ino;
    }
    return 0;
}

/* The highest i <= keep with a NAME.i (of any kind: a rotation renames
 * onto it), looked for once, as the file is opened: 0 when none is. */
static int rotated_top(const struct output_file *f)
{
    char name[OUTPUT_NAME_MAX + 16];
    struct stat st;
    for (int i = f->keep; i >= 1; i--) {
        snprintf(name, sizeof name, "%s.%d", f->name, i);
        if (fstatat(f->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
            return i;
    }
    return 0;
}

/* A write past the launcher's file size limit (RLIMIT_FSIZE) raises
 * SIGXFSZ, whose default ends the launcher, every app it watches with it:
 * at its default, and not blocked (where it is, its reader acts on it, as
 * the command does), it is ignored from the first file on, so that the
 * write fails (EFBIG) and is counted as a full disk's. The apps never
 * inherit it: a spawned child resets every signal. */
static void ignore_xfsz(void)
{
    sigset_t mask;
    struct sigaction now;
    if (pthread_sigmask(SIG_BLOCK, NULL, &mask) != 0 || sigismember(&mask, SIGXFSZ) == 1)
        return;
    if (sigaction(SIGXFSZ, NULL, &now) != 0 || (now.sa_flags & SA_SIGINFO) || now.sa_handler != SIG_DFL)
        return;
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    (void)sigaction(SIGXFSZ, &ign, NULL);
}

int output_set_file(struct output *o, int stream, const char *path, long long max_bytes, int keep,
                    char *why, size_t why_len)
{
    struct output_file *f = &o->files[stream];
    if (f->fd >= 0 || f->dir_fd >= 0) {
        /* (set again, the first file's descriptors would be lost) */
        snprintf(why, why_len, "the stream has a file already");
        return EBUSY;
    }
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    /* the rotated names (NAME.1 .. NAME.keep) must be names too: only
     * they need the room of their suffix */
    size_t len = strlen(name), suffix = 0;
    if (max_bytes > 0 && keep > 0) {
        suffix = 2; /* ".K" */
        for (int k = keep; k >= 10; k /= 10)
            suffix++;
    }
    if (*name == '\0') {
        snprintf(why, why_len, "bad file name");
        return EINVAL;
    }
    if (len >= sizeof f->name || len > NAME_MAX || len + suffix > NAME_MAX) {
        snprintf(why, why_len, "file name too long (%zu bytes%s; at most %d)", len + suffix,
                 suffix ? " with the rotated names' suffix" : "", NAME_MAX);
        return ENAMETOOLONG;
    }
    char dir[PATH_MAX];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t dlen = (size_t)(slash - path);
        if (dlen >= sizeof dir) {
            snprintf(why, why_len, "path too long");
            return ENAMETOOLONG;
        }
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    int dfd;
    const char *refused;
    int err = sys_open_dir_safely(dir, strlen(dir), &dfd, &refused);
    if (err) {
        snprintf(why, why_len, "cannot open the directory %s: %s", dir, refused ? refused : strerror(err));
        return err;
    }
    f->dir_fd = dfd;
    strcpy(f->name, name);
    f->max_bytes = max_bytes;
    f->keep = keep;
    f->top = rotated_top(f);
    f->app_uid = o->app_uid;
    err = open_log(f, O_CREAT, o->app_uid, &refused);
    if (err) {
        if (refused)
            snprintf(why, why_len, "cannot append to %s: %s", path, refused);
        else
            snprintf(why, why_len, "cannot open %s: %s", path, strerror(err));
        sys_close(&f->dir_fd);
        return err;
    }
    o->s[stream].file = f;
    ignore_xfsz();
    return 0;
}

int output_same_file(const struct output *o)
{
    int a = o->files[OUTPUT_STDOUT].fd, b = o->files[OUTPUT_STDERR].fd;
    struct stat sa, sb;
    if (a < 0 || b < 0 || fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Copy len bytes at offset from in `in` to `out`: at offset to, or, when
 * to < 0, at its end (write on an O_APPEND descriptor). Forward, a piece
 * at a time: a move towards the start of the same file is safe. 0 or an
 * errno value. */
static int copy_range(int in, long long from, int out, long long to, long long len)
{
    char buf[8192];
    while (len > 0) {
        size_t want = len < (long long)sizeof buf ? (size_t)len : sizeof buf;
        ssize_t n;
        do
            n = pread(in, buf, want, (off_t)from);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO; /* cut meanwhile, by someone else */
        if (to < 0) {
            if (sys_write_all(out, buf, (size_t)n) < 0)
                return errno;
        } else {
            for (ssize_t done = 0; done < n;) {
                ssize_t w = pwrite(out, buf + done, (size_t)(n - done), (off_t)(to + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0)
                    return errno;
                done += w;
            }
            to += n;
        }
        from += n;
        len -= n;
    }
    return 0;
}

/* The last `carry` bytes of the file (an unfinished line) moved to its
 * start, the rest cut off (keep 0). pwrite on an O_APPEND descriptor
 * appends (Linux): O_APPEND is off meanwhile. */
static int move_to_start(int fd, long long from, long long carry)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return errno;
    if (fcntl(fd, F_SETFL, flags & ~O_APPEND) != 0)
        return errno;
    int err = copy_range(fd, from, fd, 0, carry);
    if (!err && ftruncate(fd, (off_t)carry) != 0)
        err = errno;
    if (fcntl(fd, F_SETFL, flags) != 0 && !err)
        err = errno;
    return err;
}

/* A rotation failed: what was written of the unfinished line leaves the
 * file it was carried from (at offset from), so that the files hold whole
 * lines; how many bytes that took back (the caller counts them dropped). */
static long long take_back(int fd, long long from, long long carry)
{
    return carry > 0 && fd >= 0 && ftruncate(fd, (off_t)from) == 0 ? carry : 0;
}

/* A rotation's rename (and removal) of names in f's directory: refused
 * (EPERM) where either is another user's in a sticky directory others
 * may write (as /tmp): that user's file, which the app's user may not
 * move nor remove, is not root's to move or remove for it. -1 with errno
 * set, as renameat and unlinkat. */
static int rotation_refuses(const struct output_file *f, const char *name)
{
    int err = sys_foreign_name_in_sticky_dir(f->dir_fd, name, f->app_uid);
    errno = err;
    return err != 0;
}

static int rotate_rename(const struct output_file *f, const char *from, const char *to)
{
    if (rotation_refuses(f, from) || rotation_refuses(f, to))
        return -1;
    return renameat(f->dir_fd, from, f->dir_fd, to);
}

static int rotate_unlink(const struct output_file *f, const char *name)
{
    return rotation_refuses(f, name) ? -1 : unlinkat(f->dir_fd, name, 0);
}

/* NAME -> NAME.1 -> ... -> NAME.keep (the oldest dropped), a fresh NAME.
 * keep 0: the file is emptied. carry: the bytes of an unfinished line at
 * the end of the file, moved to the fresh one (the old one ends where
 * that line began). 0 or an errno value (the caller closes f->fd then:
 * the output is dropped until a fresh file can be made, file_again;
 * *lost: the bytes of the unfinished line taken back out of the files). */
static int rotate(struct output_file *f, long long carry, long long *lost)
{
    *lost = 0;
    /* the file as this reader wrote it, or no move: bytes someone else
     * appended would be where the line is taken to be */
    struct stat st;
    if (carry > 0 && (fstat(f->fd, &st) != 0 || (long long)st.st_size != f->size))
        carry = 0;
    long long from = f->size - carry;
    if (f->keep == 0) {
        if (carry > 0) {
            int err = move_to_start(f->fd, from, carry);
            if (err)
                return err;
        } else if (ftruncate(f->fd, 0) != 0) {
            return errno;
        }
        f->size = f->open_line = carry;
        return 0;
    }
    char from_name[OUTPUT_NAME_MAX + 16], to_name[OUTPUT_NAME_MAX + 16];
    for (int i = f->top < f->keep ? f->top : f->keep - 1; i >= 1; i--) {
        snprintf(from_name, sizeof from_name, "%s.%d", f->name, i);
        snprintf(to_name, sizeof to_name, "%s.%d", f->name, i + 1);
        if (rotate_rename(f, from_name, to_name) != 0 && errno != ENOENT) {
            int err = errno;
            *lost = take_back(f->fd, from, carry);
            return err;
        }
    }
    if (f->top < f->keep)
        f->top++; /* NAME.top moved up one; NAME.1 is made */
    snprintf(to_name, sizeof to_name, "%s.%d", f->name, 1);
    int old = f->fd;
    f->fd = -1;
    if (rotate_rename(f, f->name, to_name) != 0 && errno != ENOENT) {
        int err = errno;
        *lost = take_back(old, from, carry);
        sys_close(&old);
        return err;
    }
    const char *why; /* a file made here, O_EXCL: the launcher's */
    int err = open_log(f, O_CREAT | O_EXCL, (uid_t)-1, &why);
    if (!err && carry > 0) {
        /* the line goes on in the fresh file: what was written of it
         * leaves the old one */
        err = copy_range(old, from, f->fd, -1, carry);
        if (!err && ftruncate(old, (off_t)from) != 0)
            err = errno;
        if (!err)
            f->size = f->open_line = carry;
        else if (ftruncate(f->fd, 0) != 0) /* (a part copied) */
            carry = 0;
    }
    if (err)
        *lost = take_back(old, from, carry);
    sys_close(&old);
    return err;
}

/* Where the next write of buf (len bytes) goes in a file of `size` bytes
 * whose last `open_line` are an unfinished line (readable: it can be read
 * back): the bytes taken; *full when the file is rotated after them, and
 * *carry, the bytes of its unfinished line that move to the next file
 * then. Rotation comes where a write would take the file past max_bytes:
 * at the last line end that fits. A line that does not fit in what is
 * left of the file goes whole to the next one (what was written of it
 * moves there); one longer than the whole file is cut at max_bytes. */
static size_t next_cut(const struct output_file *f, long long size, long long open_line, int readable,
                       const char *buf, size_t len, int *full, long long *carry)
{
    *full = 0;
    *carry = 0;
    if (f->max_bytes <= 0 || size + (long long)len <= f->max_bytes)
        return len;
    size_t room = size < f->max_bytes ? (size_t)(f->max_bytes - size) : 0;
    const char *nl = room > 0 ? memrchr(buf, '\n', room) : NULL;
    *full = 1;
    if (nl)
        return (size_t)(nl - buf) + 1;
    if (size > open_line) {
        /* the line under way ends past max_bytes: the file ends where it
         * began, and it goes on in the next file (a file the launcher
         * cannot read back keeps what it has of it, and so does one whose
         * part is longer than a chunk: the copy is the app's to size, in
         * one wake-up) */
        *carry = readable && open_line <= OUTPUT_CHUNK ? open_line : 0;
        return 0;
    }
    return room; /* a line longer than a whole file */
}

/* The unfinished line at a file's end once n bytes of buf are written */
static long long open_line_after(long long open_line, const char *buf, size_t n)
{
    const char *last = n > 0 ? memrchr(buf, '\n', n) : NULL;
    return last ? (long long)(buf + n - last - 1) : open_line + (long long)n;
}

/* The rest of a read given up (len bytes, ending a line or not) for err:
 * counted lost, with the line under way at the file's end taken back out
 * (when the file is as this reader wrote it), so that the file holds whole
 * lines, and what comes up to the next '\n' dropped too. */
static void file_give_up(struct output *o, struct output_file *f, size_t len, int ends_line, int err)
{
    long long lost = (long long)len, line = f->open_line;
    struct stat st;
    if (line > 0 && fstat(f->fd, &st) == 0 && (long long)st.st_size == f->size &&
        ftruncate(f->fd, (off_t)(f->size - line)) == 0) {
        f->size -= line;
        f->open_line = 0;
        lost += line;
    }
    f->skip = !ends_line;
    o->file_err = err;
    o->file_dropped += lost;
}

/* Write take bytes of buf at the file's end; what went in counts, even
 * when the rest did not (a full disk): the file's size is what rotation is
 * measured by. On an error, the line cut short is taken back out (when the
 * file is as this reader wrote it), so that the file holds whole lines,
 * and the error is the output's, with `rest` (the bytes after these that
 * will not be written) and all that did not go in counted lost: 0, or the
 * errno value. */
static int file_write(struct output *o, struct output_file *f, const char *buf, size_t take, size_t rest)
{
    size_t done = 0;
    int err = 0;
    while (done < take) {
        ssize_t n = write(f->fd, buf + done, take - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            break;
        }
        done += (size_t)n;
    }
    f->size += (long long)done;
    f->open_line = open_line_after(f->open_line, buf, done);
    if (!err)
        return 0;
    /* (rest ends where buf's chunk does) */
    file_give_up(o, f, take - done + rest, buf[take + rest - 1] == '\n', err);
    return err;
}

/* A rotation (or a batch of them) failed: the output is dropped until
 * a fresh file can be made (file_append). */
static void file_failed(struct output *o, struct output_file *f, int err, long long lost)
{
    o->file_err = err;
    o->file_dropped += lost;
    sys_close(&f->fd);
    /* (the line under way went with what was lost: the file made again
     * is one as found, with no line of this app's to end) */
    f->open_line = 0;
}

/* How many rotations writing buf (len bytes) makes (see next_cut),
 * and what goes into the file there is: *take0 bytes of buf, then *carry0
 * bytes at its end move to the next file. */
static long long count_rotations(const struct output_file *f, int same_size, const char *buf, size_t len,
                                 size_t *take0, long long *carry0)
{
    long long size = f->size, line = f->open_line, rotations = 0;
    int readable = f->readable, full;
    size_t pos = 0;
    *take0 = 0;
    *carry0 = 0;
    while (pos < len) {
        long long carry;
        size_t take = next_cut(f, size, line, readable, buf + pos, len - pos, &full, &carry);
        if (rotations == 0) {
            /* (a file someone else appended to: no move, as in rotate) */
            *take0 = take;
            *carry0 = carry = same_size ? carry : 0;
        }
        pos += take;
        if (!full)
            break;
        rotations++;
        size = line = carry;
        readable = 1;
    }
    return rotations;
}

/* Where in buf file j of a batch begins (see rotate_many). */
static size_t file_start(const struct output_file *f, const char *buf, size_t len, size_t take0, long long carry0,
                         long long j)
{
    long long size = carry0, line = carry0;
    size_t pos = take0;
    for (long long k = 1; k < j; k++) {
        int full;
        long long carry;
        pos += next_cut(f, size, line, 1, buf + pos, len - pos, &full, &carry);
        size = line = carry;
    }
    return pos;
}

/* Many rotations in one write (a flood into a small max_bytes, the app's
 * last output read at its end): done as one, O(keep + files made) instead
 * of O(keep x rotations). The file there is (file 0) and the files the
 * write fills (1 .. n, the last one the new NAME) end as n rotations one
 * at a time would leave them: file k is NAME.(n-k), NAME.i is NAME.(i+n),
 * and what would be rotated off the end is never written: only the last
 * keep of the files it fills are. take0, carry0: as count_rotations. */
static void rotate_many(struct output *o, struct output_file *f, const char *buf, size_t len, long long n,
                        size_t take0, long long carry0)
{
    char from_name[OUTPUT_NAME_MAX + 16], to_name[OUTPUT_NAME_MAX + 16];
    long long first = n > f->keep ? n - f->keep : 1; /* the first file kept */
    if (take0 > 0 && file_write(o, f, buf, take0, len - take0))
        return;
    /* (every NAME.i named below has i <= keep) */
    long long from = f->size - carry0; /* where the moved line begins */
    /* the files there are move up n (the top ones off the end: replaced
     * below by what this write makes). A NAME.i missing (someone removed
     * it) leaves NAME.(i+n) missing, as the gap moves up one at a time
     * with each rotation, but for NAME.keep, which only a file moved onto
     * it replaces: it takes the newest of NAME.(keep-n+1) .. NAME.(keep-1)
     * there is (the last to arrive one at a time), or stays */
    for (long long i = f->top < f->keep - n ? f->top : f->keep - n; i >= 1; i--) {
        snprintf(from_name, sizeof from_name, "%s.%d", f->name, (int)i);
        snprintf(to_name, sizeof to_name, "%s.%d", f->name, (int)(i + n));
        int moved = rotate_rename(f, from_name, to_name) == 0;
        for (long long j = i + 1; !moved && errno == ENOENT && i + n == f->keep && j < f->keep; j++) {
            snprintf(from_name, sizeof from_name, "%s.%d", f->name, (int)j);
            moved = rotate_rename(f, from_name, to_name) == 0;
        }
        if (!moved && errno == ENOENT && (i + n == f->keep || rotate_unlink(f, to_name) == 0 || errno == ENOENT))
            continue;
        if (!moved) {
            int err = errno;
            file_failed(o, f, err, take_back(f->fd, from, carry0) + (long long)(len - take0));
            return;
        }
    }
    f->top = f->top + n < f->keep ? (int)(f->top + n) : f->keep;
    /* NAME becomes NAME.n, or, rotated off the end, NAME.keep, which the
     * first file kept then replaces */
    snprintf(to_name, sizeof to_name, "%s.%d", f->name, n <= f->keep ? (int)n : f->keep);
    int old = f->fd;
    f->fd = -1;
    if (rotate_rename(f, f->name, to_name) != 0 && errno != ENOENT) {
        int err = errno;
        long long lost = take_back(old, from, carry0) + (long long)(len - take0);
        sys_close(&old);
        file_failed(o, f, err, lost);
        return;
    }
    /* each file in turn: its bytes found again as count_rotations found
     * them, written when it is kept */
    long long size = carry0, line = carry0, k = 1;
    size_t pos = take0, first_pos = 0;
    int err = 0, failed = 1;
    for (;;) {
        int full;
        long long carry;
        size_t take = next_cut(f, size, line, 1, buf + pos, len - pos, &full, &carry);
        if (k == first)
            first_pos = pos;
        if (k >= first) {
            const char *why; /* a file made here, O_EXCL: the launcher's */
            if ((err = open_log(f, O_CREAT | O_EXCL, (uid_t)-1, &why))) {
                file_failed(o, f, err, (long long)(len - pos) + (k == 1 ? take_back(old, from, carry0) : 0));
                break;
            }
            if (k == 1 && carry0 > 0) {
                /* the line goes on in the fresh file: what was written of
                 * it leaves the old one (kept or not) */
                err = copy_range(old, from, f->fd, -1, carry0);
                if (!err && ftruncate(old, (off_t)from) != 0)
                    err = errno;
                if (err) {
                    long long lost = ftruncate(f->fd, 0) == 0 ? take_back(old, from, carry0) : 0;
                    file_failed(o, f, err, lost + (long long)(len - pos));
                    break;
                }
                f->size = f->open_line = carry0;
            }
            if (take > 0 && file_write(o, f, buf + pos, take, len - pos - take))
                break; /* (the file stays NAME, written to from here on) */
            if (full) {
                snprintf(to_name, sizeof to_name, "%s.%d", f->name, (int)(n - k));
                if (rotate_rename(f, f->name, to_name) != 0 && errno != ENOENT) {
                    err = errno;
                    file_failed(o, f, err, (long long)(len - pos - take));
                    break;
                }
                sys_close(&f->fd);
            }
        }
        pos += take;
        if (!full) {
            failed = 0;
            break;
        }
        k++;
        size = line = carry;
    }
    /* a batch that failed at file k: the files before the first kept
     * that one at a time would hold (the keep before k) were not written */
    long long held = k - f->keep > 1 ? k - f->keep : 1;
    if (failed && held < first)
        o->file_dropped += (long long)(first_pos - file_start(f, buf, len, take0, carry0, held));
    sys_close(&old);
}

/* Can a batch (rotate_many) stand for n rotations one at a time: is each
 * name they would move or replace, NAME.1 .. NAME.(top + n) (keep at
 * most), one a rename moves and replaces? A name one would fail at
 * (another user's in a sticky directory, a directory) fails a rotation
 * one at a time there, before anything after it: the batch, which moves
 * NAME.i by n at once and writes only the last files, would destroy and
 * not count what that failure leaves. 0, or the errno value of the first
 * such name (the write is then rotated one at a time, ROTATIONS_BLOCKED
 * of them at most: file_append). A symbolic link, a FIFO or a socket is moved and
 * replaced as a regular file is: renameat never follows a name, and
 * nothing is opened at NAME.i (only NAME, made O_EXCL); refusing them
 * sent a flood one rotation at a time, up to keep renames each, past a
 * link the app's user planted. */
static int batch_blocked(const struct output_file *f, long long n)
{
    char name[OUTPUT_NAME_MAX + 16];
    long long last = f->top + n < f->keep ? f->top + n : f->keep;
    for (int i = 1; i <= last; i++) {
        struct stat st;
        snprintf(name, sizeof name, "%s.%d", f->name, i);
        if (fstatat(f->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue;
            return errno;
        }
        if (S_ISDIR(st.st_mode))
            return EISDIR;
        if (rotation_refuses(f, name))
            return errno;
    }
    return 0;
}

/* The same with keep 0, where a rotation empties the file: after n of
 * them it holds what the last one left, the bytes after the n-1 files
 * before it (no line is moved into it: only the first rotation moves
 * one). */
static void empty_many(struct output *o, struct output_file *f, const char *buf, size_t len, long long n,
                       size_t take0, long long carry0)
{
    size_t pos = file_start(f, buf, len, take0, carry0, n);
    if (ftruncate(f->fd, 0) != 0) {
        int err = errno;
        file_failed(o, f, err, (long long)len);
        return;
    }
    f->size = f->open_line = 0;
    if (pos < len)
        (void)file_write(o, f, buf + pos, len - pos, 0);
}

/* No file since a rotation failed: made afresh, as a rotation makes it,
 * once it can be (descriptors back): O_EXCL, so that a file someone made
 * there meanwhile, or the one a failed rename left, is not written to;
 * but the one that rotation made is, when it is still there, empty (its
 * carried line could not be copied into it: a full disk). */
static void file_again(struct output_file *f)
{
    const char *why;
    int err = open_log(f, O_CREAT | O_EXCL, (uid_t)-1, &why);
    if (err == EEXIST && f->made_ino != 0 && open_log(f, 0, (uid_t)-1, &why) == 0) {
        struct stat st;
        if (fstat(f->fd, &st) != 0 || st.st_dev != f->made_dev || st.st_ino != f->made_ino || st.st_size != 0) {
            sys_close(&f->fd);
            return;
        }
        err = 0;
    }
    if (!err)
        f->size = f->open_line = 0;
}

/* The rotations one at a time a read makes where a batch cannot stand
 * for them (batch_blocked): each renames up to keep names, and a read
 * into a small max_bytes needs thousands of them (64 KiB into 8 bytes:
 * 8,192), which a name that stops them only after keep of them (a
 * directory at NAME.keep) or never (one the batch need not refuse) made
 * seconds of renames, the loop held meanwhile. Past them the rest of the
 * read is lost, as past a rotation that failed: a read costs at most keep
 * renames, however many rotations it needs. */
#define ROTATIONS_BLOCKED 1

/* Append len bytes, rotating first where they would take the file past
 * max_bytes (next_cut). */
static void file_append(struct output *o, struct output_file *f, const char *buf, size_t len)
{
    if (len == 0)
        return;
    /* the line the chunk ends in: a failure below (a rotation's, with no
     * file left to write to) drops the rest of it, and so its end comes
     * first in the next chunk */
    int ends_line = buf[len - 1] == '\n';
    if (f->fd < 0 && f->dir_fd >= 0)
        file_again(f);
    if (f->skip) {
        const char *nl = memchr(buf, '\n', len);
        size_t n = nl ? (size_t)(nl - buf) + 1 : len;
        o->file_dropped += (long long)n;
        f->skip = !nl;
        buf += n;
        len -= n;
    }
    int blocked = 0, rotations = 0;
    if (f->fd >= 0 && f->max_bytes > 0 && f->size + (long long)len > f->max_bytes) {
        struct stat st;
        int same = fstat(f->fd, &st) == 0 && (long long)st.st_size == f->size;
        size_t take0;
        long long carry0, n = count_rotations(f, same, buf, len, &take0, &carry0);
        if (n > 1 && (f->keep == 0 || !(blocked = batch_blocked(f, n)))) {
            if (f->keep > 0)
                rotate_many(o, f, buf, len, n, take0, carry0);
            else
                empty_many(o, f, buf, len, n, take0, carry0);
            if (f->fd < 0)
                f->skip = !ends_line;
            return;
        }
    }
    while (len > 0) {
        if (f->fd < 0) {
            o->file_dropped += (long long)len;
            f->skip = !ends_line;
            return;
        }
        int full;
        long long carry;
        size_t take = next_cut(f, f->size, f->open_line, f->readable, buf, len, &full, &carry);
        if (take > 0) {
            if (file_write(o, f, buf, take, len - take))
                return;
            buf += take;
            len -= take;
        }
        if (full) {
            if (blocked && rotations++ == ROTATIONS_BLOCKED) {
                file_give_up(o, f, len, ends_line, blocked);
                return;
            }
            long long lost;
            int err = rotate(f, carry, &lost);
            if (err)
                file_failed(o, f, err, lost);
        }
    }
}

/* ---- syslog ---- */

static void syslog_send(struct output *o, int level, const char *line, size_t len)
{
    char msg[16 + sizeof o->tag + OUTPUT_LINE_MAX];
    int n = snprintf(msg, 16, "<%d>", 8 + level); /* facility user */
    memcpy(msg + n, o->tag, o->tag_len);
    memcpy(msg + n + o->tag_len, line, len);
    ssize_t r;
    do
        r = sendto(o->syslog_fd, msg, (size_t)n + o->tag_len + len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&o->syslog_addr, o->syslog_len);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        o->syslog_dropped++;
        o->syslog_err = errno;
    }
}

/* ---- the ring ---- */

static void ring_put(struct output *o, size_t at, const void *src, size_t len)
{
    at %= o->cap;
    size_t first = o->cap - at < len ? o->cap - at : len;
    memcpy(o->ring + at, src, first);
    memcpy(o->ring, (const unsigned char *)src + first, len - first);
}

static void ring_get(const struct output *o, size_t at, void *dst, size_t len)
{
    at %= o->cap;
    size_t first = o->cap - at < len ? o->cap - at : len;
    memcpy(dst, o->ring + at, first);
    memcpy((unsigned char *)dst + first, o->ring, len - first);
}

static unsigned record_mark(const struct output *o, size_t at)
{
    unsigned char m[RECORD_MARK];
    ring_get(o, at, m, sizeof m);
    return (unsigned)m[0] | (unsigned)m[1] << 8;
}

#define MARK_LENGTH(mark) ((size_t)((mark) & 0x7fffu))
#define MARK_STREAM(mark) ((int)((mark) >> 15))

static void ring_add(struct output *o, int stream, const char *line, size_t len)
{
    if (o->cap <= RECORD_OVERHEAD)
        return; /* output_keep 0: nothing is kept */
    /* a line longer than the whole ring is kept cut to fit: the newest
     * line is never left out for older ones */
    if (RECORD_OVERHEAD + len > o->cap)
        len = o->cap - RECORD_OVERHEAD;
    size_t need = RECORD_OVERHEAD + len;
    while (o->used + need > o->cap) {
        size_t drop = RECORD_OVERHEAD + MARK_LENGTH(record_mark(o, o->head));
        o->head = (o->head + drop) % o->cap;
        o->used -= drop;
        o->nlines--;
    }
    unsigned mark = (unsigned)len | (unsigned)(stream ? 1 : 0) << 15;
    unsigned char m[RECORD_MARK] = { (unsigned char)(mark & 0xff), (unsigned char)(mark >> 8) };
    size_t at = o->head + o->used;
    ring_put(o, at, m, sizeof m);
    ring_put(o, at + RECORD_MARK, line, len);
    ring_put(o, at + RECORD_MARK + len, m, sizeof m);
    o->used += need;
    o->nlines++;
    o->iter_valid = 0; /* the ring moved */
}

size_t output_lines(const struct output *o)
{
    return o->nlines;
}

/* The i-th line kept (0: the oldest), reached from the nearest of the
 * oldest, the newest and the last one asked for: tail(n) takes n steps
 * back from the newest, and a walk on from there one step a line. */
int output_line_at(struct output *o, size_t i, const char **line, size_t *len, int *stream)
{
    if (i >= o->nlines)
        return 0;
    /* (positions are offsets from the ring's start plus cap, so that a
     * step back never goes below 0: taken modulo cap as they are read) */
    size_t index = 0, pos = o->head + o->cap;
    if (o->nlines - i < i) {
        index = o->nlines;
        pos = o->head + o->used + o->cap;
    }
    if (o->iter_valid) {
        size_t from = o->iter_index > i ? o->iter_index - i : i - o->iter_index;
        size_t best = index > i ? index - i : i - index;
        if (from < best) {
            index = o->iter_index;
            pos = o->iter_pos;
        }
    }
    while (index < i) {
        pos += RECORD_OVERHEAD + MARK_LENGTH(record_mark(o, pos));
        index++;
    }
    while (index > i) {
        pos -= RECORD_OVERHEAD + MARK_LENGTH(record_mark(o, pos - RECORD_MARK));
        index--;
    }
    pos = pos % o->cap + o->cap;
    o->iter_index = index;
    o->iter_pos = pos;
    o->iter_valid = 1;
    unsigned mark = record_mark(o, pos);
    *len = MARK_LENGTH(mark);
    *stream = MARK_STREAM(mark);
    ring_get(o, pos + RECORD_MARK, o->scratch, *len);
    *line = o->scratch;
    return 1;
}

/* ---- reading ---- */

int output_fd(const struct output *o, int stream)
{
    return o->s[stream].fd;
}

void output_bound_end(struct output *o)
{
    for (int i = 0; i < 2; i++) {
        int n;
        if (o->s[i].fd >= 0 && o->s[i].end_left < 0)
            o->s[i].end_left = ioctl(o->s[i].fd, FIONREAD, &n) == 0 && n >= 0 ? n : -1;
    }
}

int output_read(struct output *o, int stream)
{
    struct output_stream *st = &o->s[stream];
    if (st->fd < 0)
        return OUTPUT_EOF;
    if (st->end_left == 0)
        return OUTPUT_AGAIN; /* the rest is a child's, written since */
    /* (a read's rotations, however many, cost what one costs and a
     * file made each, for the files kept at most: rotate_many) */
    size_t want = sizeof o->chunk;
    if (st->end_left > 0 && st->end_left < (long long)want)
        want = (size_t)st->end_left;
    ssize_t n = sys_read(st->fd, o->chunk, want);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? OUTPUT_AGAIN : -errno;
    if (st->end_left > 0)
        st->end_left -= n;
    o->cstream = stream;
    o->cpos = 0;
    if (n == 0) {
        output_finish(o, stream);
        return OUTPUT_EOF;
    }
    o->clen = (size_t)n;
    if (st->file)
        file_append(o, st->file, o->chunk, (size_t)n);
    return (int)n;
}

/* A whole line: to the ring, and where its stream's lines go. 1: the
 * caller gets it. */
static int deliver(struct output *o, int stream, const char *line, size_t len)
{
    struct output_stream *st = &o->s[stream];
    ring_add(o, stream, line, len);
    if (st->sink == OUTPUT_SYSLOG && o->syslog_fd >= 0)
        syslog_send(o, st->level, line, len);
    return st->sink == OUTPUT_CAPTURE;
}

int output_next_line(struct output *o, const char **line, size_t *len, int *stream)
{
    int id = o->cstream;
    struct output_stream *st = &o->s[id];
    *stream = id;
    while (o->cpos < o->clen) {
        const char *p = o->chunk + o->cpos;
        if (st->split) {
            /* the line before was split at the limit: a newline just
             * after it ends it, whatever chunk it comes in */
            st->split = 0;
            if (*p == '\n') {
                o->cpos++;
                continue;
            }
        }
        size_t avail = o->clen - o->cpos, room = OUTPUT_LINE_MAX - st->plen;
        size_t scan = avail < room ? avail : room;
        const char *nl = memchr(p, '\n', scan);
        size_t seg, used;
        if (nl) {
            seg = (size_t)(nl - p);
            used = seg + 1;
        } else if (avail >= room) {
            /* a line at the limit: split (a newline just after it ends
             * it: see st->split) */
            seg = used = room;
            st->split = 1;
        } else {
            memcpy(st->partial + st->plen, p, avail);
            st->plen += avail;
            o->cpos = o->clen;
            break;
        }
        o->cpos += used;
        const char *whole = p;
        size_t whole_len = seg;
        if (st->plen > 0) {
            memcpy(st->partial + st->plen, p, seg);
            whole = st->partial;
            whole_len = st->plen + seg;
            st->plen = 0;
        }
        *line = deliver(o, id, whole, whole_len) ? whole : NULL;
        *len = whole_len;
        return 1;
    }
    if (st->flush) {
        st->flush = 0;
        size_t plen = st->plen;
        st->plen = 0;
        *line = deliver(o, id, st->partial, plen) ? st->partial : NULL;
        *len = plen;
        return 1;
    }
    return 0;
}

void output_finish(struct output *o, int stream)
{
    struct output_stream *st = &o->s[stream];
    o->cstream = stream;
    o->cpos = o->clen = 0;
    st->split = 0;
    st->flush = st->plen > 0;
    /* its last line, without its '\n', is a line: in its file too (the
     * next app's first line, a restart's, would join it) */
    if (st->file && st->file->fd >= 0 && st->file->open_line > 0)
        file_append(o, st->file, "\n", 1);
}

void output_close_writers(struct output *o)
{
    sys_close(&o->s[0].writer);
    sys_close(&o->s[1].writer);
}

void output_close_stream(struct output *o, int stream)
{
    close_pipe(&o->s[stream]);
}

void output_close(struct output *o)
{
    /* the lines of the chunk read and not handed over yet (a close from
     * on_output, between two of them): to the ring (and syslog), not
     * lost; nobody is handed them now */
    const char *line;
    size_t len;
    int stream;
    while (o->cpos < o->clen && output_next_line(o, &line, &len, &stream)) {
    }
    for (int i = 0; i < 2; i++) {
        close_pipe(&o->s[i]);
        sys_close(&o->s[i].writer);
        sys_close(&o->files[i].fd);
        sys_close(&o->files[i].dir_fd);
        o->s[i].file = NULL;
    }
    sys_close(&o->syslog_fd);
    o->clen = o->cpos = 0;
}

long long output_syslog_dropped(const struct output *o, int *err)
{
    *err = o->syslog_err;
    return o->syslog_dropped;
}

long long output_file_dropped(const struct output *o, int *err)
{
    *err = o->file_err;
    return o->file_dropped;
}
