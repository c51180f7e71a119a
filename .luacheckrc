std = "lua54"
self = false
max_line_length = 130
exclude_files = { "build", "build-san", "build-fuzz" }
