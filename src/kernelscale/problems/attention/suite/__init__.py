"""The built-in attention suite: each file is a variant runnable on its own."""
