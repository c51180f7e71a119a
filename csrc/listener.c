/*
 * listener.c: the notify socket after ready (see listener.h).
 */
#include "listener.h"
#include "cgroup.h"
#include "channel.h"
#include "procfs.h"
#include "starter.h"
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int listener_fd(const struct listener *l)
{
    return l->sock ? l->sock->fd : -1;
}

/* Who has the number l->main now: the main itself (MAIN_THERE: alive, or
 * a zombie not reaped yet, with its start time), another process that
 * took the number once the main was reaped (MAIN_REPLACED: a later start
 * time), nobody (MAIN_GONE), or -errno when /proc cannot say. A moved main
 * (MAINPID=) is reaped by its own parent, which the launcher is not: its
 * number is free from then on, until the launcher has seen its end. */
enum { MAIN_REPLACED = 0, MAIN_THERE = 1, MAIN_GONE = 2 };

static int main_holder(const struct listener *l)
{
    /* (its start time not known: the number believed, as nothing tells) */
    if (!l->main_known)
        return MAIN_THERE;
    struct procfs_stat st;
    int err = procfs_stat(l->main, &st);
    if (err)
        return err == ESRCH ? MAIN_GONE : -err;
    return st.start_time == l->main_start ? MAIN_THERE : MAIN_REPLACED;
}

/* 1, 0, or -errno when it cannot be told for now (starter.c's admitted).
 * A sender is the main only while the number is the main's: a datagram
 * from whoever took it after the main's end is no app's (read once the
 * main is gone too: the main's own last words, which count, or those of
 * a taker gone as well, which cannot be told from them; so only until
 * the launcher has seen the end and read what was sent by then:
 * listener_end_main). A descendant's is counted while the main it
 * descends from is there. */
static int admitted(const struct listener *l, pid_t sender, int over)
{
    if (sender <= 0)
        return 0;
    if (sender == l->main) {
        if (over)
            return 0;
        int holder = main_holder(l);
        if (holder < 0)
            /* (/proc unmounted: nothing to tell with, the number believed) */
            return sys_lacks_resources(-holder) ? holder : 1;
        return holder != MAIN_REPLACED;
    }
    if (l->access != STARTER_ACCESS_ALL)
        return 0;
    int descends = procfs_descent_within(sender, l->main, PROCFS_SENDER_MAX_DEPTH);
    if (descends == 1) {
        int holder = main_holder(l);
        if (holder == MAIN_THERE)
            return 1;
        if (holder < 0 && sys_lacks_resources(-holder))
            return holder;
        descends = 0;
    }
    if (l->cgroup[0] && cgroup_path_contains(l->cgroup, sender))
        return 1;
    return descends < 0 && sys_lacks_resources(-descends) ? descends : 0;
}

static void drop_held(struct listener *l)
{
    free(l->held);
    l->held = NULL;
    l->held_len = 0;
    l->held_early = 0;
}

int listener_read(struct listener *l, char *buf, struct notify_msg *m, pid_t *sender)
{
    memset(m, 0, sizeof *m);
    *sender = 0;
    if (!l->sock)
        return LISTENER_NONE;
    int trunc = 0;
    ssize_t n;
    int a;
    if (l->held) {
        /* what could not be checked comes first, once it can be */
        if ((a = admitted(l, l->held_sender, l->main_over && !l->held_early)) < 0)
            return LISTENER_LATER;
        n = (ssize_t)l->held_len;
        memcpy(buf, l->held, l->held_len);
        trunc = l->held_trunc;
        *sender = l->held_sender;
        drop_held(l);
    } else {
        n = channel_recv(l->sock->fd, buf, NOTIFY_DATAGRAM_MAX + 1, sender, &trunc);
        if (n < 0)
            return errno == EAGAIN ? LISTENER_NONE : LISTENER_ERROR;
        if ((a = admitted(l, *sender, l->main_over)) < 0) {
            char *copy = malloc(n ? (size_t)n : 1);
            if (!copy)
                return LISTENER_REFUSED; /* (cannot be kept: refused, and logged) */
            memcpy(copy, buf, (size_t)n);
            l->held = copy;
            l->held_len = (size_t)n;
            l->held_trunc = trunc;
            l->held_sender = *sender;
            return LISTENER_LATER;
        }
    }
    if (!a)
        return LISTENER_REFUSED;
    if (trunc || n > NOTIFY_DATAGRAM_MAX) {
        m->error = "datagram over 4096 bytes";
        return LISTENER_MALFORMED;
    }
    return notify_parse(buf, (size_t)n, m) < 0 ? LISTENER_MALFORMED : LISTENER_MESSAGE;
}

