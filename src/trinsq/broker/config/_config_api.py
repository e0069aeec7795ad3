"""GET and PUT /config/<opt>: nsqd's option names and value encodings (nsqd/http.go doConfig).

Names are the flag names with ``-`` turned into ``_`` (``id`` for --node-id, as nsqd's cfg
tag says). Values go out as nsqd writes them: strings raw, durations as integer nanoseconds,
the log level as an integer (1 debug ... 5 fatal), everything else as JSON.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from ...common._flagparse import option_specs
from ...protocol import JsonError, decode_json
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

# GET /config/<name> for every option described with config_api, by its cfg name.
_SPECS: Final = {
    spec.cfg_key or name: (name, spec)
    for name, spec in option_specs(BrokerOptions).items()
    if spec.config_api
}
_FIELDS: Final = {opt: name for opt, (name, _) in _SPECS.items()}
_DURATIONS: Final = frozenset(opt for opt, (_, spec) in _SPECS.items() if spec.kind == "duration")


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
            addresses = decode_json(body)
        except JsonError:
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
