/*
 * lsignals.c: the signals class (appstart.signals): signals blocked for
 * the process and read from a pollable signalfd instead (the command's
 * forwarding and cancelling).
 */
#include "lbinding.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* Masks are set by the kernel's calls (sys_sigmask), so that 32 and 33,
 * which the C library keeps for itself and will not block, are blocked
 * and read as the others are: their default ends the process. (This
 * holds for a process of one thread, as the commands are; a second
 * thread's setuid would wait on 33, which glibc sends every thread.) */
struct lsignals {
    int fd;
    int blocked;
    sigset_t set;
};

/* Each signal blocked here, by how many live objects, and whether the
 * first of them blocked it (it was not blocked before): the last to go
 * unblocks it then, whatever order they go in (one closed first must not
 * unblock a signal another still reads: its default action would come). */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static int held[NSIG];
static char blocked_here[NSIG];

/* ls's signals let go of: those no other object holds, and that were not
 * blocked before the first blocked them, are unblocked. */
static void let_go(struct lsignals *ls)
{
    if (!ls->blocked)
        return;
    ls->blocked = 0;
    sigset_t unblock;
    memset(&unblock, 0, sizeof unblock);
    pthread_mutex_lock(&held_lock);
    for (int sig = 1; sig < NSIG; sig++)
        if (sys_sigset_has(&ls->set, sig) && --held[sig] == 0 && blocked_here[sig]) {
            blocked_here[sig] = 0;
            sys_sigset_add(&unblock, sig);
        }
    (void)sys_sigmask(SIG_UNBLOCK, &unblock, NULL);
    pthread_mutex_unlock(&held_lock);
}

/* core.signals({"INT", "TERM", ...}) -> signals | nil, message, errno.
 * Spawned children start with an empty mask, so they still get every
 * signal. A listed signal the process ignores (SIG_IGN now: inherited
 * from nohup, or from a shell that runs a background job with SIGINT and
 * SIGQUIT ignored) is left alone, neither blocked nor read: it would not
 * end the process, so the kernel goes on discarding it, and nobody acts
 * on it. */
static int l_signals(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    sigset_t set;
    memset(&set, 0, sizeof set);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        int sig = lb_check_signal(L, lua_gettop(L), SIGTERM);
        lua_pop(L, 1);
        /* (but SIGPIPE: ignored, a write to a reader gone fails with
         * EPIPE, which the command's writes do not look at; read, it
         * says that reader went away all the same. Asked of the kernel:
         * glibc's posix_spawn and system() leave 32 and 33 ignored in
         * what they start, which the C library's sigaction will not say) */
        if (sig < 1 || (sig != SIGPIPE && sys_signal_ignored(sig)))
            continue;
        sys_sigset_add(&set, sig);
    }
    struct lsignals *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    ls->fd = -1;
    ls->blocked = 0;
    luaL_setmetatable(L, LB_SIGNALS);
    ls->set = set;
    sigset_t old;
    memset(&old, 0, sizeof old);
    pthread_mutex_lock(&held_lock);
    int err = sys_sigmask(SIG_BLOCK, &set, &old);
    if (!err) {
        ls->blocked = 1;
        for (int sig = 1; sig < NSIG; sig++)
            if (sys_sigset_has(&set, sig) && held[sig]++ == 0)
                blocked_here[sig] = !sys_sigset_has(&old, sig);
    }
    pthread_mutex_unlock(&held_lock);
    if (err)
        return lb_errno_result(L, err, "sigprocmask");
    /* (the kernel's call too: the C library's would leave 32 and 33 out) */
    ls->fd = sys_signalfd(&set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (ls->fd < 0) {
        err = errno;
        let_go(ls); /* (not left blocked until the object is collected) */
        return lb_errno_result(L, err, "signalfd");
    }
    return 1;
}

/* Whether a signal the kernel sent (SI_KERNEL) is one a terminal sends:
 * its ^C, ^\ and hangup. The kernel sends others too, to this process
 * alone (SIGALRM of an alarm() or ITIMER_REAL that survived the exec,
 * SIGVTALRM, SIGPROF, SIGXCPU of RLIMIT_CPU, SIGIO of F_SETOWN): those
 * no terminal sent, nor to anyone else. */
static int terminal_signal(const struct signalfd_siginfo *info)
{
    if (info->ssi_code != SI_KERNEL)
        return 0;
    switch (info->ssi_signo) {
    case SIGINT:
    case SIGQUIT:
    case SIGHUP:
    case SIGTSTP:
    case SIGWINCH:
        return 1;
    default:
        return 0;
    }
}

/* signals:read() -> { {signal = n, pid = sender, terminal = bool}, ... }:
 * what arrived, without waiting. terminal: sent by the kernel as a
 * terminal sends it (terminal_signal), a ^C or ^\ to its whole
 * foreground process group (pid 0), a hangup's SIGHUP.
 * A SIGXFSZ this process sent itself is left out: the kernel's, for a
 * write of its own past its file size limit (an app's output to its file),
 * which failed (EFBIG) and was counted; nobody sent it to be acted on. */
static int l_signals_read(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, LB_SIGNALS);
    lua_newtable(L);
    int n = 0;
    struct signalfd_siginfo info;
    while (ls->fd >= 0 && sys_read(ls->fd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGXFSZ && info.ssi_code == SI_USER && info.ssi_pid == (uint32_t)getpid())
            continue;
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, info.ssi_signo);
        lua_setfield(L, -2, "signal");
        lua_pushinteger(L, (lua_Integer)info.ssi_pid);
        lua_setfield(L, -2, "pid");
        lua_pushboolean(L, terminal_signal(&info));
        lua_setfield(L, -2, "terminal");
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int l_signals_fd(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, LB_SIGNALS);
    lua_pushinteger(L, ls->fd);
    return 1;
}

