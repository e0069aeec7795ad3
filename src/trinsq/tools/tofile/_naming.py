"""nsq_to_file's file names (v1.3.0, apps/nsq_to_file/file_logger.go and strftime.go), sans-IO.

``--filename-format`` (default ``<TOPIC>.<HOST><REV>.<DATETIME>.log``) is resolved in two steps:
once per topic, ``<TOPIC>``, ``<HOST>`` and ``<PID>`` are filled in, ``<REV>`` is dropped when
nothing can need a second file of the same name and refused when missing where it is needed,
and ``.gz`` is appended under ``--gzip``; then at each open ``<DATETIME>`` becomes the time in
``--datetime-format`` and ``<REV>`` the revision as ``-000000``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from trinsq.tools.tofile._gotime import go_time_format

__all__ = [
    "DEFAULT_DATETIME_FORMAT",
    "DEFAULT_FILENAME_FORMAT",
    "FilenameFormatError",
    "compute_filename_format",
    "go_strftime",
    "with_datetime",
    "with_rev",
]

DEFAULT_FILENAME_FORMAT: Final = "<TOPIC>.<HOST><REV>.<DATETIME>.log"
DEFAULT_DATETIME_FORMAT: Final = "%Y-%m-%d_%H"

# strftime directive -> Go reference-time chunk (jehiah/go-strftime, as nsq_to_file copies it)
_CONVERSION: Final = {
    "B": "January",
    "b": "Jan",
    "m": "01",
    "A": "Monday",
    "a": "Mon",
    "d": "02",
    "H": "15",
    "I": "03",
    "M": "04",
    "S": "05",
    "Y": "2006",
    "y": "06",
    "p": "PM",
    "Z": "MST",
    "z": "-0700",
    "%": "%",
}


class FilenameFormatError(ValueError):
    """``--filename-format`` cannot work with the other options; ``str()`` is nsq_to_file's."""


def go_strftime(format_: str, moment: datetime) -> str:
    """nsq_to_file's strftime: directives become a Go layout, and Go formats the whole
    layout (so literal text that spells a layout chunk is formatted too, as in nsq_to_file).
    An unknown directive is kept as written."""
    layout: list[str] = []
    index = 0
    while index < len(format_):
        if format_[index] == "%" and index + 1 < len(format_):
            chunk = _CONVERSION.get(format_[index + 1])
            if chunk is not None:
                layout.append(chunk)
                index += 2
                continue
        layout.append(format_[index])
        index += 1
    return go_time_format("".join(layout), moment)


def compute_filename_format(
    filename_format: str,
    *,
    topic: str,
    hostname: str,
    pid: int,
    host_identifier: str = "",
    gzip: bool = False,
    rotation: bool = False,
    separate_work_dir: bool = False,
) -> str:
    """One topic's file name pattern, still holding ``<DATETIME>`` (and ``<REV>`` when needed).

    Args:
        rotation: ``--rotate-size`` or ``--rotate-interval`` is set.
        separate_work_dir: ``--work-dir`` differs from ``--output-dir``.

    Raises:
        FilenameFormatError: ``<REV>`` is missing where a second file of a name may be needed.
    """
    short_hostname = hostname.split(".")[0]
    identifier = short_hostname
    if host_identifier:
        identifier = host_identifier.replace("<SHORT_HOST>", short_hostname)
        identifier = identifier.replace("<HOSTNAME>", hostname)
    pattern = filename_format
    if gzip or rotation or separate_work_dir:
        if "<REV>" not in pattern:
            raise FilenameFormatError(
                "missing <REV> in --filename-format when gzip, rotation, or work dir enabled"
            )
    else:
        pattern = pattern.replace("<REV>", "")
    pattern = pattern.replace("<TOPIC>", topic)
    pattern = pattern.replace("<HOST>", identifier)
    pattern = pattern.replace("<PID>", str(pid))
    if gzip and not pattern.endswith(".gz"):
        pattern += ".gz"
    return pattern


def with_datetime(pattern: str, datetime_format: str, moment: datetime) -> str:
    """The file name for ``moment``, ``<REV>`` still in it (nsq_to_file's currentFilename)."""
    return pattern.replace("<DATETIME>", go_strftime(datetime_format, moment))


def with_rev(name: str, rev: int) -> str:
    """``<REV>`` as nsq_to_file writes it: ``-000000``, ``-000001``, ..."""
    return name.replace("<REV>", f"-{rev:06d}")
