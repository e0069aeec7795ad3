"""The version trinsq reports; the NSQ version it speaks is what clients compare against."""

__version__ = "0.1.0"
# IDENTIFY and /info report this: clients and nsqadmin compare it as the nsqd version they talk to.
NSQ_COMPAT_VERSION = "1.3.0"
