"""trinsq's benchmark suite: load generators for any NSQ-compatible nsqd (see docs/benchmarks.md).

The generators use only the standard library and run in their own processes. Not part of the
trinsq distribution: run it from a checkout with ``python -m benchmarks <scenario>``.
"""
