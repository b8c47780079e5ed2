"""Benchmarks: ``python -m benchmarks [--quick]``. Every speed is reported as a ratio against a reference measured in
the same process, on the same data, so the numbers hold across machines of different speed."""