static int refuse(struct process *out, int err, char *why, size_t why_len, const char *what)
{
    process_release(out);
    snprintf(why, why_len, "%s", what ? what : strerror(err));
    return err ? err : EPERM;
}

/* Is the process group numbered l->pgid still the app's? Once every
 * process of a group and of its session has gone, the kernel gives the
 * number to the next process made, which may make a group of its own
 * under it (setsid): a process in a group of that number is then no
 * process of the app's. The number is the app's while its leader is there
 * (alive, or a zombie the launcher holds) or while the app's main process
 * is in its session (it cannot have left it and come back: a session is
 * joined only by being born in it). Asked after the candidate's group was
 * read: what held the number now held it then. */
static int group_is_the_apps(const struct listener *l)
{
    struct procfs_stat st;
    if (procfs_stat(l->pgid, &st) == 0 && st.start_time == l->pgid_start)
        return 1;
    return procfs_stat(l->main, &st) == 0 && st.start_time == l->main_start && st.session == l->pgid;
}

int listener_verify_main(struct listener *l, pid_t pid, struct process *out, char *why,
                         size_t why_len)
{
    *out = (struct process)PROCESS_NONE;
    if (pid <= 1 || pid == getpid())
        return refuse(out, EINVAL, why, why_len, "not a pid an app may have");
    if (pid == l->main)
        return refuse(out, EEXIST, why, why_len, "it is the app's pid already");
    /* held first: what is checked below is then that very process */
    int err = process_open(out, pid, 0);
    /* a thread's id is no process */
    int thread = procfs_names_a_thread(pid, err);
    if (thread == 1)
        return refuse(out, EINVAL, why, why_len, "a thread's id, not a process");
    if (err)
        return refuse(out, err, why, why_len, procfs_strerror(err));
    if (thread < 0)
        return refuse(out, -thread, why, why_len, thread == -ENOENT ? "no such process" : procfs_strerror(-thread));
    struct procfs_stat st;
    if ((err = procfs_stat(pid, &st)))
        return refuse(out, err, why, why_len, NULL);
    /* a zombie or a process on its way out would end the app at once,
     * leaving the real main running unwatched */
    if (procfs_liveness(pid) != PROCFS_RUNNING)
        return refuse(out, ESRCH, why, why_len, "it has exited");
    if (st.start_time < l->app_start)
        return refuse(out, EPERM, why, why_len, "started before the app");
    /* descended: its parent chain reaches the app (while that lives: the
     * number the chain reached still the main's after it was read), or
     * it is in the app's cgroup or process group, which only what the app
     * started can be in */
    if (!(procfs_descends_from(pid, l->main, NULL) && main_holder(l) == MAIN_THERE) &&
        !(l->cgroup[0] && cgroup_path_contains(l->cgroup, pid)) &&
        !(l->pgid > 0 && st.pgrp == l->pgid && group_is_the_apps(l)))
        return refuse(out, EPERM, why, why_len, "not descended from the app");
    if (l->app_uid != (uid_t)-1) {
        uid_t uids[4];
        if ((err = procfs_uids(pid, uids)))
            return refuse(out, err, why, why_len, NULL);
        for (int i = 0; i < 4; i++)
            if (uids[i] != l->app_uid)
                return refuse(out, EPERM, why, why_len, "it runs as another user");
    }
    l->main = pid;
    l->main_start = st.start_time;
    l->main_known = 1;
    l->main_over = 0;
    return 0;
}

int listener_end_main(struct listener *l, pid_t pid)
{
    if (pid <= 0 || pid != l->main)
        return 0;
    l->main_over = 1;
    l->held_early = l->held != NULL;
    return 1;
}

void listener_close(struct listener *l)
{
    drop_held(l);
    if (l->sock) {
        notify_socket_close(l->sock);
        free(l->sock);
        l->sock = NULL;
    }
}
