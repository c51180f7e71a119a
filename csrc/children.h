/*
 * children.h: the launcher's children that this library is responsible
 * for, reaped each by its own pid (never waitpid(-1), which would steal
 * children from every other library in the process).
 *
 *   own:       children this library started, or adopted and took over,
 *              and has not reaped; a child of the launcher that is not in
 *              it was adopted, or is another library's;
 *   abandoned: those of them let go of before they were reaped, reaped
 *              later (children_reap_abandoned) so none stays a zombie.
 *
 * The adoption window is open while any start through a helper is under
 * way: the launcher is then a child subreaper (PR_SET_CHILD_SUBREAPER), so
 * an app whose helper exits becomes the launcher's child, provably
 * descended from the helper, with an exit status to reap. When the last
 * window closes, children that were adopted meanwhile and that nobody took
 * over are abandoned, to be reaped once they exit. A launcher that was a
 * subreaper already stays one.
 *
 * Guarded by one mutex: several Lua states in several threads may share
 * this library.
 */
#ifndef APPSTART_CHILDREN_H
#define APPSTART_CHILDREN_H

#include <sys/types.h>

void children_add(pid_t pid);
void children_reaped(pid_t pid);
int children_owns(pid_t pid);

/* Leaders: the launcher's own children that led a session (and process
 * group) of their own (helpers, a forking daemon's started process, apps
 * of kill_mode "group" or that made one), remembered once reaped too,
 * while that session or group may still hold processes: an orphan of an
 * app started through a helper is in the helper's session long after the
 * helper was reaped. children_led(id): is id (a session or group id) one
 * such child's? An entry goes once the kernel gives its pid to a child of
 * the launcher's again (children_spawned: a pid in use as a session or
 * group id is never given again), or once no process is left in its
 * session (looked at as leaders are added, at most once a second: before
 * the kernel may give that pid out again, to a process of a start under
 * way whose own session it would be, refused then). */
void children_add_leader(pid_t pid);
int children_led(pid_t id);
/* pid was given to a child just spawned: free, so no session or group of
 * that id is left (its entry goes). */
void children_spawned(pid_t pid);

/* pid, a child of ours not reaped yet, is let go of: reaped later. */
void children_abandon(pid_t pid);

/* Reap abandoned children that have exited (non-blocking, each by pid).
 * Returns how many are on their way out (PF_EXITING), not reaped yet. */
int children_reap_abandoned(void);

/* The same, cheap enough for every wait: only while the first exited
 * child the kernel reports (looked at without reaping it) is an abandoned
 * one; a child another owner has still to reap stops it there, and
 * children_reap_abandoned finds the rest at the next start. */
void children_reap_exited(void);

/* Children of the launcher's that nothing here owns (adopted, or another
 * library's), each held by a pidfd where there is one, for which
 * member(pid, arg) proves that they descend from an app of this library's
 * (a member of its process group): reaped now if they have exited, else
 * abandoned (reaped once they exit). A pending lease's app is left to its
 * lease. Called with the library's lock held: member must not call back. */
void children_take_adopted(int (*member)(pid_t pid, void *arg), void *arg);

/* Open and close an adoption window (nested calls count). Returns 0 or an
 * errno value. */
int children_adopt_begin(void);
void children_adopt_end(void);

/* For the specs: each window that opens with none open before pauses
 * `seconds` (0: none, the default) once the launcher is a subreaper,
 * before it returns, so that an orphan comes to it meanwhile. */
void children_testing_adopt_pause(double seconds);

/* For the specs: a pending lease dropped (children_lease_drop) pauses
 * `seconds` (0: none, the default) before its window closes, so that its
 * app comes to the launcher meanwhile (its parent exiting then). */
void children_testing_drop_pause(double seconds);

/* A lease: the app pid, proven through a process the launcher adopted, is
 * not the launcher's child yet (its parent, a process between it and the
 * helper, still runs: a forking daemon's intermediate). The caller's
 * window becomes the lease's, so that the app comes to the launcher when
 * that parent exits; it closes once the app has come (its handle reaps it,
 * with its exit status) or has ended as another's. Leases are looked at by
 * every reap above. pidfd: the app's (duplicated). Returns 0, or an errno
 * value: the caller ends its window itself. */
int children_lease(pid_t pid, int pidfd);

/* pid's lease, looked at now: 1 once pid has come to the launcher (its
 * child, to be reaped by its handle), 0 while it has not, -1 when it ended
 * as another's; the lease is over unless 0. */
int children_lease_check(pid_t pid);

/* Let go of pid's lease, settled or not. */
void children_lease_drop(pid_t pid);

#endif
