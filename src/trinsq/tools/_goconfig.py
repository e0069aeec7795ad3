"""go-nsq's ``ConfigFlag`` (config_flag.go, config.go v1.1.0), the ``--consumer-opt`` /
``--producer-opt`` flag of the NSQ tools: ``name,value`` (or ``name`` alone for true) sets one
go-nsq ``Config`` option, here mapped onto :class:`trinsq.client.ClientConfig` keyword arguments.

Sans-IO apart from reading a ``tls_root_ca_file`` (go-nsq reads it when the flag is set). Errors
carry go-nsq's words; the tools report them as Go's flag package does
(``invalid value "..." for flag -consumer-opt: <error>``). Options go-nsq has that
ClientConfig cannot honour (``local_addr``, ``lookupd_poll_timeout``, ``tls_config``,
``tls_min_version``, ``skip_lookupd_authorization=false``) are refused rather than ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import attrs

from trinsq.common._durations import format_go_duration, parse_go_duration
from trinsq.common._flagparse import UsageError, option

__all__ = [
    "ConfigFlagError",
    "client_config_values",
    "consumer_opt_option",
    "flag_config_values",
]

_Kind = Literal["duration", "int", "uint", "float", "bool", "string", "strategy"]


class ConfigFlagError(ValueError):
    """A ``--consumer-opt`` value go-nsq would refuse; ``str()`` is go-nsq's error text."""


@attrs.frozen
class _Option:
    kind: _Kind
    field: str  # the ClientConfig keyword
    low: float | None = None  # go-nsq's min/max tags, in the option's unit (seconds)
    high: float | None = None
    convert: Callable[[Any], Any] | None = None


def _off_if_negative(value: float) -> float:
    """go-nsq sends a negative duration or size as ``-1`` (off); ClientConfig's spelling."""
    return -1 if value < 0 else value


_MINUTE: Final = 60.0
_OPTIONS: Final[dict[str, _Option]] = {
    "dial_timeout": _Option("duration", "dial_timeout"),
    "read_timeout": _Option("duration", "read_timeout", 0.1, 5 * _MINUTE),
    "write_timeout": _Option("duration", "write_timeout", 0.1, 5 * _MINUTE),
    "lookupd_poll_interval": _Option("duration", "lookupd_poll_interval", 0.01, 5 * _MINUTE),
    "lookupd_poll_jitter": _Option("float", "lookupd_poll_jitter", 0, 1),
    "max_requeue_delay": _Option("duration", "max_requeue_delay", 0, 60 * _MINUTE),
    "default_requeue_delay": _Option("duration", "default_requeue_delay", 0, 60 * _MINUTE),
    "backoff_strategy": _Option("strategy", "backoff_strategy"),
    "max_backoff_duration": _Option("duration", "max_backoff_duration", 0, 60 * _MINUTE),
    "backoff_multiplier": _Option("duration", "backoff_multiplier", 0, 60 * _MINUTE),
    "max_attempts": _Option("uint", "max_attempts", 0, 65535),
    "low_rdy_idle_timeout": _Option("duration", "low_rdy_idle_timeout", 1, 5 * _MINUTE),
    "low_rdy_timeout": _Option("duration", "low_rdy_timeout", 1, 5 * _MINUTE),
    "rdy_redistribute_interval": _Option("duration", "rdy_redistribute_interval", 0.001, 5),
    "client_id": _Option("string", "client_id"),
    "hostname": _Option("string", "hostname"),
    "user_agent": _Option("string", "user_agent"),
    "heartbeat_interval": _Option("duration", "heartbeat_interval", convert=_off_if_negative),
    "sample_rate": _Option("int", "sample_rate", 0, 99),
    "tls_v1": _Option("bool", "tls"),
    "deflate": _Option("bool", "deflate"),
    "deflate_level": _Option("int", "deflate_level", 1, 9),
    "snappy": _Option("bool", "snappy"),
    "output_buffer_size": _Option("int", "output_buffer_size", convert=_off_if_negative),
    "output_buffer_timeout": _Option("duration", "output_buffer_timeout", convert=_off_if_negative),
    "max_in_flight": _Option("int", "max_in_flight", 0),
    "msg_timeout": _Option("duration", "msg_timeout", 0),
    "auth_secret": _Option("string", "auth_secret"),
    # go-nsq's tlsConfig handler
    "tls_insecure_skip_verify": _Option("bool", "tls_verify", convert=lambda skip: not skip),
    "tls_cert": _Option("string", "tls_cert_file"),
    "tls_key": _Option("string", "tls_key_file"),
}
# go-nsq options with no ClientConfig counterpart.
_UNSUPPORTED: Final = frozenset(
    {"local_addr", "lookupd_poll_timeout", "tls_config", "tls_min_version"}
)
_INT64: Final = (-(1 << 63), (1 << 63) - 1)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_int(text: str, *, unsigned: bool) -> int:
    """strconv.ParseInt / ParseUint base 10 (go-nsq's coerceInt64 / coerceUint64)."""
    function = "ParseUint" if unsigned else "ParseInt"
    body = text[1:] if text[:1] in ("+", "-") and not unsigned else text
    if not body.isascii() or not body.isdigit():
        raise ValueError(f"strconv.{function}: parsing {_quote(text)}: invalid syntax")
    value = int(text)
    if (
        not (0 if unsigned else _INT64[0])
        <= value
        <= (2 * _INT64[1] + 1 if unsigned else _INT64[1])
    ):
        raise ValueError(f"strconv.{function}: parsing {_quote(text)}: value out of range")
    return value


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {_quote(text)}: invalid syntax")


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"strconv.ParseFloat: parsing {_quote(text)}: invalid syntax") from None


