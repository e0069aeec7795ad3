"""go-nsq's ``ConfigFlag`` (config_flag.go, config.go ``Config.Set``): the ``--producer-opt`` /
``--consumer-opt`` values of the NSQ tools, ``name,value`` (or a bare ``name`` for true), as
:class:`~trinsq.client.ClientConfig` fields.

Names, value syntax (durations as Go durations, ints base 10, Go's bools), the min/max bounds of
go-nsq v1.1.0's struct tags and the error texts are go-nsq's, so a tool's command line carries
over. go-nsq options trinsq.client has no use for (``local_addr``, ``backoff_strategy``, the
``low_rdy_*`` and ``rdy_redistribute_interval`` tuning, ``lookupd_poll_timeout``,
``skip_lookupd_authorization``, ``tls_min_version``) are checked the same way and then ignored.
Cross-field rules (heartbeat below read timeout, ...) are ClientConfig's, applied when it is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

import attrs

from trinsq.common._durations import format_go_duration, parse_go_duration

__all__ = ["ConfigFlagError", "config_fields"]

_Kind = Literal["duration", "int", "uint", "float", "bool", "string", "choice"]


class ConfigFlagError(ValueError):
    """One option that go-nsq's ``Config.Set`` would refuse; ``str()`` is its message."""


@attrs.frozen
class _Option:
    kind: _Kind
    field: str | None  # the ClientConfig field; None: accepted, checked, ignored
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


_D: Final = "duration"
_I: Final = "int"
_OPTIONS: dict[str, _Option] = {
    "dial_timeout": _Option(_D, "dial_timeout"),
    "read_timeout": _Option(_D, "read_timeout", 0.1, 300),
    "write_timeout": _Option(_D, "write_timeout", 0.1, 300),
    "local_addr": _Option("string", None),
    "lookupd_poll_interval": _Option(_D, "lookupd_poll_interval", 0.01, 300),
    "lookupd_poll_jitter": _Option("float", "lookupd_poll_jitter", 0, 1),
    "lookupd_poll_timeout": _Option(_D, None),
    "max_requeue_delay": _Option(_D, "max_requeue_delay", 0, 3600),
    "default_requeue_delay": _Option(_D, "default_requeue_delay", 0, 3600),
    "backoff_strategy": _Option("choice", None, choices=("", "exponential", "full_jitter")),
    "max_backoff_duration": _Option(_D, "max_backoff_duration", 0, 3600),
    "backoff_multiplier": _Option(_D, "backoff_multiplier", 0, 3600),
    "max_attempts": _Option("uint", "max_attempts", 0, 65535),
    "low_rdy_idle_timeout": _Option(_D, None, 1, 300),
    "low_rdy_timeout": _Option(_D, None, 1, 300),
    "rdy_redistribute_interval": _Option(_D, None, 0.001, 5),
    "client_id": _Option("string", "client_id"),
    "hostname": _Option("string", "hostname"),
    "user_agent": _Option("string", "user_agent"),
    "heartbeat_interval": _Option(_D, "heartbeat_interval"),
    "sample_rate": _Option(_I, "sample_rate", 0, 99),
    "tls_v1": _Option("bool", "tls"),
    "deflate": _Option("bool", "deflate"),
    "deflate_level": _Option(_I, "deflate_level", 1, 9),
    "snappy": _Option("bool", "snappy"),
    "output_buffer_size": _Option(_I, "output_buffer_size"),
    "output_buffer_timeout": _Option(_D, "output_buffer_timeout"),
    "max_in_flight": _Option(_I, "max_in_flight", 0),
    "msg_timeout": _Option(_D, "msg_timeout", 0),
    "auth_secret": _Option("string", "auth_secret"),
    "skip_lookupd_authorization": _Option("bool", None),
    # go-nsq's tlsConfig handler
    "tls_root_ca_file": _Option("string", "tls_ca_file"),
    "tls_insecure_skip_verify": _Option("bool", "tls_verify"),
    "tls_cert": _Option("string", "tls_cert_file"),
    "tls_key": _Option("string", "tls_key_file"),
    "tls_min_version": _Option("choice", None, choices=("ssl3.0", "tls1.0", "tls1.1", "tls1.2")),
}

