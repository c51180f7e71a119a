/*
 * loutput.c: the output reader class (appstart.output, output.h): an app's
 * stdout and stderr read in the launcher, line by line, into a ring.
 */
#include "lbinding.h"
#include "output.h"
#include "sys.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define LB_OUTPUT "appstart.output"
#define KEEP_MAX (64 << 20)

static const char *const stream_names[] = { "stdout", "stderr", NULL };
static const char *const sink_names[] = { "capture", "syslog", "file", NULL };

static struct output *check_output(lua_State *L, int i)
{
    return lb_check_self(L, i, LB_OUTPUT);
}

/* core.output(keep) -> a reader whose ring keeps `keep` bytes of lines */
static int l_output_new(lua_State *L)
{
    lua_Integer keep = luaL_checkinteger(L, 1);
    luaL_argcheck(L, keep >= 0 && keep <= KEEP_MAX, 1, "out of range");
    struct output *o = lua_newuserdatauv(L, output_size((size_t)keep), 0);
    output_init(o, (size_t)keep);
    luaL_setmetatable(L, LB_OUTPUT);
    return 1;
}

/* o:pipe(stream, sink) -> the write end for the child | nil, message, errno */
static int l_output_pipe(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int stream = luaL_checkoption(L, 2, NULL, stream_names);
    int sink = luaL_checkoption(L, 3, NULL, sink_names) + OUTPUT_CAPTURE;
    luaL_argcheck(L, output_fd(o, stream) < 0, 2, "has a pipe already");
    int writer;
    int err = output_open_pipe(o, stream, sink, &writer);
    if (err)
        return lb_errno_result(L, err, "cannot create the output pipe");
    lua_pushinteger(L, writer);
    return 1;
}

/* o:syslog(stream, socket_path, level) -> true | nil, message, errno */
static int l_output_syslog(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int stream = luaL_checkoption(L, 2, NULL, stream_names);
    const char *path = lb_check_cstring(L, 3);
    lua_Integer level = luaL_checkinteger(L, 4);
    luaL_argcheck(L, level >= 0 && level <= 7, 4, "not a syslog level");
    int err = output_set_syslog(o, stream, path, (int)level);
    if (err)
        return lb_errno_result(L, err, "cannot open a syslog socket");
    lua_pushboolean(L, 1);
    return 1;
}

/* o:file(stream, path, max_bytes, keep) -> true | nil, message, errno */
static int l_output_file(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int stream = luaL_checkoption(L, 2, NULL, stream_names);
    const char *path = lb_check_cstring(L, 3);
    lua_Integer max = luaL_checkinteger(L, 4), keep = luaL_checkinteger(L, 5);
    luaL_argcheck(L, max >= 0, 4, "out of range");
    luaL_argcheck(L, keep >= 0 && keep <= 1000, 5, "out of range");
    char why[512];
    int err = output_set_file(o, stream, path, (long long)max, (int)keep, why, sizeof why);
    if (err) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        lua_pushinteger(L, err);
        return 3;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* o:same_file() -> true when stdout's and stderr's files are one file */
static int l_output_same_file(lua_State *L)
{
    lua_pushboolean(L, output_same_file(check_output(L, 1)));
    return 1;
}

/* o:app_uid(uid): the app's user (user =), whose own file a {file = ...}
 * in a sticky directory all may write may be */
static int l_output_app_uid(lua_State *L)
{
    struct output *o = check_output(L, 1);
    lua_Integer uid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, uid >= 0 && uid < 0xffffffff, 2, "uid out of range");
    output_set_app_uid(o, (uid_t)uid);
    return 0;
}

/* o:tag(program, pid) */
static int l_output_tag(lua_State *L)
{
    struct output *o = check_output(L, 1);
    const char *program = lb_check_cstring(L, 2);
    lua_Integer pid = luaL_checkinteger(L, 3);
    luaL_argcheck(L, pid >= 0 && pid <= INT_MAX, 3, "not a pid");
    output_set_tag(o, program, (long)pid);
    return 0;
}

/* o:fd(stream) -> the read end | nil */
static int l_output_fd(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int fd = output_fd(o, luaL_checkoption(L, 2, NULL, stream_names));
    if (fd < 0)
        return 0;
    lua_pushinteger(L, fd);
    return 1;
}

