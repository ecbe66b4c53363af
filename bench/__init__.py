"""Benchmarks of tillbox (run each module as a script; see README.md)."""
