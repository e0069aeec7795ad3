"""``trinsq pub``: to_nsq v1.3.0, stdin split on a delimiter and published to a topic on
every nsqd given, optionally throttled."""

from trinsq.tools.pub._flags import PubOptions, parse_pub_args
from trinsq.tools.pub._run import publish_stream, run_pub

__all__ = ["PubOptions", "parse_pub_args", "publish_stream", "run_pub"]
