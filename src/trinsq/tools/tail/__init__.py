"""``trinsq tail``: nsq_tail v1.3.0, each message of one or more topics printed to stdout."""

from trinsq.tools.tail._flags import TailOptions, parse_tail_args
from trinsq.tools.tail._run import run_tail

__all__ = ["TailOptions", "parse_tail_args", "run_tail"]
