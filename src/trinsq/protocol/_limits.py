"""The server limits the V2 parser enforces."""

from __future__ import annotations

import attrs

__all__ = ["Limits"]


@attrs.frozen
class Limits:
    """The server limits the parser enforces (nsqd option defaults)."""

    max_msg_size: int = 1_048_576
    max_body_size: int = 5_242_880
    max_rdy_count: int = 2500
    max_req_timeout_ms: int = 3_600_000
    # A command line, newline included, must fit nsqd's 16 KiB bufio read buffer.
    max_line_size: int = 16_384
