"""Log lines in nsqd's shape: ``<prefix><date> <time> <LEVEL>: <message>``."""

from __future__ import annotations

import logging
import sys
from typing import Final

import trio

__all__ = ["configure_logging", "error_text"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_NAMES = {logging.WARNING: "WARN", logging.CRITICAL: "FATAL"}
# For errors raised without a message (trio raises these bare).
_PHRASES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (trio.TooSlowError, "timed out"),
    (trio.ClosedResourceError, "connection closed"),
    (trio.BrokenResourceError, "connection broken"),
    (EOFError, "EOF"),
)


class _NsqFormatter(logging.Formatter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix
        self._second = -1
        self._when = ""

    def format(self, record: logging.LogRecord) -> str:
        # A busy broker logs several lines per connection: format each second's date once.
        second = int(record.created)
        if second != self._second:
            self._when = self.formatTime(record, "%Y/%m/%d %H:%M:%S")
            self._second = second
        when = self._when
        micros = int(record.created * 1_000_000) % 1_000_000
        level = _NAMES.get(record.levelno, record.levelname)
        line = f"{self._prefix}{when}.{micros:06d} {level}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, prefix: str) -> None:
    """Send trinsq's logs to stderr at ``level`` (nsqd's level names) with ``prefix``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NsqFormatter(prefix))
    root = logging.getLogger("trinsq")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level.lower()])
    root.propagate = False
    # The process is ours: skip what each record would gather and our lines never show (the
    # caller's file and line, thread and process names), as the logging docs advise.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # hypercorn's own info lines ("Running on ...") duplicate ours; keep its warnings.
    logging.getLogger("trinsq.http").setLevel(max(root.level, logging.WARNING))


def error_text(error: BaseException) -> str:
    """An error in a log line as nsqd writes one (Go's ``err.Error()``): its message, never
    its repr; a plain phrase, then its cause's text, when it has no message of its own."""
    text = str(error)
    if text:
        return text
    text = next((p for kind, p in _PHRASES if isinstance(error, kind)), type(error).__name__)
    cause = error.__cause__
    return f"{text} - {error_text(cause)}" if cause is not None else text
