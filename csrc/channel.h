/*
 * channel.h: the channels between launcher and children.
 *
 * Every descriptor is close-on-exec from birth; the launcher's ends are
 * non-blocking. The ready channel of the fd protocol is a unix stream socket
 * rather than a pipe (a writer cannot tell the difference) so that the kernel
 * attests who wrote each byte (SO_PASSCRED / SCM_CREDENTIALS). The notify
 * socket lives in a fresh directory of the launcher's (see below).
 */
#ifndef APPSTART_CHANNEL_H
#define APPSTART_CHANNEL_H

#include <stddef.h>
#include <sys/types.h>

/* fds[0]: the launcher's end (non-blocking, credentials on); fds[1]: the
 * child's. Returns 0 or an errno value. */
int channel_ready_pair(int fds[2]);

struct notify_channel {
    int fd;
    char dir[160];  /* "" when none */
    char path[176]; /* the socket: dir + "/notify" */
    size_t base_len; /* dir[0 .. base_len) is the base directory */
    dev_t dev;      /* the directory's identity, checked before removal */
    ino_t ino;
};

/* Make the directory under base (when every user can traverse base and
 * only its owner, root or the launcher's user, can change it; else /tmp),
 * bind the datagram socket in it, turn on SO_PASSCRED.
 *
 * The socket is writable by every user, so an app that drops to a user of
 * its own before it says READY=1 still reaches it (as systemd's does):
 * who may notify is decided by the sender's kernel-attested pid, never by
 * file permissions. The directory is the launcher's, 0711, with an
 * unguessable name: nobody else can list, rename, replace or fill it.
 * The first start under a base in this process removes the directories
 * that launchers of the same user killed before their cleanup left there.
 * Returns 0 or an errno value; on error nothing is left behind. */
int channel_notify_open(struct notify_channel *c, const char *base);

/* Close the socket and remove it and its directory, through descriptors
 * (the directory is checked to be the one made), so no path trick
 * redirects the cleanup. Idempotent. */
void channel_notify_close(struct notify_channel *c);

/* recvmsg with credentials. Returns the byte count (0 at end of file on a
 * stream), or -1 with errno (EAGAIN when nothing is there). *sender is the
 * kernel-attested pid of the writer, 0 when none came. *truncated is set when
 * a datagram was longer than cap. */
ssize_t channel_recv(int fd, char *buf, size_t cap, pid_t *sender,
                     int *truncated);

#endif
