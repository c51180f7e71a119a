/*
 * lbinding.h: what the files of the Lua binding (l*.c) share: the class
 * names, the error and signal helpers, and each file's part of
 * luaopen_appstart_core.
 *
 * The binding turns core results into Lua values. Every argument is checked
 * before anything is created; a failure of the world (a program that cannot
 * run, a dead app) is returned as values, a programmer mistake raised.
 * Userdata are preset before their metatable is set, so __gc is safe after
 * a half-done constructor, and one idempotent close serves close, __gc and
 * __close.
 */
#ifndef APPSTART_LBINDING_H
#define APPSTART_LBINDING_H

#include "process.h"
#include "tree.h"

#include <lauxlib.h>
#include <lua.h>

#define LB_STARTER "appstart.starter"
#define LB_PROCESS "appstart.process"
#define LB_POLLER "appstart.poller"
#define LB_SIGNALS "appstart.signals"
#define LB_LISTENER "appstart.listener"

/* nil, "what: strerror(err)" (or strerror alone), err: 3 values */
int lb_errno_result(lua_State *L, int err, const char *what);

/* The string at arg, which must hold no NUL byte (the C string would end
 * there); raises otherwise. */
const char *lb_check_cstring(lua_State *L, int arg);

/* A descriptor number at arg (0 to INT_MAX); raises otherwise (a larger
 * integer cast to int would name another descriptor). */
int lb_check_fd(lua_State *L, int arg);

/* A timeout in seconds at arg, or -1 (none) when absent or negative;
 * raises on NaN (no comparison holds for it: it would wait for ever). */
double lb_opt_timeout(lua_State *L, int arg);

/* A uid or gid at arg (0 to 2^32 - 2: (uid_t)-1 is none); raises
 * otherwise (a larger integer would wrap onto root's). */
unsigned lb_check_id(lua_State *L, int arg);

/* A signal given as a number or a name ("TERM", "SIGTERM", "term"), or def
 * when the argument is absent; raises on anything else. */
int lb_check_signal(lua_State *L, int arg, int def);

/* how = {code = n} | {signal = n} | {} for a process_end and its code */
void lb_push_how(lua_State *L, int end, int code);

/* A process userdata: the process, and what else a stop reaches (its
 * kill_mode's tree: NULL for "process"). */
struct lb_process {
    struct process p;
    struct tree *tree;
};

/* A process userdata holding nothing yet (left on the stack). */
struct lb_process *lb_new_process(lua_State *L);

/* A listener userdata holding nothing yet (left on the stack). */
struct listener *lb_new_listener(lua_State *L);

/* A metatable name with methods as __index, close as __gc and __close,
 * and tostring as __tostring; left on the stack. Each holds the metatable
 * as its first upvalue, for lb_check_self. */
void lb_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, lua_CFunction tostring);

/* In a method of a class made by lb_new_class: argument i, which must be
 * an object of that class (raises naming `name` otherwise). */
void *lb_check_self(lua_State *L, int i, const char *name);

/* Each file's classes and functions, into the module table at the top. */
void lb_open_process(lua_State *L);
void lb_open_starter(lua_State *L);
void lb_open_poller(lua_State *L);
void lb_open_signals(lua_State *L);
void lb_open_testing(lua_State *L);
void lb_open_listener(lua_State *L);
void lb_open_probe(lua_State *L);
void lb_open_timers(lua_State *L);
/* testing.probe_source_port(port): the next tcp probe's socket is bound to
 * that source port before it connects (0: none); a test knob */
void lb_probe_source_port(int port);
void lb_open_output(lua_State *L);

#endif
