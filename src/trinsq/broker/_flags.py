"""The ``trinsq broker`` command line: nsqd's flags, Go flag syntax, and nsqd's TOML config file.

argparse is not used because Go's flag package differs from it in ways nsqd users rely on:
one or two dashes for long names, ``-flag value`` taking the next argument even if it starts
with ``-``, booleans only ever set with ``=``, no abbreviations, and errors worded as Go words
them. The parser here follows Go's rules; the config file follows go-options (used by nsqd):
a command-line flag beats the file, which beats the default.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any, Literal

import attrs

from trinsq._durations import format_go_duration, parse_go_duration
from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.broker._options import BrokerOptions

__all__ = ["UsageError", "parse_broker_args"]

_Kind = Literal["bool", "int", "string", "duration", "level"]
_Value = bool | int | float | str


class UsageError(Exception):
    """The command line or config file cannot be used; ``str()`` is one line for the user."""


@attrs.frozen
class _Flag:
    name: str
    kind: _Kind
    usage: str
    sets_option: bool = True  # False for flags that configure no BrokerOptions field
    cfg_key: str = ""  # config file key when it is not the field name (nsqd's cfg tag)

    @property
    def field(self) -> str | None:
        """The BrokerOptions attribute: the flag name with '-' turned into '_'."""
        return self.name.replace("-", "_") if self.sets_option else None


_REGISTERED = "{} port that will be registered with lookupd (defaults to the port listened on)"
_FLUSH = "client configurable duration of time between flushing to a client"
_FLAGS = (
    _Flag("version", "bool", "print version string", sets_option=False),
    _Flag("config", "string", "path to config file", sets_option=False),
    _Flag("log-level", "level", "set log verbosity: debug, info, warn, error, or fatal"),
    _Flag("log-prefix", "string", "log message prefix"),
    _Flag("verbose", "bool", "[deprecated] has no effect, use --log-level", sets_option=False),
    _Flag(
        "node-id",
        "int",
        "unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)",
        cfg_key="id",
    ),
    _Flag("worker-id", "bool", "[deprecated] use --node-id", sets_option=False),
    _Flag("tcp-address", "string", "<addr>:<port> to listen on for TCP clients"),
    _Flag("http-address", "string", "<addr>:<port> to listen on for HTTP clients (empty: no HTTP)"),
    _Flag(
        "broadcast-address",
        "string",
        "address that will be registered with lookupd (defaults to the OS hostname)",
    ),
    _Flag("broadcast-tcp-port", "int", _REGISTERED.format("TCP")),
    _Flag("broadcast-http-port", "int", _REGISTERED.format("HTTP")),
    _Flag("data-path", "string", "path to store disk-backed messages"),
    _Flag("mem-queue-size", "int", "number of messages to keep in memory (per topic/channel)"),
    _Flag("max-bytes-per-file", "int", "number of bytes per diskqueue file before rolling"),
    _Flag("sync-every", "int", "number of messages per diskqueue fsync"),
    _Flag("sync-timeout", "duration", "duration of time per diskqueue fsync"),
    _Flag("msg-timeout", "duration", "default duration to wait before auto-requeing a message"),
    _Flag("max-msg-timeout", "duration", "maximum duration before a message will timeout"),
    _Flag("max-msg-size", "int", "maximum size of a single message in bytes"),
    _Flag("max-body-size", "int", "maximum size of a single command body"),
    _Flag("max-req-timeout", "duration", "maximum requeuing timeout for a message"),
    _Flag("max-rdy-count", "int", "maximum RDY count for a client"),
    _Flag(
        "max-channel-consumers",
        "int",
        "maximum channel consumer connection count per broker (default 0, i.e., unlimited)",
    ),
    _Flag(
        "max-heartbeat-interval",
        "duration",
        "maximum client configurable duration of time between client heartbeats",
    ),
    _Flag(
        "max-output-buffer-size",
        "int",
        "maximum client configurable size (in bytes) for a client output buffer",
    ),
    _Flag("max-output-buffer-timeout", "duration", "maximum " + _FLUSH),
    _Flag("min-output-buffer-timeout", "duration", "minimum " + _FLUSH),
    _Flag(
        "output-buffer-timeout",
        "duration",
        "default duration of time between flushing data to clients",
    ),
    _Flag("deflate", "bool", "enable deflate feature negotiation (client compression)"),
    _Flag(
        "max-deflate-level",
        "int",
        "max deflate compression level a client can negotiate (> values == > CPU usage)",
    ),
    _Flag("snappy", "bool", "enable snappy feature negotiation (client compression)"),
)
_BY_NAME = {flag.name: flag for flag in _FLAGS}
# Keys that do not map to an option are ignored, as nsqd does: its example config carries keys
# for lookupd, statsd, TLS and e2e percentiles, and an nsqd config file must keep working here.
_BY_CFG_KEY = {flag.cfg_key or flag.field: flag for flag in _FLAGS if flag.field}

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _quote(text: str) -> str:
    """Go's %q closely enough for error messages (JSON escaping, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def _parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


def _parse_int(text: str, *, prefixes: bool) -> int:
    """strconv.ParseInt into int64; base 0 (``prefixes``) as Go flags use, else base 10.

    Base 0 takes 0x/0o/0b, a bare leading 0 for octal, and ``_`` between digits.
    """
    negative = text.startswith("-")
    body = text[1:] if text[:1] in ("+", "-") else text
    pattern = r"[0-9A-Za-z_]+" if prefixes else r"[0-9]+"
    if not re.fullmatch(pattern, body, flags=re.ASCII):
        raise ValueError("parse error")
    if prefixes and len(body) > 1 and body[0] == "0" and body[1] in "01234567_":
        body = "0o" + body[1:]  # Go reads "010" as octal; Python refuses it
    try:
        value = int(body, 0 if prefixes else 10)
    except ValueError:
        raise ValueError("parse error") from None
    if negative:
        value = -value
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("value out of range")
    return value


