local F = os.getenv("APPSTART_FIXTURES") .. "/fixture"
return { services = {
  a = { argv = { F, "notify=READY=1", "pause" }, restart = "always" },
  c = { argv = { F, "sleep=2.5", "notify=READY=1", "pause" }, restart = "always" },
} }
