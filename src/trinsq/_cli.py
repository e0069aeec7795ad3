"""The ``trinsq`` command: ``trinsq broker`` (nsqd's flags), ``trinsq registry`` (nsqlookupd's)
and the tools, such as ``trinsq stat`` (nsq_stat's).

Every flag that cannot be parsed is reported as one line on stderr with exit status 2, the way
Go's flag package reports usage errors, so scripts and service managers see a short, greppable
reason. The tools refuse unusable values as their Go originals do: a timestamped line and
status 1.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn, Protocol

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.broker.config._flags import parse_broker_args
from trinsq.common._flagparse import UsageError
from trinsq.common._options import OptionError
from trinsq.registry._flags import parse_registry_args
from trinsq.tools._golog import go_log_line

__all__ = ["main", "run"]

_USAGE = """\
Usage: trinsq <command> [flags]

Commands:
  broker     run a message broker (a drop-in nsqd); see "trinsq broker --help"
  registry   run a registry (a drop-in nsqlookupd); see "trinsq registry --help"
  stat       poll a channel's stats across brokers (nsq_stat); see "trinsq stat --help"
  pub        publish stdin, split on a delimiter, to a topic (to_nsq); see "trinsq pub --help"
  tail       print a topic's messages (nsq_tail); see "trinsq tail --help"
  to-file    write topics' messages to rotated files (nsq_to_file); see "trinsq to-file --help"

Flags:
  --version  print version string
  --help     show this help"""


def _broker(argv: list[str]) -> int:
    try:
        options = parse_broker_args(argv)
    except (UsageError, OptionError) as exc:
        print(f"trinsq broker: {exc}", file=sys.stderr)
        return 2
    if options is None:  # --version or --help, already printed
        return 0
    # looked up at call time so tests can stand in for the server via trinsq.broker.run_broker
    from trinsq.broker import run_broker

    return run_broker(options)


def _registry(argv: list[str]) -> int:
    try:
        options = parse_registry_args(argv)
    except (UsageError, OptionError) as exc:
        print(f"trinsq registry: {exc}", file=sys.stderr)
        return 2
    if options is None:  # --version or --help, already printed
        return 0
    # looked up at call time so tests can stand in for the server via trinsq.registry.run_registry
    from trinsq.registry import run_registry

    return run_registry(options)


class _ToolOptions(Protocol):
    def problem(self) -> str | None: ...


def _tool(
    name: str,
    argv: list[str],
    parse: Callable[[list[str]], _ToolOptions | None],
    module: str = "",
) -> int:
    """``trinsq <name>``: a Go NSQ tool's flags (status 2 when they do not parse), its start-up
    refusals (a fatal log line, status 1), then ``trinsq.tools.<module>.run_<module>`` (the
    module is the name, ``to-file``'s is ``tofile``)."""
    module = module or name
    try:
        options = parse(argv)
    except UsageError as exc:
        print(f"trinsq {name}: {exc}", file=sys.stderr)
        return 2
    if options is None:  # --version or --help, already printed
        return 0
    problem = options.problem()
    if problem is not None:  # the tool's log.Fatal
        print(go_log_line(problem), file=sys.stderr)
        return 1
    # trio and the clients are imported only to run; looked up at call time so tests can
    # stand in for the run
    run: Callable[[_ToolOptions], int] = getattr(
        importlib.import_module(f"trinsq.tools.{module}"), f"run_{module}"
    )
    return run(options)


def main(argv: list[str] | None = None) -> int:
    """Run ``trinsq`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(_USAGE, file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command == "broker":
        return _broker(rest)
    if command == "registry":
        return _registry(rest)
    # A tool's modules (and the client they run on) load only when that tool runs: a broker
    # or a registry starts without them.
    if command == "stat":
        from trinsq.tools.stat import parse_stat_args

        return _tool("stat", rest, parse_stat_args)
    if command == "pub":
        from trinsq.tools.pub import parse_pub_args

        return _tool("pub", rest, parse_pub_args)
    if command == "tail":
        from trinsq.tools.tail import parse_tail_args

        return _tool("tail", rest, parse_tail_args)
    if command == "to-file":
        from trinsq.tools.tofile import parse_to_file_args

        return _tool("to-file", rest, parse_to_file_args, "tofile")
    if command in ("--version", "-version"):
        print(f"trinsq v{__version__} (nsqd v{NSQ_COMPAT_VERSION} compatible)")
        return 0
    if command in ("--help", "-help", "-h", "help"):
        print(_USAGE)
        return 0
    print(f'trinsq: unknown command "{command}" (see "trinsq --help")', file=sys.stderr)
    return 2


def run() -> NoReturn:
    """The ``trinsq`` executable: :func:`main`, then exit at once with its status.

    By the time :func:`main` returns a server has persisted its state and closed every
    connection; what is left is the interpreter's teardown, which with the HTTP stack
    loaded takes a few hundred ms, and seconds on a loaded machine, between the last log
    line and the exit a service manager waits for (Go's nsqd exits in a few ms). So
    flush what was written and leave without it.
    """
    status = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # a closed or broken pipe: nothing more can be said
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
