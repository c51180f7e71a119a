/*
 * notifysock.h: the sd_notify socket of one start, in a directory of the
 * launcher's. Every descriptor is close-on-exec, the socket non-blocking,
 * with SO_PASSCRED so the kernel attests each datagram's sender.
 */
#ifndef APPSTART_NOTIFYSOCK_H
#define APPSTART_NOTIFYSOCK_H

#include <stddef.h>
#include <sys/types.h>

struct notify_socket {
    int fd;
    char dir[160];  /* "" when none */
    char path[176]; /* the socket: dir + "/notify" */
    dev_t dev;      /* the directory's identity, checked before removal */
    ino_t ino;
};

/* Make the directory under base (when every user can traverse base and
 * only its owner, root or the launcher's user, can change it, and the
 * directory can be made there; else /tmp),
 * bind the datagram socket in it, turn on SO_PASSCRED.
 *
 * The socket is writable by every user, so an app that drops to a user of
 * its own before it says READY=1 still reaches it (as systemd's does):
 * who may notify is decided by the sender's kernel-attested pid, never by
 * file permissions. The directory is the launcher's, 0711, with an
 * unguessable name: nobody else can list, rename, replace or fill it.
 * The directory has its final name only once the socket is bound in it
 * (until then one of its own, that no other launcher's sweep takes by a
 * pid). The first start under a base in this process removes the
 * directories that launchers of the same user killed before their cleanup
 * left there.
 * Returns 0 or an errno value; on error nothing is left behind, and tried
 * (tried_len bytes) names the base directory tried last. */
int notify_socket_open(struct notify_socket *c, const char *base, char *tried, size_t tried_len);

/* Close the socket and remove it and its directory: the socket through
 * the directory's descriptor, once that is checked to be the directory
 * made, so no path trick redirects the cleanup; the directory, empty, by
 * its path (in a base nobody else may change). Needs one descriptor at
 * most (the socket's is closed first; the descriptors queued messages
 * still pass are closed as they come: channel_close). Idempotent. */
void notify_socket_close(struct notify_socket *c);

/* Send msg as one datagram to the notify socket at path (as $NOTIFY_SOCKET
 * gives it: a file, or '@' for the abstract namespace), never waiting (a
 * full queue is EAGAIN). Returns 0 or an errno value. */
int notify_send(const char *path, const char *msg, size_t len);

/* A datagram socket connected to the notify socket at path, close-on-exec
 * and non-blocking, in *fd: polled for POLLOUT, it is writable once that
 * socket's queue has room again (Linux wakes a connected datagram sender
 * when its peer reads), which is when a datagram notify_send found the
 * queue full for may go. Returns 0 or an errno value (*fd -1). */
int notify_peer(const char *path, int *fd);

/* Send msg as one datagram on fd, a socket of notify_peer's, never
 * waiting: 0 or an errno value (EAGAIN: the queue is full; ECONNREFUSED:
 * the socket it was connected to is gone). */
int notify_send_peer(int fd, const char *msg, size_t len);

#endif
