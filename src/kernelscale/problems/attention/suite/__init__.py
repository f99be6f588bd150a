"""The built-in attention suite: each file is a variant (DESIGN §4) runnable on its own."""
