"""Go's standard logger line (``log.Printf`` / ``log.Fatal`` with the default flags), which the
NSQ tools use for their fatal errors: local date and time, a space, the message."""

from __future__ import annotations

import time

__all__ = ["go_log_line"]


def go_log_line(message: str, now: float | None = None) -> str:
    """``message`` as Go's log package prints it, e.g. ``2026/12/02 16:04:05 message``."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
    return f"{stamp} {message}"
