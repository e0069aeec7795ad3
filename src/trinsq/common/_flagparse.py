"""Go flag syntax and go-options TOML config files, for ``trinsq broker`` and ``trinsq registry``.

argparse is not used because Go's flag package differs from it in ways NSQ users rely on:
one or two dashes for long names, ``-flag value`` taking the next argument even if it starts
with ``-``, booleans only ever set with ``=``, no abbreviations, and errors worded as Go words
them. The parser here follows Go's rules; the config file follows go-options (used by nsqd and
nsqlookupd): a command-line flag beats the file, which beats the default.

A command is described by a :class:`FlagSet`: its flag table, the options class the flags fill
in, its name for ``--help``, and its ``--version`` line. Each option is described once, on its
field (:func:`option`): the flag table (:func:`option_flags`), the non-negative checks
(:func:`check_non_negative`) and the broker's /config API are all read off those fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Generic, Literal, Protocol, TypeVar

import attrs

from trinsq.common._durations import format_go_duration, parse_go_duration
from trinsq.common._options import LOG_LEVELS

__all__ = [
    "DAEMON_FLAGS",
    "Flag",
    "FlagKind",
    "FlagSet",
    "OptionSpec",
    "UsageError",
    "check_non_negative",
    "option",
    "option_flags",
    "option_specs",
]

FlagKind = Literal[
    "bool",
    "int",
    "string",
    "duration",
    "level",
    "list",
    "strings",
    "floats",
    "tlsrequired",
    "tlsversion",
]
_Value = bool | int | float | str | list[str] | list[float]
_TLS_VERSIONS = ("tls1.0", "tls1.1", "tls1.2", "tls1.3")


class UsageError(Exception):
    """The command line or config file cannot be used; ``str()`` is one line for the user."""


@attrs.frozen
class Flag:
    """One command-line flag, and the config file key and option field it maps to."""

    name: str
    kind: FlagKind
    usage: str
    sets_option: bool = True  # False for flags that configure no options field
    cfg_key: str = ""  # config file key when it is not the field name (a go-options cfg tag)
    field_name: str = ""  # options attribute when it is not the flag name with '-' -> '_'

    @property
    def field(self) -> str | None:
        """The options attribute: the flag name with '-' turned into '_'."""
        if not self.sets_option:
            return None
        return self.field_name or self.name.replace("-", "_")


@attrs.frozen
class OptionSpec:
    """Everything said about one option besides its type and default.

    Attributes:
        usage: the --help text; empty for an option with no flag.
        kind: how the flag and config file value is parsed.
        flag: the flag name when it is not the field name with ``_`` turned into ``-``.
        cfg_key: the config file key when it is not the field name (a go-options cfg tag).
        non_negative: start-up refuses a negative value.
        config_api: readable through the broker's GET /config/<cfg_key or field>.
    """

    usage: str
    kind: FlagKind
    flag: str = ""
    cfg_key: str = ""
    non_negative: bool = False
    config_api: bool = False

    def flag_for(self, field_name: str) -> Flag:
        name = self.flag or field_name.replace("_", "-")
        default_field = name.replace("-", "_")
        return Flag(
            name,
            self.kind,
            self.usage,
            cfg_key=self.cfg_key,
            field_name="" if field_name == default_field else field_name,
        )


_SPEC = "trinsq.option"

# The flags every NSQ daemon has that set no option.
DAEMON_FLAGS: tuple[Flag, ...] = (
    Flag("version", "bool", "print version string", sets_option=False),
    Flag("config", "string", "path to config file", sets_option=False),
    Flag("verbose", "bool", "[deprecated] has no effect, use --log-level", sets_option=False),
)


def option(
    default: Any = attrs.NOTHING,
    *,
    usage: str = "",
    kind: FlagKind,
    factory: Callable[[], Any] | None = None,
    flag: str = "",
    cfg_key: str = "",
    non_negative: bool = False,
    config_api: bool = False,
) -> Any:
    """An options class field with its :class:`OptionSpec` (no ``usage``: no flag)."""
    spec = OptionSpec(usage, kind, flag, cfg_key, non_negative, config_api)
    if factory is not None:
        return attrs.field(factory=factory, metadata={_SPEC: spec})
    return attrs.field(default=default, metadata={_SPEC: spec})


def option_specs(options_class: type) -> dict[str, OptionSpec]:
    """Each described field of an attrs options class, by field name, in declaration order."""
    return {
        field.name: field.metadata[_SPEC]
        for field in attrs.fields(options_class)
        if _SPEC in field.metadata
    }


def option_flags(options_class: type) -> tuple[Flag, ...]:
    """The flags of every option that has a usage text."""
    return tuple(
        spec.flag_for(name) for name, spec in option_specs(options_class).items() if spec.usage
    )


def check_non_negative(options: Any, error: type[Exception]) -> None:
    """Raise ``error`` naming the first option marked ``non_negative`` that is negative."""
    for name, spec in option_specs(type(options)).items():
        if spec.non_negative and getattr(options, name) < 0:
            raise error(f"--{name.replace('_', '-')} must not be negative")


class _Options(Protocol):
    def validate(self) -> None: ...


_OptionsT = TypeVar("_OptionsT", bound=_Options)

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


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
    if text.lower() not in LOG_LEVELS:
        raise ValueError(f"invalid log level '{text}' (debug, info, warn, error, fatal)")
    return text.lower()


def _from_text(flag: Flag, text: str) -> _Value:
    """A command-line value (or a string in the config file) as the option's type."""
    if flag.kind == "bool":
        return _parse_bool(text)
    if flag.kind == "int":
        return _parse_int(text, prefixes=True)
    if flag.kind == "duration":
        return parse_go_duration(text)
    if flag.kind == "level":
        return _parse_level(text)
    if flag.kind == "list":
        # Go's StringArray (nsqd's repeatable flags): commas split one value into several.
        return [part.strip() for part in text.split(",")]
    if flag.kind == "strings":  # the tools' app.StringArray: each use is one whole value
        return [text]
    if flag.kind == "floats":  # nsqd's FloatArray, e.g. e2e percentiles "0.99,0.95"
        return [float(part) for part in text.split(",")]
    if flag.kind == "tlsrequired":
        # nsqd's tlsRequiredOption: a bool, or "tcp-https" (TLS for TCP, plain HTTP allowed)
        lowered = text.lower()
        if lowered == "tcp-https":
            return lowered
        return "true" if _parse_bool(lowered) else "false"
    if flag.kind == "tlsversion":
        lowered = text.lower() or "tls1.0"  # nsqd: an empty value keeps the default
        if lowered not in _TLS_VERSIONS:
            raise ValueError(f"unknown tlsVersionOption {_quote(text)}")
        return lowered
    return text


