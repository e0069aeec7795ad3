"""The ``trinsq to-file`` command line: nsq_to_file v1.3.0's flags (apps/nsq_to_file/
nsq_to_file.go), parsed with Go's flag syntax (:mod:`trinsq.common._flagparse`). A flag that
does not parse is a usage error (exit status 2); a refused value is nsq_to_file's fatal log
line (:meth:`ToFileOptions.problem`, exit status 1).
"""

from __future__ import annotations

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.tools._toolflags import tool_flags
from trinsq.tools.tofile._options import ToFileOptions

__all__ = ["USER_AGENT", "parse_to_file_args"]

#: nsq_to_file sets its own user agent on every consumer
USER_AGENT = f"trinsq-to-file/{__version__} nsq_to_file/{NSQ_COMPAT_VERSION}"

_TO_FILE = tool_flags("to-file", "nsq_to_file", ToFileOptions, "print version string")


def parse_to_file_args(argv: list[str]) -> ToFileOptions | None:
    """ToFileOptions from nsq_to_file-style arguments, not yet checked (see
    :meth:`ToFileOptions.problem`); None after --version or --help (see :func:`tool_flags`)."""
    return _TO_FILE.parse(argv)
