"""go-diskqueue v1.1.0's on-disk format, without I/O: file names, record framing, metadata.

``<name>.diskqueue.%06d.dat`` files hold records ``[int32 BE length][payload]`` back to back;
``<name>.diskqueue.meta.dat`` holds
``"<depth>\\n<readFileNum>,<readPos>\\n<writeFileNum>,<writePos>\\n"``.
"""

from __future__ import annotations

import os
import re
import struct
from typing import Final

__all__ = [
    "INT64_MAX",
    "LENGTH",
    "disk_queue_file_name",
    "format_metadata",
    "impossible_positions",
    "metadata_file_name",
    "parse_metadata",
    "split_records",
]

# go-diskqueue reads the length as int32, so a length with the top bit set is negative.
LENGTH: Final = struct.Struct(">i")
_METADATA: Final = re.compile(r"(-?\d+)\n(-?\d+),(-?\d+)\n(-?\d+),(-?\d+)\n?")
INT64_MAX: Final = (1 << 63) - 1  # go-diskqueue's numbers are int64s


def disk_queue_file_name(data_path: str, name: str, number: int) -> str:
    return os.path.join(data_path, f"{name}.diskqueue.{number:06d}.dat")


def metadata_file_name(data_path: str, name: str) -> str:
    return os.path.join(data_path, f"{name}.diskqueue.meta.dat")


def format_metadata(depth: int, read: tuple[int, int], write: tuple[int, int]) -> str:
    return f"{depth}\n{read[0]},{read[1]}\n{write[0]},{write[1]}\n"


def parse_metadata(text: str) -> tuple[int, int, int, int, int] | None:
    """``(depth, read file, read position, write file, write position)``, or None."""
    match = _METADATA.match(text)
    if match is None:
        return None
    depth, read_num, read_pos, write_num, write_pos = map(int, match.groups())
    return depth, read_num, read_pos, write_num, write_pos


def impossible_positions(recorded: tuple[int, int, int, int, int]) -> str | None:
    """What makes parsed metadata impossible for any queue to have written, or None.

    A negative depth is possible: go-diskqueue and trinsq both count down past zero while
    salvaging records that stale metadata did not count, and save that.
    """
    depth, read_num, read_pos, write_num, write_pos = recorded
    if max(recorded) > INT64_MAX or depth < -INT64_MAX - 1:
        return "a number beyond int64"
    if min(read_num, read_pos, write_num, write_pos) < 0:
        return "a negative position"
    if (read_num, read_pos) > (write_num, write_pos):
        return "the read position is past the write position"
    return None


def split_records(
    data: bytes, offset: int, available: int, limit: int, smallest: int, largest: int
) -> tuple[list[bytes], int]:
    """Up to ``limit`` whole records framed in ``data`` from ``offset``, using no more than
    ``available`` bytes, and the offset after them. Stops before a length outside
    ``smallest..largest``: the caller decides what such a length means."""
    end = min(len(data), offset + available)
    unpack = LENGTH.unpack_from
    records: list[bytes] = []
    while len(records) < limit and offset + 4 <= end:
        (size,) = unpack(data, offset)
        stop = offset + 4 + size
        if size < smallest or size > largest or stop > end:
            break
        records.append(data[offset + 4 : stop])
        offset = stop
    return records, offset
