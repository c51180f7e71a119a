rockspec_format = "3.0"
package = "appstart"
version = "0.1.0-1"
source = {
  url = "git+file:///dev/null", -- built from a checkout: luarocks --lua-version 5.4 make rockspec/appstart-0.1.0-1.rockspec
}
description = {
  summary = "Start an application, prove that it came up, watch it until it exits",
  detailed = [[
    A Lua 5.4 module with a C core: spawn without a shell, learn the true pid
    (even through a forking helper), wait for a ready message (fd line or
    sd_notify), watch through pidfds, terminate with a grace period.
  ]],
  license = "MIT",
  homepage = "https://example.invalid/appstart",
}
supported_platforms = { "linux" }
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "make",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    LIBEXECDIR = "$(PREFIX)/libexec/appstart",
  },
  install_target = "install",
  install_variables = {
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
    LIBEXECDIR = "$(PREFIX)/libexec/appstart",
    LUA = "$(LUA)",
    -- luarocks moves the modules out of LUADIR and wraps the script with
    -- its own paths: the script must not name LUADIR
    SCRIPT_DIRS = "no",
  },
}
