"""The core of ``trinsq to-file`` (nsq_to_file v1.3.0): file names, rotation, gzip and the move
from the work directory to the output directory, sans-IO with respect to the network. The
consuming side is wired to trinsq's client separately."""

from trinsq.tools.tofile._filelogger import FileLogger
from trinsq.tools.tofile._naming import FilenameFormatError, compute_filename_format, go_strftime
from trinsq.tools.tofile._options import ToFileOptions

__all__ = [
    "FileLogger",
    "FilenameFormatError",
    "ToFileOptions",
    "compute_filename_format",
    "go_strftime",
]
