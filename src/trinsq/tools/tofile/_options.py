"""nsq_to_file v1.3.0's options (apps/nsq_to_file/nsq_to_file.go and options.go): names, defaults,
usage texts, and its start-up refusals word for word.

The file-writing core (:mod:`._filelogger`) reads the output options; the consuming side, to be
wired to trinsq's client, reads the rest.
"""

from __future__ import annotations

from typing import Any

import attrs

from trinsq.common._flagparse import option
from trinsq.tools._goconfig import consumer_opt_option, flag_config_values
from trinsq.tools.tofile._naming import DEFAULT_DATETIME_FORMAT, DEFAULT_FILENAME_FORMAT

__all__ = ["ToFileOptions"]


@attrs.define(kw_only=True)
class ToFileOptions:
    """Everything nsq_to_file is told; durations in seconds."""

    log_level: str = option(
        "info", usage="set log verbosity: debug, info, warn, error, or fatal", kind="level"
    )
    log_prefix: str = option("[nsq_to_file] ", usage="log message prefix", kind="string")
    channel: str = option("nsq_to_file", usage="nsq channel", kind="string")
    max_in_flight: int = option(200, usage="max number of messages to allow in flight", kind="int")
    output_dir: str = option("/tmp", usage="directory to write output files to", kind="string")
    work_dir: str = option(
        "", usage="directory for in-progress files before moving to output-dir", kind="string"
    )
    datetime_format: str = option(
        DEFAULT_DATETIME_FORMAT,
        usage="strftime compatible format for <DATETIME> in filename format",
        kind="string",
    )
    filename_format: str = option(
        DEFAULT_FILENAME_FORMAT,
        usage=(
            "output filename format (<TOPIC>, <HOST>, <PID>, <DATETIME>, <REV> are replaced. "
            "<REV> is increased when file already exists)"
        ),
        kind="string",
    )
    host_identifier: str = option(
        "",
        usage=(
            "value to output in log filename in place of hostname. <SHORT_HOST> and "
            "<HOSTNAME> are valid replacement tokens"
        ),
        kind="string",
    )
    gzip_level: int = option(
        6, usage="gzip compression level (1-9, 1=BestSpeed, 9=BestCompression)", kind="int"
    )
    gzip: bool = option(False, usage="gzip output files.", kind="bool")
    skip_empty_files: bool = option(False, usage="skip writing empty files", kind="bool")
    topic_refresh: float = option(
        60.0, usage="how frequently the topic list should be refreshed", kind="duration"
    )
    topic_pattern: str = option(
        "", usage="only log topics matching the following pattern", kind="string"
    )
    rotate_size: int = option(
        0, usage="rotate the file when it grows bigger than `rotate-size` bytes", kind="int"
    )
    rotate_interval: float = option(0.0, usage="rotate the file every duration", kind="duration")
    sync_interval: float = option(30.0, usage="sync file to disk every duration", kind="duration")
    http_client_connect_timeout: float = option(
        2.0, usage="timeout for HTTP connect", kind="duration"
    )
    http_client_request_timeout: float = option(
        5.0, usage="timeout for HTTP request", kind="duration"
    )
    nsqd_tcp_address: list[str] = option(
        factory=list, usage="nsqd TCP address (may be given multiple times)", kind="list"
    )
    lookupd_http_address: list[str] = option(
        factory=list, usage="lookupd HTTP address (may be given multiple times)", kind="list"
    )
    topic: list[str] = option(
        factory=list, usage="nsq topic (may be given multiple times)", kind="list"
    )
    consumer_opt: list[str] = consumer_opt_option()
    #: ClientConfig keywords set by ``consumer_opt`` (filled in by :meth:`validate`).
    config_values: dict[str, Any] = attrs.field(factory=dict)

    @property
    def work_directory(self) -> str:
        """Where files are written: ``--work-dir``, or ``--output-dir`` when it is not set."""
        return self.work_dir or self.output_dir

    @property
    def rotates(self) -> bool:
        return self.rotate_size > 0 or self.rotate_interval > 0

    def validate(self) -> None:
        """go-nsq's ``ConfigFlag.Set`` on every ``--consumer-opt``, as flag parsing does (the
        other checks are fatal log lines, see :meth:`problem`).

        Raises:
            UsageError: Go's flag error for the first value go-nsq refuses.
        """
        self.config_values.update(flag_config_values(self.consumer_opt, "consumer-opt"))

    def problem(self) -> str | None:
        """nsq_to_file's start-up refusal, word for word, or None when the options can be used."""
        if not self.channel:
            return "--channel is required"
        if self.http_client_connect_timeout <= 0:
            return "--http-client-connect-timeout should be positive"
        if self.http_client_request_timeout <= 0:
            return "--http-client-request-timeout should be positive"
        if not self.nsqd_tcp_address and not self.lookupd_http_address:
            return "--nsqd-tcp-address or --lookupd-http-address required."
        if self.nsqd_tcp_address and self.lookupd_http_address:
            return "use --nsqd-tcp-address or --lookupd-http-address not both"
        if not 1 <= self.gzip_level <= 9:
            return f"invalid --gzip-level value ({self.gzip_level}), should be 1-9"
        if not self.topic and not self.topic_pattern:
            return "--topic or --topic-pattern required"
        if not self.topic and not self.lookupd_http_address:
            return "--lookupd-http-address must be specified when no --topic specified"
        if self.sync_interval <= 0:
            # nsq_to_file panics here (its router's ticker: "non-positive interval for
            # NewTicker"); refused in the same shape as the other durations instead
            return "--sync-interval should be positive"
        return None
