"""Benchmarks of the monitor's own code (virtual time, no AWS)."""
