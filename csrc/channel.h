/*
 * channel.h: the channels between launcher and children.
 *
 * Every descriptor is close-on-exec from birth; the launcher never waits on
 * a read. The ready channel of the fd protocol is a unix stream socket
 * rather than a pipe (a writer cannot tell the difference) so that the kernel
 * attests who wrote each byte (SO_PASSCRED / SCM_CREDENTIALS).
 */
#ifndef APPSTART_CHANNEL_H
#define APPSTART_CHANNEL_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* fds[0]: the launcher's end (credentials on); fds[1]: the child's. Returns
 * 0 or an errno value. */
int channel_ready_pair(int fds[2]);

/* recvmsg with credentials, never waiting. Returns the byte count (0 at end of file on a
 * stream), or -1 with errno (EAGAIN when nothing is there). *sender is the
 * kernel-attested pid of the writer, 0 when none came. *truncated is set when
 * a datagram was longer than cap. */
ssize_t channel_recv(int fd, char *buf, size_t cap, pid_t *sender,
                     int *truncated);

/* Close a channel of the launcher's (the notify socket, the ready
 * socket) without waiting: descriptors still queued on it would be closed
 * by the kernel, a socket's lingering still on, and the launcher would
 * wait it out. So it is shut first (new messages are refused), and what
 * is queued is read through channel_recv (its descriptors closed without
 * lingering), up to a bound, before the close. type: the socket's,
 * SOCK_STREAM (the ready socket: a read of 0 is its end) or SOCK_DGRAM
 * (the notify socket: an empty datagram is a message, and may carry
 * descriptors). Sets *fd to -1; nothing when it is -1 already. */
void channel_close(int *fd, int type);

#endif
