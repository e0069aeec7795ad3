"""GET and PUT /config/<opt>: nsqd's option names and value encodings (nsqd/http.go doConfig).

Names are the flag names with ``-`` turned into ``_`` (``id`` for --node-id, as nsqd's cfg
tag says). Values go out as nsqd writes them: strings raw, durations as integer nanoseconds,
the log level as an integer (1 debug ... 5 fatal), everything else as JSON.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from ._options import BrokerOptions

__all__ = ["LOG_LEVELS", "apply_config", "config_value"]

LOG_LEVELS: Final = {"debug": 1, "info": 2, "warn": 3, "error": 4, "fatal": 5}
_PYTHON_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}

_DURATIONS: Final = frozenset(
    {
        "http_client_connect_timeout", "http_client_request_timeout",
        "sync_timeout", "msg_timeout", "max_msg_timeout", "max_req_timeout",
        "max_heartbeat_interval", "max_output_buffer_timeout", "min_output_buffer_timeout",
        "output_buffer_timeout",
    }
)  # fmt: skip
_FIELDS: Final = {
    "id": "node_id",
    **{
        name: name
        for name in (
            "log_prefix", "tcp_address", "http_address", "broadcast_address",
            "broadcast_tcp_port", "broadcast_http_port", "data_path", "mem_queue_size",
            "max_bytes_per_file", "sync_every", "max_msg_size", "max_body_size", "max_rdy_count",
            "max_output_buffer_size", "max_channel_consumers", "deflate", "max_deflate_level",
            "snappy", *_DURATIONS,
        )
    },
}  # fmt: skip


def config_value(options: BrokerOptions, opt: str) -> Any | None:
    """The value nsqd reports for ``opt``, or None when there is no such option."""
    if opt == "log_level":
        return LOG_LEVELS[options.log_level.lower()]
    if opt == "nsqlookupd_tcp_addresses":
        return list(options.lookupd_tcp_addresses)
    field = _FIELDS.get(opt)
    if field is None:
        return None
    value = getattr(options, field)
    if opt in _DURATIONS:
        return round(value * 1e9)
    return value


def apply_config(options: BrokerOptions, opt: str, body: bytes) -> bool:
    """Apply a PUT; returns False for a value nsqd would refuse (400 INVALID_VALUE).

    Raises:
        KeyError: ``opt`` cannot be changed at runtime (400 INVALID_OPTION).
    """
    if opt == "nsqlookupd_tcp_addresses":
        try:
            addresses = json.loads(body)
        except ValueError:
            return False
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            return False
        options.lookupd_tcp_addresses = addresses
        return True
    if opt != "log_level":
        raise KeyError(opt)
    level = body.decode("utf-8", "replace").lower()
    if level not in LOG_LEVELS:
        return False
    options.log_level = level
    logging.getLogger("trinsq").setLevel(_PYTHON_LEVELS[level])
    return True
