"""The command line of a Go NSQ tool under ``trinsq``: its options' flags plus ``--version``,
parsed with Go's flag syntax (:mod:`trinsq.common._flagparse`)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.common._flagparse import Flag, FlagSet, option_flags

__all__ = ["ToolOptions", "tool_flags"]


class ToolOptions(Protocol):
    def validate(self) -> None:
        """Nothing, for the Go tools: their refusals are fatal log lines, see problem()."""

    def problem(self) -> str | None:
        """The Go tool's start-up refusal, word for word, or None."""


_OptionsT = TypeVar("_OptionsT", bound=ToolOptions)


def tool_flags(
    command: str, go_tool: str, options: type[_OptionsT], version_usage: str
) -> FlagSet[_OptionsT]:
    """``trinsq <command>``'s flags: every option of ``options`` and ``--version`` (described
    as the Go tool describes it), which prints ``trinsq <command> v… (<go_tool> v1.3.0
    compatible)``. Its ``parse`` returns the options, not yet checked, or None after --version
    or --help (printed to stdout), and raises UsageError for an unknown flag or a bad value."""
    version_line = f"trinsq {command} v{__version__} ({go_tool} v{NSQ_COMPAT_VERSION} compatible)"
    return FlagSet(
        program=f"trinsq {command}",
        version_line=version_line,
        flags=(Flag("version", "bool", version_usage, sets_option=False), *option_flags(options)),
        options=options,
    )