_EXPECTED = {
    "bool": "a boolean",
    "int": "an integer",
    "string": "a string",
    "duration": 'a duration string like "60s" or integer milliseconds',
    "level": "a log level string",
    "list": "an array of strings or a comma-separated string",
    "strings": "an array of strings",
    "floats": "an array of numbers or a comma-separated string",
    "tlsrequired": 'a boolean or "tcp-https"',
    "tlsversion": "one of tls1.0, tls1.1, tls1.2, tls1.3",
}
_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}


def _from_toml(flag: Flag, value: object) -> _Value:
    """A config file value as the option's type, coerced as go-options does."""
    if isinstance(value, str):
        if flag.kind == "int":
            return _parse_int(value, prefixes=False)
        return _from_text(flag, value)
    # bool before int: Python's True is an int, TOML's is not
    if isinstance(value, bool):
        if flag.kind == "bool":
            return value
        if flag.kind == "tlsrequired":
            return "true" if value else "false"
    elif isinstance(value, int):
        if flag.kind == "int":
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValueError("value out of range")
            return value
        if flag.kind == "duration":
            return value / 1000  # go-options reads bare integers as milliseconds
    elif (
        isinstance(value, list)
        and flag.kind == "list"
        and all(isinstance(item, str) for item in value)
    ):
        return list(value)
    elif (
        isinstance(value, list)
        and flag.kind == "floats"
        and all(isinstance(item, int | float) and not isinstance(item, bool) for item in value)
    ):
        return [float(item) for item in value]
    kind = _TOML_TYPES.get(type(value), "table" if isinstance(value, dict) else "date/time")
    raise ValueError(f"must be {_EXPECTED[flag.kind]}, not a TOML {kind}")


def _default_text(flag: Flag, defaults: object) -> str:
    """Go's PrintDefaults suffix: nothing for zero values, strings quoted."""
    if flag.field is None:
        return ""
    value = getattr(defaults, flag.field)
    if value is None or value in (False, 0, "") or value == []:  # None: unset, no default
        return ""
    if flag.kind == "bool":
        value = "true"  # Go's spelling; False never gets here
    elif flag.kind == "duration":
        value = format_go_duration(value)
    elif flag.kind == "string":
        value = _quote(value)
    return f" (default {value})"


_TYPE_NAMES = {
    "bool": "",
    "tlsrequired": "",
    "int": " int",
    "string": " string",
    "duration": " duration",
    "list": " value",
    "strings": " value",
}


