"""Policy: compile a spec into rules, decide requests, inspect bodies, filter answers."""