def _coerce(option: _Option, value: str | bool) -> Any:
    """go-nsq's ``coerce``: a flag value (a string, or True for a name given alone)."""
    if isinstance(value, bool):  # ConfigFlag sets a name given alone to true
        if option.kind == "bool":
            return True
        if option.kind == "string":
            return "%!s(bool=true)"  # Go's fmt.Sprintf("%s", true)
        raise ValueError("invalid value type")
    if option.kind == "duration":
        return parse_go_duration(value)
    if option.kind in ("int", "uint"):
        return _parse_int(value, unsigned=option.kind == "uint")
    if option.kind == "float":
        return _parse_float(value)
    if option.kind == "bool":
        return _parse_bool(value)
    if option.kind == "strategy":
        if value in ("", "exponential"):
            return "exponential"  # ClientConfig converts the name to its BackoffStrategy
        if value == "full_jitter":
            return value
        raise ValueError("invalid value type")
    return value


def _show(option: _Option, value: float) -> str:
    """A value as go-nsq's ``%v`` prints it in a range error."""
    if option.kind == "duration":
        return format_go_duration(value)
    if option.kind == "float":
        return f"{value:g}"
    return str(int(value))


def _set(name: str, value: str | bool, values: dict[str, Any]) -> None:
    """go-nsq's ``Config.Set(name, value)`` into ClientConfig keyword ``values``."""
    if name == "skip_lookupd_authorization":
        try:
            skip = True if isinstance(value, bool) else _parse_bool(value)
        except ValueError as exc:
            raise ConfigFlagError(f"failed to coerce option {name} ({value}) - {exc}") from None
        if not skip:
            raise ConfigFlagError(f"option {name} false is not supported by trinsq")
        return
    if name == "tls_root_ca_file":
        _set_root_ca(value, values)
        return
    if name in _UNSUPPORTED:
        raise ConfigFlagError(f"option {name} is not supported by trinsq")
    option = _OPTIONS.get(name)
    if option is None:
        raise ConfigFlagError(f"invalid option {name}")
    try:
        coerced = _coerce(option, value)
    except ValueError as exc:
        shown = "true" if value is True else value
        raise ConfigFlagError(f"failed to coerce option {name} ({shown}) - {exc}") from None
    if option.low is not None and coerced < option.low:
        low, got = _show(option, option.low), _show(option, coerced)
        raise ConfigFlagError(f"invalid {name} ! {got} < {low}")
    if option.high is not None and coerced > option.high:
        high, got = _show(option, option.high), _show(option, coerced)
        raise ConfigFlagError(f"invalid {name} ! {got} > {high}")
    values[option.field] = option.convert(coerced) if option.convert else coerced


def _set_root_ca(value: str | bool, values: dict[str, Any]) -> None:
    """go-nsq reads the CA file as the flag is set, and fails then."""
    if isinstance(value, bool):
        raise ConfigFlagError("ERROR: true is not a string")
    try:
        with open(value, "rb") as file:
            pem = file.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigFlagError(
            f"ERROR: failed to read custom Certificate Authority file open {value}: {reason}"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigFlagError(
            "ERROR: failed to append certificates from Certificate Authority file"
        )
    values["tls_ca_file"] = value


def parse_config_flag(text: str, values: dict[str, Any]) -> None:
    """One ``--consumer-opt`` value into ``values`` (ClientConfig keywords).

    Raises:
        ConfigFlagError: go-nsq's error for it.
    """
    name, has_value, value = text.partition(",")
    _set(name.replace("-", "_"), value if has_value else True, values)


def client_config_values(texts: Iterable[str]) -> dict[str, Any]:
    """The ClientConfig keyword arguments set by ``--consumer-opt`` values, in order (a later
    one wins).

    Raises:
        ConfigFlagError: go-nsq's error for the first value it refuses.
    """
    values: dict[str, Any] = {}
    for text in texts:
        parse_config_flag(text, values)
    return values


def flag_config_values(texts: Iterable[str], flag: str) -> dict[str, Any]:
    """:func:`client_config_values` of a tool's repeatable ``flag`` (``consumer-opt``,
    ``producer-opt``), a refusal reported as Go's flag package reports it.

    Raises:
        UsageError: ``invalid value "<value>" for flag -<flag>: <go-nsq's error>``.
    """
    values: dict[str, Any] = {}
    for text in texts:
        try:
            parse_config_flag(text, values)
        except ConfigFlagError as exc:
            raise UsageError(f"invalid value {_quote(text)} for flag -{flag}: {exc}") from None
    return values


def consumer_opt_option() -> Any:
    """The ``--consumer-opt`` option of a consuming tool's options class, as nsq's tools
    describe it; :func:`flag_config_values` reads its values."""
    return option(
        factory=list,
        usage=(
            "option to passthrough to nsq.Consumer (may be given multiple times, "
            "http://godoc.org/github.com/nsqio/go-nsq#Config)"
        ),
        kind="values",
    )