_INT64 = 1 << 63


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_int(text: str, function: str, low: int, high: int) -> int:
    """strconv.ParseInt / ParseUint with base 10, and their error texts."""
    body = text[1:] if text[:1] in "+-" and function == "ParseInt" else text
    if not body or not body.isascii() or not body.isdigit():
        raise ConfigFlagError(f"strconv.{function}: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not low <= value <= high:
        raise ConfigFlagError(f"strconv.{function}: parsing {_go_quote(text)}: value out of range")
    return value


def _coerce(option: _Option, value: str | bool) -> Any:
    """go-nsq's ``coerce`` of a flag's value (a string, or True for a bare name)."""
    if option.kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise ConfigFlagError(f"strconv.ParseBool: parsing {_go_quote(value)}: invalid syntax")
    if option.kind == "string":
        return "%!s(bool=true)" if value is True else value  # Go's fmt.Sprintf("%s", true)
    if isinstance(value, bool):
        raise ConfigFlagError("invalid value type")
    if option.kind == "duration":
        try:
            return parse_go_duration(value)
        except ValueError as exc:
            raise ConfigFlagError(str(exc)) from None
    if option.kind == "int":
        return _parse_int(value, "ParseInt", -_INT64, _INT64 - 1)
    if option.kind == "uint":
        return _parse_int(value, "ParseUint", 0, 2 * _INT64 - 1)
    if option.kind == "float":
        try:
            return float(value)
        except ValueError:
            raise ConfigFlagError(
                f"strconv.ParseFloat: parsing {_go_quote(value)}: invalid syntax"
            ) from None
    if value not in option.choices:  # "choice"
        raise ConfigFlagError("invalid value type")
    return value


def _shown(option: _Option, value: float) -> str:
    """A value as go-nsq's ``%v`` prints it in a bounds error."""
    if option.kind == "duration":
        return format_go_duration(value)
    if option.kind == "float":
        return f"{value:g}"
    return str(int(value))


def _set(fields: dict[str, Any], name: str, value: str | bool) -> None:
    option = _OPTIONS.get(name)
    if option is None:
        raise ConfigFlagError(f"invalid option {name}")
    try:
        coerced = _coerce(option, value)
    except ConfigFlagError as exc:
        if name == "tls_min_version":  # go-nsq's tlsConfig handler words it its own way
            raise ConfigFlagError(f"ERROR: {value} is not a tls version") from None
        shown = "true" if value is True else value
        raise ConfigFlagError(f"failed to coerce option {name} ({shown}) - {exc}") from None
    if option.low is not None and coerced < option.low:
        low, got = _shown(option, option.low), _shown(option, coerced)
        raise ConfigFlagError(f"invalid {name} ! {got} < {low}")
    if option.high is not None and coerced > option.high:
        high, got = _shown(option, option.high), _shown(option, coerced)
        raise ConfigFlagError(f"invalid {name} ! {got} > {high}")
    if name == "tls_root_ca_file":
        try:
            with open(coerced, "rb"):
                pass
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ConfigFlagError(
                f"ERROR: failed to read custom Certificate Authority file open {coerced}: {reason}"
            ) from None
    if option.field == "tls_verify":
        coerced = not coerced  # go-nsq's tls_insecure_skip_verify
    if option.field is not None:
        fields[option.field] = coerced


def config_fields(flag_values: Iterable[str], flag: str) -> dict[str, Any]:
    """ClientConfig keyword arguments from the values of the repeatable flag ``flag`` (e.g.
    ``producer-opt``), in order (a later value for the same option wins).

    Raises:
        ConfigFlagError: for the first value go-nsq would refuse, worded as Go's flag package
            reports it: ``invalid value "<value>" for flag -<flag>: <reason>``.
    """
    fields: dict[str, Any] = {}
    for flag_value in flag_values:
        name, has_value, value = flag_value.partition(",")
        try:
            _set(fields, name.replace("-", "_"), value if has_value else True)
        except ConfigFlagError as exc:
            raise ConfigFlagError(
                f"invalid value {_go_quote(flag_value)} for flag -{flag}: {exc}"
            ) from None
    return fields
