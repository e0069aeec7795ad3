"""``trinsq to-file`` (nsq_to_file v1.3.0): file names, rotation, gzip and the move from the
work directory to the output directory are sans-IO (:mod:`._filelogger`, :mod:`._naming`);
:mod:`._run` wires them to trinsq's client, one consumer per topic."""

from trinsq.tools.tofile._filelogger import FileLogger
from trinsq.tools.tofile._flags import parse_to_file_args
from trinsq.tools.tofile._naming import FilenameFormatError, compute_filename_format, go_strftime
from trinsq.tools.tofile._options import ToFileOptions


def run_tofile(options: ToFileOptions) -> int:
    """See :func:`trinsq.tools.tofile._run.run_to_file` (trio and the client are imported
    only to run)."""
    from trinsq.tools.tofile._run import run_to_file

    return run_to_file(options)


__all__ = [
    "FileLogger",
    "FilenameFormatError",
    "ToFileOptions",
    "compute_filename_format",
    "go_strftime",
    "parse_to_file_args",
    "run_tofile",
]
