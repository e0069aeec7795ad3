"""A disk queue's data files read without trusting its metadata: which files there are and how
many records they hold.

For metadata that is unreadable or impossible (see :func:`impossible_positions`): the queue
then reads every data file from the start, so no record on disk is lost (records already
consumed may come again, which at-least-once delivery allows). And for a negative depth, which
is only a stale count: the records from the read position on are counted instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Final

from ._diskformat import INT64_MAX, LENGTH, disk_queue_file_name, impossible_positions

__all__ = ["count_records", "data_file_numbers", "data_files_in", "impossible_metadata"]

_CHUNK: Final = 1 << 20
_FEW: Final = 64


def impossible_metadata(recorded: tuple[int, int, int, int, int], read_file: str) -> str | None:
    """What makes parsed metadata impossible: see :func:`impossible_positions`, and a read
    position past the end of the read file (which may be gone: the reader then moves on)."""
    problem = impossible_positions(recorded)
    if problem is None:
        try:
            size = os.stat(read_file).st_size
        except FileNotFoundError:
            return None
        if recorded[2] > size:
            problem = f"the read position is past the end of {read_file}"
    return problem


def data_file_numbers(data_path: str, name: str) -> list[int]:
    """The numbers of ``name``'s data files in ``data_path``, in order."""
    pattern = re.compile(re.escape(name) + r"\.diskqueue\.(\d+)\.dat")
    numbers = []
    for entry in os.listdir(data_path):
        match = pattern.fullmatch(entry)
        if match is not None and int(match[1]) <= INT64_MAX:
            numbers.append(int(match[1]))
    return sorted(numbers)


def data_files_in(data_path: str, name: str, numbers: range) -> Sequence[int]:
    """The numbers in ``numbers`` that may name data files: all of them when there are few,
    else only those on disk (one directory listing instead of a lookup per number, for a
    queue whose metadata spans a gap of millions of files)."""
    if len(numbers) <= _FEW:
        return numbers
    return [number for number in data_file_numbers(data_path, name) if number in numbers]


def count_records(
    data_path: str,
    name: str,
    files: Sequence[int],
    read: tuple[int, int],
    write: tuple[int, int],
    sizes: tuple[int, int],
) -> int:
    """How many whole records of ``smallest..largest`` bytes (``sizes``) the data ``files``
    hold after the ``read`` cursor (file, position) and up to the ``write`` cursor (in other
    files: from the start, up to their size). In each file the count stops where the queue's
    reader would set the file aside."""
    count = 0
    for number in files:
        start = read[1] if number == read[0] else 0
        end = write[1] if number == write[0] else None
        path = disk_queue_file_name(data_path, name, number)
        count += _count_in_file(path, start, end, *sizes)
    return count


def _count_in_file(path: str, position: int, end: int | None, smallest: int, largest: int) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        if end is None:
            end = os.fstat(fd).st_size
        count = 0
        chunk, chunk_at = b"", position
        while position + 4 <= end:
            offset = position - chunk_at
            if offset + 4 > len(chunk):
                chunk, chunk_at, offset = os.pread(fd, _CHUNK, position), position, 0
                if len(chunk) < 4:
                    break
            (size,) = LENGTH.unpack_from(chunk, offset)
            if size < smallest or size > largest or position + 4 + size > end:
                break
            count += 1
            position += 4 + size
        return count
    finally:
        os.close(fd)
