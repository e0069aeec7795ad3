"""Where a disk queue starts: its metadata read back and checked against its data files.

go-diskqueue's retrieveMetaData, with the check of the write file's size, and recovery where
the metadata cannot be trusted (_diskrecover.py). Blocking file I/O and nothing kept, so a
call that fails (out of descriptors) can simply be made again. No trio.
"""

from __future__ import annotations

import logging
import os

from ._diskformat import disk_queue_file_name, metadata_file_name, parse_metadata
from ._diskrecover import count_records, data_file_numbers, data_files_in, impossible_metadata

__all__ = ["read_positions"]


def read_positions(
    name: str, data_path: str, sizes: tuple[int, int], log: logging.Logger
) -> tuple[int, int, int, int, int]:
    """``(depth, read file, read position, write file, write position)`` to start from, for
    records of ``sizes`` (smallest, largest) bytes.

    No metadata gives zeros. Metadata that does not parse or is impossible has every data
    file read from the start. A write file that does not end at the recorded position
    (metadata not synced before a crash, or data files without metadata) is left for the
    reader to salvage: writing goes on in a new file. A negative depth is counted again.

    Raises:
        OSError: the metadata or the data files cannot be looked at (EMFILE, EACCES, EIO).
    """
    meta_path = metadata_file_name(data_path, name)
    depth = read_num = read_pos = write_num = write_pos = 0
    try:
        with open(meta_path, "rb") as f:
            text: str | None = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        text = None
    if text is not None:
        recorded = parse_metadata(text)
        read_file = disk_queue_file_name(data_path, name, recorded[1]) if recorded else ""
        problem = recorded and impossible_metadata(recorded, read_file)
        if recorded is None or problem:
            log.error(
                "DISKQUEUE(%s) failed to retrieveMetaData - %s is not valid metadata%s",
                name,
                meta_path,
                f" ({problem})" if problem else "",
            )
            numbers = data_file_numbers(data_path, name)
            if numbers:  # read every data file from the start, and write after the last
                read_num, write_num = numbers[0], numbers[-1] + 1
                read, write = (read_num, 0), (write_num, 0)
                depth = count_records(data_path, name, numbers, read, write, sizes)
                what = (name, depth, numbers[0], numbers[-1])
                log.warning("DISKQUEUE(%s) reading all data: %d records in files %d-%d", *what)
        else:
            depth, read_num, read_pos, write_num, write_pos = recorded
    path = disk_queue_file_name(data_path, name, write_num)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = 0
    if size != write_pos:
        log.warning(
            "DISKQUEUE(%s) %s writePos %d != size %d, new file", name, path, write_pos, size
        )
        write_num += 1
        write_pos = 0
    if depth < 0:
        # A count that went below zero while salvaging (go-diskqueue's too): count again.
        files = data_files_in(data_path, name, range(read_num, write_num + 1))
        read, write = (read_num, read_pos), (write_num, write_pos)
        depth = count_records(data_path, name, files, read, write, sizes)
    return depth, read_num, read_pos, write_num, write_pos