/* Lines a deliver hands over between two looks at the clock */
#define LINES_PER_LOOK 64

/* Every line the reader holds, to the function at index 3 (when has_fn
 * and the line is captured; else it is only taken: kept in the ring, sent
 * to syslog): 0; or 2 with "error" and what the function raised on the
 * stack (the lines after it stay); or -1 when `until` (a sys_now() time;
 * 0: none) has passed with lines left (they stay, for the next call).
 * Lines taken count as lines handed over (a syslog send costs as much as
 * a short on_output). */
static int deliver(lua_State *L, struct output *o, int has_fn, double until)
{
    const char *line;
    size_t len;
    int id;
    unsigned n = 0;
    while (output_next_line(o, &line, &len, &id)) {
        if (has_fn && line) {
            lua_pushvalue(L, 3);
            lua_pushstring(L, stream_names[id]);
            lua_pushlstring(L, line, len);
            if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
                lua_pushliteral(L, "error");
                lua_insert(L, -2);
                return 2;
            }
        }
        if (until > 0 && ++n % LINES_PER_LOOK == 0 && sys_now() >= until)
            return -1;
    }
    return 0;
}

/* r:bound_end(): the app has ended; its end reads take what the pipes
 * hold now and no more (output_bound_end) */
static int l_output_bound_end(lua_State *L)
{
    output_bound_end(check_output(L, 1));
    return 0;
}

/* o:read(stream, fn, chunks, until, final) -> "again" | "eof" | "more" |
 * "pending" and the bytes read, or nil, message, errno; or "error", what
 * fn raised, the chunks read.
 * Reads at most `chunks` chunks' worth of stream (OUTPUT_CHUNK bytes each:
 * a read may take less, see output_read), calling fn(stream_name, line)
 * for each captured line (lines of a chunk read before are handed over
 * first; chunks 0 hands them over and reads nothing). fn runs protected:
 * what it raises ends the call, and the lines after it come at the next,
 * which the caller counts against the same budget (the chunks' worth this
 * one read, rounded up). until (core.now() time, optional): once past it,
 * the call ends "pending" with the lines not handed over yet kept for the
 * next call (a slow fn holds its caller that long at most, whatever the
 * number of lines a chunk holds), or "more" between reads (a read's
 * rotations of a file may take long too). final (the app has ended): what
 * the pipe holds now is its last output, read within `chunks`; once it is
 * read (or the chunks are), the line left without its '\n' is its last
 * (output_finish) and the call ends "eof", the stream to be closed. */
static int l_output_read(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int stream = luaL_checkoption(L, 2, NULL, stream_names);
    int has_fn = !lua_isnoneornil(L, 3);
    if (has_fn)
        luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_Integer chunks = luaL_optinteger(L, 4, 1);
    /* (a product that overflowed would read nothing, for ever) */
    luaL_argcheck(L, chunks >= 0 && chunks <= LUA_MAXINTEGER / OUTPUT_CHUNK, 4, "out of range");
    lua_Number until_arg = luaL_optnumber(L, 5, 0);
    luaL_argcheck(L, until_arg == until_arg, 5, "not a number (NaN)");
    double until = (double)until_arg;
    int final = lua_toboolean(L, 6);
    lua_settop(L, 3);
    lua_Integer got = 0; /* bytes read */
    for (;;) {
        lua_Integer used = (got + OUTPUT_CHUNK - 1) / OUTPUT_CHUNK;
        int d = deliver(L, o, has_fn, until);
        if (d > 0) {
            lua_pushinteger(L, used);
            return 3;
        }
        if (d < 0) {
            lua_pushliteral(L, "pending");
            lua_pushinteger(L, got);
            return 2;
        }
        int r;
        if (got > 0 && until > 0 && sys_now() >= until) {
            lua_pushliteral(L, "more");
            lua_pushinteger(L, got);
            return 2;
        }
        if (got >= chunks * OUTPUT_CHUNK) {
            if (!final) {
                lua_pushliteral(L, "more");
                lua_pushinteger(L, got);
                return 2;
            }
            r = OUTPUT_AGAIN;
        } else {
            r = output_read(o, stream);
        }
        if (r == OUTPUT_AGAIN) {
            if (!final) {
                lua_pushliteral(L, "again");
                lua_pushinteger(L, got);
                return 2;
            }
            output_finish(o, stream);
            r = OUTPUT_EOF;
        }
        if (r == OUTPUT_EOF) {
            /* the last partial line */
            d = deliver(L, o, has_fn, 0);
            if (d > 0) {
                lua_pushinteger(L, used + 1);
                return 3;
            }
            lua_pushliteral(L, "eof");
            lua_pushinteger(L, got);
            return 2;
        }
        if (r < 0)
            return lb_errno_result(L, -r, "cannot read the app's output");
        got += r;
    }
}