@attrs.frozen
class FlagSet(Generic[_OptionsT]):
    """A command's flags and the options they build, parsed the way Go and go-options do.

    Every flag whose ``field`` is not None must name a keyword argument of ``options``. Two
    flag names drive the parse itself: ``version`` (a bool) prints ``version_line`` instead,
    and ``config`` (a string) names the TOML config file. Config file keys that match no flag
    are ignored, as the Go daemons do, so a config file written for nsqd or nsqlookupd, with
    keys for features trinsq lacks, keeps working.
    """

    program: str  # as shown in --help: "trinsq broker"
    version_line: str  # printed for --version
    flags: tuple[Flag, ...]
    options: Callable[..., _OptionsT]  # the options class; called with no arguments for defaults
    _by_name: dict[str, Flag] = attrs.field(init=False, repr=False)

    @_by_name.default
    def _index_flags(self) -> dict[str, Flag]:
        return {flag.name: flag for flag in self.flags}

    def parse(self, argv: list[str]) -> _OptionsT | None:
        """Build validated options from Go-style arguments (without the program name).

        Returns None when the request was --version or --help, which have been printed to
        stdout; the caller should exit successfully.

        Raises:
            UsageError: for an unknown flag, a bad value or an unusable config file.
            OptionError: when the options' ``validate`` refuses the result.
        """
        given = self._parse_command_line(argv)
        if given is None:
            return None
        if given.get("version"):
            print(self.version_line)
            return None
        config_path = given.get("config")
        values: dict[str, Any] = {}
        if isinstance(config_path, str) and config_path:
            values.update(self._load_config(config_path))
        for name, value in given.items():
            field = self._by_name[name].field
            if field is not None:
                values[field] = value
        options = self.options(**values)
        options.validate()
        return options

    def usage(self) -> str:
        """The --help text: every flag, sorted, with its type and non-zero default."""
        defaults = self.options()
        lines = [
            f"Usage: {self.program} [flags]",
            "",
            "Flags (one or two dashes; -flag=value or -flag value):",
        ]
        for flag in sorted(self.flags, key=lambda flag: flag.name):
            lines.append(f"  -{flag.name}{_TYPE_NAMES.get(flag.kind, ' ' + flag.kind)}")
            lines.append(f"    \t{flag.usage}{_default_text(flag, defaults)}")
        return "\n".join(lines)

    def _parse_command_line(self, argv: list[str]) -> dict[str, _Value] | None:
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
            flag = self._by_name.get(name)
            if flag is None:
                if name in ("h", "help"):
                    print(self.usage())
                    return None
                raise UsageError(f"flag provided but not defined: -{name}")
            if flag.kind == "tlsrequired" and has_value:
                pass  # a value: parsed below like any other
            elif flag.kind == "tlsrequired":
                given[name] = "true"  # IsBoolFlag in nsqd: given alone, it means true
                continue
            elif flag.kind == "bool":
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
                parsed = _from_text(flag, value)
                if flag.kind in (
                    "list",
                    "strings",
                    "floats",
                ):  # repeatable: every use adds to the list
                    previous = given.get(name, [])
                    assert isinstance(previous, list)
                    assert isinstance(parsed, list)
                    parsed = [*previous, *parsed]
                given[name] = parsed
            except ValueError as exc:
                raise UsageError(f"invalid value {_quote(value)} for flag -{name}: {exc}") from None
        if args:
            # Go would silently stop parsing here and ignore the rest; a typo such as
            # "-deflate false -tcp-address ..." is better refused than half applied.
            raise UsageError(f"unexpected argument {_quote(args[0])}: flags start with -")
        return given

    def _load_config(self, path: str) -> dict[str, _Value]:
        """The config file's values for known options, by options field name."""
        import tomllib  # only with --config: a start without one does without the parser

        try:
            with open(path, "rb") as file:
                document = tomllib.load(file)
        except OSError as exc:
            raise UsageError(f"failed to load config file {path} - {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            reason = " ".join(str(exc).split())  # one line, whatever the parser wrote
            raise UsageError(f"failed to load config file {path} - {reason}") from None
        by_key = {flag.cfg_key or flag.field: flag for flag in self.flags if flag.field}
        values: dict[str, _Value] = {}
        for key, raw in document.items():
            flag = by_key.get(key)
            if flag is None or flag.field is None:
                continue
            try:
                values[flag.field] = _from_toml(flag, raw)
            except ValueError as exc:
                shown = f" {_quote(raw)}" if isinstance(raw, str) else ""
                raise UsageError(
                    f"config file {path}: invalid value{shown} for {key}: {exc}"
                ) from None
        return values
