"""``trinsq stat``: nsq_stat v1.3.0, the periodic table of one channel's totals across the
nsqd nodes that carry its topic."""

from trinsq.tools.stat._flags import StatOptions, parse_stat_args
from trinsq.tools.stat._run import run_stat

__all__ = ["StatOptions", "parse_stat_args", "run_stat"]
