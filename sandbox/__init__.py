"""Sandbox material for tests, benchmarks and demos: real public data sets, shipped in the repo."""
