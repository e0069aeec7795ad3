"""Runs of like commands read in one call, without a command object each.

A consumer's FINs and a producer's pipelined PUBs to one topic are most of what a busy
connection sends. Read one at a time, each costs a line search, a split, a command object and
a dispatch; read as a run they cost a slice each. Only commands that the one-at-a-time reader
(_v2.py) would read the same way qualify; anything else ends the run there, and that reader
takes over, errors and all.
"""

from __future__ import annotations

import re
import struct
from typing import Final

from ._v2states import MESSAGE_ID_LENGTH

__all__ = ["FIN_LINE", "finish_run", "publish_run", "whole_body"]

FIN_LINE: Final = 4 + MESSAGE_ID_LENGTH + 1  # b"FIN " + ID + b"\n"
# FIN, one space, an ID of 16 bytes with no space or newline, not ending in \r (which the
# line reader would strip), a bare newline.
_FIN_RUN: Final = re.compile(rb"(?:FIN [^ \n]{%d}[^ \n\r]\n)+" % (MESSAGE_ID_LENGTH - 1))
_INT32_BE: Final = struct.Struct(">i")


def finish_run(buffer: bytearray, pos: int, limit: int) -> tuple[list[bytes], int]:
    """The IDs of up to ``limit`` well-formed FIN lines from ``pos``, and where they end."""
    # One regex match in C finds the run, one slice copies it, and the IDs are cut from the
    # copy: a per-line loop of checks cost ~1 us a FIN.
    run = _FIN_RUN.match(buffer, pos, pos + limit * FIN_LINE)
    if run is None:
        return [], pos
    lines = run.group()
    return [lines[i : i + MESSAGE_ID_LENGTH] for i in range(4, len(lines), FIN_LINE)], run.end()


def publish_run(
    buffer: bytearray, pos: int, line: bytes, limit: int, max_size: int
) -> tuple[list[bytes], int]:
    """The bodies of up to ``limit`` complete PUBs from ``pos`` whose command line is exactly
    ``line`` (``PUB <topic>\\n``, already found valid) and whose size is valid (1 to
    ``max_size``), and where they end."""
    bodies: list[bytes] = []
    end = len(buffer)
    header = len(line) + 4
    unpack = _INT32_BE.unpack_from
    while len(bodies) < limit and end - pos >= header and buffer.startswith(line, pos):
        (size,) = unpack(buffer, pos + header - 4)
        start = pos + header
        if not 0 < size <= max_size or end - start < size:
            break
        bodies.append(bytes(buffer[start : start + size]))
        pos = start + size
    return bodies, pos


def whole_body(buffer: bytearray, pos: int, max_size: int) -> tuple[bytes | None, int]:
    """The body at ``pos`` (its 4-byte size, then the bytes) if it is all there and of a valid
    size (1 to ``max_size``), and where it ends; else None and ``pos``."""
    if len(buffer) - pos < 4:
        return None, pos
    (size,) = _INT32_BE.unpack_from(buffer, pos)
    if not 0 < size <= max_size or len(buffer) - pos - 4 < size:
        return None, pos
    return bytes(buffer[pos + 4 : pos + 4 + size]), pos + 4 + size