/* o:tail(n) -> the last n lines of the ring, oldest first; with streams
 * true, also a list of their streams */
static int l_output_tail(lua_State *L)
{
    struct output *o = check_output(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 10);
    int with_streams = lua_toboolean(L, 3);
    luaL_argcheck(L, n >= 0, 2, "must be >= 0");
    size_t total = output_lines(o);
    size_t first = (lua_Unsigned)n >= total ? 0 : total - (size_t)n;
    lua_createtable(L, (int)(total - first), 0);
    if (with_streams)
        lua_createtable(L, (int)(total - first), 0);
    for (size_t i = first; i < total; i++) {
        const char *line;
        size_t len;
        int id;
        output_line_at(o, i, &line, &len, &id);
        lua_pushlstring(L, line, len);
        lua_rawseti(L, with_streams ? -3 : -2, (lua_Integer)(i - first + 1));
        if (with_streams) {
            lua_pushstring(L, stream_names[id]);
            lua_rawseti(L, -2, (lua_Integer)(i - first + 1));
        }
    }
    return with_streams ? 2 : 1;
}

/* o:close_writers(): the write ends closed (the child has them) */
static int l_output_close_writers(lua_State *L)
{
    output_close_writers(check_output(L, 1));
    return 0;
}

/* o:close_stream(stream): its read end closed (out of every poller first) */
static int l_output_close_stream(lua_State *L)
{
    struct output *o = check_output(L, 1);
    output_close_stream(o, luaL_checkoption(L, 2, NULL, stream_names));
    return 0;
}

/* o:dropped() -> syslog datagrams lost, file bytes lost, the file's last
 * error message or nil, the last lost datagram's error message or nil */
static int l_output_dropped(lua_State *L)
{
    struct output *o = check_output(L, 1);
    int err, syslog_err;
    long long file = output_file_dropped(o, &err);
    lua_pushinteger(L, (lua_Integer)output_syslog_dropped(o, &syslog_err));
    lua_pushinteger(L, (lua_Integer)file);
    if (err)
        lua_pushstring(L, strerror(err));
    else
        lua_pushnil(L);
    if (syslog_err)
        lua_pushstring(L, strerror(syslog_err));
    else
        lua_pushnil(L);
    return 4;
}

static int l_output_close(lua_State *L)
{
    output_close(check_output(L, 1));
    return 0;
}

static int l_output_tostring(lua_State *L)
{
    struct output *o = check_output(L, 1);
    lua_pushfstring(L, "appstart.output(%d lines, stdout fd %d, stderr fd %d)", (int)output_lines(o),
                    output_fd(o, 0), output_fd(o, 1));
    return 1;
}

void lb_open_output(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "pipe", l_output_pipe },     { "syslog", l_output_syslog },
        { "file", l_output_file },     { "tag", l_output_tag },
        { "fd", l_output_fd },         { "read", l_output_read },
        { "bound_end", l_output_bound_end },
        { "tail", l_output_tail },     { "close_stream", l_output_close_stream },
        { "app_uid", l_output_app_uid }, { "same_file", l_output_same_file },
        { "close_writers", l_output_close_writers }, { "dropped", l_output_dropped }, { "close", l_output_close },
        { NULL, NULL },
    };
    lb_new_class(L, LB_OUTPUT, methods, l_output_close, l_output_tostring);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_output_new);
    lua_setfield(L, -2, "output");
}
