/*
 * output.h: an app's stdout and stderr, read by the launcher.
 *
 * One reader per app: a pipe per stream (stderr may share stdout's), lines
 * split at '\n' or at OUTPUT_LINE_MAX bytes, a ring of the last lines
 * (at most `keep` bytes of them), and where each stream's lines go:
 *
 *   OUTPUT_CAPTURE  handed to the caller (output_next_line)
 *   OUTPUT_SYSLOG   one datagram per line to an AF_UNIX socket (/dev/log),
 *                   sent by the reader itself: no openlog/syslog state
 *   OUTPUT_FILE     appended to a file, rotated to NAME.1 .. NAME.K
 *
 * Memory is the reader's own allocation (output_size), whatever the app
 * writes: a read takes at most OUTPUT_CHUNK bytes, a line at most
 * OUTPUT_LINE_MAX. Plain C: never blocks (the pipes' read ends and the
 * syslog socket are non-blocking), returns errno values, never exits.
 */
#ifndef APPSTART_OUTPUT_H
#define APPSTART_OUTPUT_H

#include <stddef.h>
#include <sys/types.h>

#define OUTPUT_LINE_MAX 4096
#define OUTPUT_CHUNK 65536
#define OUTPUT_NAME_MAX 256

enum output_sink { OUTPUT_NONE = 0, OUTPUT_CAPTURE, OUTPUT_SYSLOG, OUTPUT_FILE };
enum output_stream_id { OUTPUT_STDOUT = 0, OUTPUT_STDERR = 1 };

/* output_read's results besides a byte count */
#define OUTPUT_AGAIN (-1) /* nothing to read now */
#define OUTPUT_EOF (-2)   /* every writer has closed: output_close_stream */

struct output;

/* Bytes for a reader whose ring keeps `keep` bytes (the caller's memory). */
size_t output_size(size_t keep);

/* Preset every field: output_close is safe at once. */
void output_init(struct output *o, size_t keep);

/* A pipe for stream (OUTPUT_STDOUT or OUTPUT_STDERR) whose lines go to
 * sink; both ends close-on-exec, the read end non-blocking, made as large
 * as the system allows (F_SETPIPE_SZ up to /proc/sys/fs/pipe-max-size).
 * *writer: the write end, for the child; the reader holds it until
 * output_close_writers (once the child has it). Returns 0 or an errno value. */
int output_open_pipe(struct output *o, int stream, int sink, int *writer);

/* Bytes this process's captured pipes hold past their first size (their
 * budget: half of pipe-user-pages-soft), for the specs. */
long output_pipe_budget_used(void);

/* Stream's lines go to syslog at priority (a syslog level, facility user)
 * through the AF_UNIX datagram socket at socket_path. Returns 0 or an
 * errno value. */
int output_set_syslog(struct output *o, int stream, const char *socket_path, int level);

/* The uid the app runs as ((uid_t)-1, the default: unknown), before
 * output_set_file: a file of that user's in a sticky directory others can
 * write (/tmp) is then taken as well (see output_set_file). */
void output_set_app_uid(struct output *o, uid_t uid);

/* Stream's bytes are appended to path, rotated when they would take it
 * past max_bytes (0: never) to path.1 .. path.keep. The directory is
 * opened once, here, by a walk that follows a symbolic link only where no
 * user but root and the launcher could have made or changed it
 * (sys_open_dir_safely); the file is opened O_NOFOLLOW and must be a
 * regular file with one link, and, in a sticky directory others can write
 * (/tmp), be root's, the launcher's, the directory owner's or the app's
 * user's (output_set_app_uid); rotated files are created O_EXCL. Returns 0
 * or an errno value; why says what failed. */
int output_set_file(struct output *o, int stream, const char *path, long long max_bytes, int keep,
                    char *why, size_t why_len);

/* 1 when both streams go to files and those are one file (the same device
 * and inode, whatever their paths: "log" and "./log"), else 0. Two
 * writers rotating one file would each lose the other's lines. */
int output_same_file(const struct output *o);

/* Syslog lines' tag: program[pid]. */
void output_set_tag(struct output *o, const char *program, long pid);

/* The read end of stream, or -1. */
int output_fd(const struct output *o, int stream);

/* Read one chunk of stream (only when output_next_line has returned 0):
 * a byte count > 0, OUTPUT_AGAIN, OUTPUT_EOF, or -errno. A file sink gets
 * the bytes here. */
int output_read(struct output *o, int stream);

/* The next line of what was read: 1 with *line (valid until the next
 * call; NULL for a line not captured, handed to nobody), *len and
 * *stream; 0 when the chunk is used up. Every line goes to the ring;
 * syslog lines are sent from here (one a call, so that the caller may
 * look at the clock between them). */
int output_next_line(struct output *o, const char **line, size_t *len, int *stream);

/* The app has ended: what each pipe holds now is the last of its output;
 * reads from here on take no more than that (what a child that keeps the
 * pipe open writes after is not the app's: output_read says OUTPUT_AGAIN
 * once it is all read, and the line left without its '\n' is the app's
 * last). */
void output_bound_end(struct output *o);

/* The app has ended (only when output_next_line has returned 0): what
 * stream holds of a line without its '\n' is its last line, as at end of
 * file (a child that keeps the pipe open writes after the app's end: not
 * the app's). output_next_line hands it over next. */
void output_finish(struct output *o, int stream);

/* Close the write ends: the child has its own. */
void output_close_writers(struct output *o);

/* Close stream's read end (once it has left any poller). */
void output_close_stream(struct output *o, int stream);

/* Close everything. Idempotent. */
void output_close(struct output *o);

/* The ring: the number of lines it holds, and line i (0: the oldest). An
 * iteration from 0 is linear. */
size_t output_lines(const struct output *o);
int output_line_at(struct output *o, size_t i, const char **line, size_t *len, int *stream);

/* Syslog datagrams lost (the daemon absent or slow) and why the last
 * was (err: an errno value, 0 none), bytes a file could not take, and the
 * last file error (0: none). */
long long output_syslog_dropped(const struct output *o, int *err);
long long output_file_dropped(const struct output *o, int *err);

#endif
