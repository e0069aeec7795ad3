"""A failure that repeats until it clears: logged when it starts and when it clears, not on
each retry, so a broker out of descriptors or disk space does not flood its log. No trio."""

from __future__ import annotations

import logging

__all__ = ["StandingFailure"]


class StandingFailure:
    """Args:
    what: what keeps failing, as in "failed to <what>" (e.g. "sync disk queues").
    log: where the start and the end of the failure are told.

    Attributes:
        text: "failed to <what> - <error>" while it fails, else None.
    """

    def __init__(self, what: str, log: logging.Logger) -> None:
        self.what = what
        self.text: str | None = None
        self._errno: int | None = None
        self._log = log

    def failed(self, error: OSError, count: int = 1) -> None:
        """It failed (``count`` times at once); logged unless it was failing already with
        the same error number."""
        text = f"failed to {self.what} - {error}"
        if self.text is None or error.errno != self._errno:
            more = f" ({count} failures)" if count > 1 else ""
            self._log.error("%s%s; trying again until it works", text, more)
        self.text, self._errno = text, error.errno

    def cleared(self) -> None:
        """It worked: said once if it had been failing."""
        if self.text is not None:
            self._log.info("managed to %s again", self.what)
            self.text = self._errno = None
