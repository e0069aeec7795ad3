"""``trinsq tail``: nsq_tail v1.3.0, each message of one or more topics printed to stdout.

The runner is :func:`trinsq.tools.tail._run.run_tail`; it is not imported here, so that parsing
the command line does not load the client."""

from trinsq.tools.tail._flags import TailOptions, parse_tail_args

__all__ = ["TailOptions", "parse_tail_args"]