def _parse_level(text: str) -> str:
    if text.lower() not in _LOG_LEVELS:
        raise ValueError(f"invalid log level '{text}' (debug, info, warn, error, fatal)")
    return text.lower()


def _from_text(flag: _Flag, text: str) -> _Value:
    """A command-line value (or a string in the config file) as the option's type."""
    if flag.kind == "bool":
        return _parse_bool(text)
    if flag.kind == "int":
        return _parse_int(text, prefixes=True)
    if flag.kind == "duration":
        return parse_go_duration(text)
    if flag.kind == "level":
        return _parse_level(text)
    return text


_EXPECTED = {
    "bool": "a boolean",
    "int": "an integer",
    "string": "a string",
    "duration": 'a duration string like "60s" or integer milliseconds',
    "level": "a log level string",
}
_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}


def _from_toml(flag: _Flag, value: object) -> _Value:
    """A config file value as the option's type, coerced as go-options does for nsqd."""
    if isinstance(value, str):
        if flag.kind == "int":
            return _parse_int(value, prefixes=False)
        return _from_text(flag, value)
    # bool before int: Python's True is an int, TOML's is not
    if isinstance(value, bool):
        if flag.kind == "bool":
            return value
    elif isinstance(value, int):
        if flag.kind == "int":
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValueError("value out of range")
            return value
        if flag.kind == "duration":
            return value / 1000  # go-options reads bare integers as milliseconds
    kind = _TOML_TYPES.get(type(value), "table" if isinstance(value, dict) else "date/time")
    raise ValueError(f"must be {_EXPECTED[flag.kind]}, not a TOML {kind}")


def _parse_command_line(argv: list[str]) -> dict[str, _Value] | None:
    """Go's FlagSet.Parse: the given flags by name (the last one wins), or None for --help."""
    given: dict[str, _Value] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        if len(arg) < 2 or not arg.startswith("-"):
            args.insert(0, arg)
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        flag = _BY_NAME.get(name)
        if flag is None:
            if name in ("h", "help"):
                print(_usage())
                return None
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            # a bool never takes the next argument: "-deflate false" is not "-deflate=false"
            try:
                given[name] = _parse_bool(value) if has_value else True
            except ValueError as exc:
                raise UsageError(
                    f"invalid boolean value {_quote(value)} for -{name}: {exc}"
                ) from None
            continue
        if not has_value:
            if not args:
                raise UsageError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        try:
            given[name] = _from_text(flag, value)
        except ValueError as exc:
            raise UsageError(f"invalid value {_quote(value)} for flag -{name}: {exc}") from None
    if args:
        # Go would silently stop parsing here and ignore the rest; a typo such as
        # "-deflate false -tcp-address ..." is better refused than half applied.
        raise UsageError(f"unexpected argument {_quote(args[0])}: flags start with -")
    return given


def _load_config(path: str) -> dict[str, _Value]:
    """The config file's values for known options, by BrokerOptions field name."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise UsageError(f"failed to load config file {path} - {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the parser wrote
        raise UsageError(f"failed to load config file {path} - {reason}") from None
    values: dict[str, _Value] = {}
    for key, raw in document.items():
        flag = _BY_CFG_KEY.get(key)
        if flag is None or flag.field is None:
            continue
        try:
            values[flag.field] = _from_toml(flag, raw)
        except ValueError as exc:
            shown = f" {_quote(raw)}" if isinstance(raw, str) else ""
            raise UsageError(f"config file {path}: invalid value{shown} for {key}: {exc}") from None
    return values


def _default_text(flag: _Flag, defaults: BrokerOptions) -> str:
    """Go's PrintDefaults suffix: nothing for zero values, strings quoted."""
    if flag.field is None:
        return ""
    value = getattr(defaults, flag.field)
    if value in (False, 0, ""):
        return ""
    if flag.kind == "bool":
        value = "true"  # Go's spelling; False never gets here
    elif flag.kind == "duration":
        value = format_go_duration(value)
    elif flag.kind == "string":
        value = _quote(value)
    return f" (default {value})"


_TYPE_NAMES = {"bool": "", "int": " int", "string": " string", "duration": " duration"}


def _usage() -> str:
    defaults = BrokerOptions()
    lines = [
        "Usage: trinsq broker [flags]",
        "",
        "Flags (one or two dashes; -flag=value or -flag value):",
    ]
    for flag in sorted(_FLAGS, key=lambda flag: flag.name):
        lines.append(f"  -{flag.name}{_TYPE_NAMES.get(flag.kind, ' ' + flag.kind)}")
        lines.append(f"    \t{flag.usage}{_default_text(flag, defaults)}")
    return "\n".join(lines)


def parse_broker_args(argv: list[str]) -> BrokerOptions | None:
    """Build validated BrokerOptions from nsqd-style arguments (without the program name).

    Returns None when the request was --version or --help, which have been printed to stdout;
    the caller should exit successfully.

    Raises:
        UsageError: for an unknown flag, a bad value or an unusable config file.
        OptionError: when the resulting options are refused by ``BrokerOptions.validate``.
    """
    given = _parse_command_line(argv)
    if given is None:
        return None
    if given.get("version"):
        print(f"trinsq broker v{__version__} (nsqd v{NSQ_COMPAT_VERSION} compatible)")
        return None
    config_path = given.get("config")
    values: dict[str, Any] = {}
    if isinstance(config_path, str) and config_path:
        values.update(_load_config(config_path))
    for name, value in given.items():
        field = _BY_NAME[name].field
        if field is not None:
            values[field] = value
    options = BrokerOptions(**values)
    options.validate()
    return options
