"""Monitoring outputs: Prometheus /metrics and statsd."""
