"""A differential fuzzer: mutated requests through the real proxy, a recording fake daemon behind
it, and an oracle that re-decides every request the daemon received as the daemon read it."""
