"""Benchmarks: a load generator for any OCPP 1.6J server, a bare echo server, and the runner."""
