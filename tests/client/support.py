"""Helpers of the client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from tests.interop.pynsq_harness import BrokerProbe
from tests.tlsutil import Certificates
from trinsq import RunningBroker
from trinsq.client import ClientConfig
from trinsq.protocol import NEED_DATA, OK_FRAME, Command, Identify, Limits, V2ServerConnection


async def until(
    broker: RunningBroker,
    predicate: Callable[[], bool],
    *,
    timeout: float = 30.0,
    what: str = "a condition",
) -> None:
    """Return once ``predicate()`` holds, checked after every Trio task step."""
    probe = BrokerProbe(broker)
    trio.lowlevel.add_instrument(probe)
    try:
        await probe.until(predicate, timeout=timeout, what=what)
    finally:
        trio.lowlevel.remove_instrument(probe)


class FakeNsqd:
    """Just enough of nsqd, for answers in an exact order: each connection's IDENTIFY is
    answered with a plain ``OK`` (an nsqd without feature negotiation); once ``after`` more
    commands have arrived, the frames ``answers`` are written, then the connection is
    closed if ``close`` (else held open, unanswered). With ``after=0`` nothing is read after
    the IDENTIFY: the client's writes back up."""

    def __init__(self, answers: list[bytes], *, after: int, close: bool) -> None:
        self.answers = answers
        self.after = after
        self.close = close
        self.address = ""
        self.commands: list[Command] = []
        self.received = trio.Event()  # set whenever a command arrives

    async def handle(self, stream: trio.SocketStream) -> None:
        parser = V2ServerConnection(Limits())
        seen = 0
        async with stream:
            while seen <= self.after:  # the IDENTIFY, then ``after`` commands
                data = await stream.receive_some(65536)
                if not data:
                    return
                parser.receive_data(data)
                while (command := parser.next_command()) is not NEED_DATA:
                    assert isinstance(command, Identify) == (seen == 0), command
                    if seen == 0:
                        await stream.send_all(OK_FRAME)
                    else:
                        self.commands.append(command)  # type: ignore[arg-type]
                        self.received.set()
                        self.received = trio.Event()
                    seen += 1
            await stream.send_all(b"".join(self.answers))
            if not self.close:
                await trio.sleep_forever()


@asynccontextmanager
async def fake_nsqd(answers: list[bytes], *, after: int, close: bool) -> AsyncIterator[FakeNsqd]:
    server = FakeNsqd(answers, after=after, close=close)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        server.address = "{}:{}".format(*listeners[0].socket.getsockname()[:2])
        yield server
        nursery.cancel_scope.cancel()


def mutual_tls(certs: Certificates, **config: Any) -> tuple[dict[str, Any], ClientConfig]:
    """``open_broker`` options requiring a client certificate signed by the test CA, and a
    client config that presents one (plus ``config``)."""
    options = certs.broker_options(
        tls_client_auth_policy="require-verify", tls_root_ca_file=certs.ca_file
    )
    client = ClientConfig(
        tls=True,
        tls_ca_file=certs.ca_file,
        tls_cert_file=certs.client_cert_file,
        tls_key_file=certs.client_key_file,
        **config,
    )
    return options, client