static int l_signals_close(lua_State *L)
{
    struct lsignals *ls = luaL_checkudata(L, 1, LB_SIGNALS);
    sys_close(&ls->fd);
    let_go(ls);
    return 0;
}

/* The handlers default_action took away, to give back. */
static struct sigaction handled[NSIG];
static char taken[NSIG];

/* core.default_action({"INT", ...}, on): each listed signal that a handler
 * of the process's catches (lua5.4's own for SIGINT, which only raises
 * "interrupted!" once the running C call returns: a write blocked on a
 * reader that never reads stays blocked) takes its default action from
 * now on (on true), or gets that handler back (on false). A signal
 * ignored, or at its default already, is left as it is. */
static int l_default_action(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int on = lua_toboolean(L, 2);
    sigset_t set;
    sigemptyset(&set);
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        sigaddset(&set, lb_check_signal(L, lua_gettop(L), SIGTERM));
        lua_pop(L, 1);
    }
    pthread_mutex_lock(&held_lock);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&set, sig) != 1)
            continue;
        if (on && !taken[sig]) {
            struct sigaction now;
            if (sigaction(sig, NULL, &now) != 0)
                continue;
            if (!(now.sa_flags & SA_SIGINFO) && (now.sa_handler == SIG_IGN || now.sa_handler == SIG_DFL))
                continue;
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            sigemptyset(&dfl.sa_mask);
            if (sigaction(sig, &dfl, NULL) == 0) {
                handled[sig] = now;
                taken[sig] = 1;
            }
        } else if (!on && taken[sig]) {
            taken[sig] = 0;
            (void)sigaction(sig, &handled[sig], NULL);
        }
    }
    pthread_mutex_unlock(&held_lock);
    return 0;
}

/* core.die_by(sig): the process ends by sig, as if it had not caught it:
 * its default action set, the signal unblocked and raised (without a core
 * dump: RLIMIT_CORE 0 first, for SIGQUIT and the others that would dump
 * one). Returns (false) only where that default does not end a process. */
static int l_die_by(lua_State *L)
{
    int sig = lb_check_signal(L, 1, SIGTERM);
    const struct rlimit none = { 0, 0 };
    (void)setrlimit(RLIMIT_CORE, &none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(sig, &dfl, NULL);
    sigset_t set;
    memset(&set, 0, sizeof set);
    sys_sigset_add(&set, sig);
    /* (raised while blocked: it is pending, and comes as it is let through) */
    (void)raise(sig);
    (void)sys_sigmask(SIG_UNBLOCK, &set, NULL);
    lua_pushboolean(L, 0);
    return 1;
}

void lb_open_signals(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "read", l_signals_read }, { "fd", l_signals_fd },
        { "close", l_signals_close }, { NULL, NULL },
    };
    lb_new_class(L, LB_SIGNALS, methods, l_signals_close, NULL);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_signals);
    lua_setfield(L, -2, "signals");
    lua_pushcfunction(L, l_default_action);
    lua_setfield(L, -2, "default_action");
    lua_pushcfunction(L, l_die_by);
    lua_setfield(L, -2, "die_by");
}
