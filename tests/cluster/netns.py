"""Hosts for a cluster test: one network namespace per host, joined by a switch.

:func:`open_hosts` creates a namespace per host name plus a ``switch`` namespace holding a
bridge, and joins each host to the bridge with a veth pair: ``eth0`` in the host, ``port-NAME``
in the switch. Every host gets one address on one /24, so the hosts reach each other as
machines on one LAN do and nothing else (the namespaces have no route to the machine's own
network, so their addresses cannot clash with it). Taking a host's switch port down partitions
that host: its packets are dropped silently, as when a cable is pulled, while it still reaches
itself on 127.0.0.1.

Namespace names carry the test process's id and a random token, so parallel runs never meet.
Every namespace is deleted on exit (which removes its links), and every process started
with :meth:`Hosts.start` is killed first, whether or not the test passed.

Creating namespaces needs root and iproute2's ``ip``: where either is missing, or the kernel
refuses a namespace (a container without CAP_SYS_ADMIN),
:func:`skip_unless_namespaces_can_be_made` skips the test with the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

__all__ = ["Hosts", "namespaces_named", "open_hosts", "skip_unless_namespaces_can_be_made"]

SUBNET = "10.213.47"  # the hosts' /24; the switch has no address of its own
REPO_ROOT = Path(__file__).resolve().parents[2]


class Hosts:
    """The namespaces of one test: addresses, commands inside them, and the switch ports."""

    def __init__(self, prefix: str, names: Sequence[str]) -> None:
        self.prefix = prefix
        self.addresses = {name: f"{SUBNET}.{index}" for index, name in enumerate(names, 1)}
        self.namespaces: list[str] = []
        self.processes: list[trio.Process] = []

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    async def ip(self, *argv: str) -> None:
        """Run ``ip ARGV...``; a failure raises with ip's own message."""
        done = await trio.run_process(["ip", *argv], capture_stderr=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(argv)}: {done.stderr.decode().strip()}")

    async def add_namespace(self, host: str) -> None:
        await self.ip("netns", "add", self.namespace(host))
        self.namespaces.append(self.namespace(host))
        await self.ip("-n", self.namespace(host), "link", "set", "dev", "lo", "up")

    async def wire(self) -> None:
        """The switch namespace with its bridge, and one cable per host."""
        switch = self.namespace("switch")
        await self.add_namespace("switch")
        await self.ip("-n", switch, "link", "add", "br0", "type", "bridge")
        await self.ip("-n", switch, "link", "set", "dev", "br0", "up")
        for host, address in self.addresses.items():
            await self.add_namespace(host)
            namespace = self.namespace(host)
            port = f"port-{host}"
            await self.ip(
                "link", "add", "eth0", "netns", namespace,
                "type", "veth", "peer", "name", port, "netns", switch,
            )  # fmt: skip
            await self.ip("-n", switch, "link", "set", "dev", port, "master", "br0")
            await self.ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            await self.ip("-n", namespace, "link", "set", "dev", "eth0", "up")
            await self.ip("-n", switch, "link", "set", "dev", port, "up")

    async def set_link(self, host: str, *, up: bool) -> None:
        """Plug ``host``'s cable into the switch, or pull it out."""
        port = f"port-{host}"
        await self.ip(
            "-n", self.namespace("switch"), "link", "set", "dev", port, "up" if up else "down"
        )

    async def start(
        self, host: str, *argv: str, stdout: int | None = None, stderr: int | None = None
    ) -> trio.Process:
        """Start ``argv`` inside ``host`` (from the repository root); killed on exit."""
        process = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", self.namespace(host), *argv],
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=stderr,
        )
        self.processes.append(process)
        return process

    async def run(self, host: str, *argv: str, timeout: float = 30.0) -> None:
        """Run ``argv`` inside ``host`` to the end; a failure raises with its stderr."""
        with trio.fail_after(timeout):
            done = await trio.run_process(
                ["ip", "netns", "exec", self.namespace(host), *argv],
                cwd=REPO_ROOT,
                capture_stderr=True,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{argv} in {host}: {done.stderr.decode(errors='replace')}")

    async def close(self) -> None:
        """Kill what was started, then delete every namespace (and with them the links)."""
        with trio.CancelScope(shield=True):
            for process in self.processes:
                if process.returncode is None:
                    process.kill()
                with trio.move_on_after(10):
                    await process.wait()
            for namespace in reversed(self.namespaces):
                with trio.move_on_after(10):
                    await trio.run_process(["ip", "netns", "delete", namespace], check=False)


def skip_unless_namespaces_can_be_made() -> None:
    """Skip the test, saying why, where network namespaces cannot be created.

    Called outside the test's Trio run (from a plain fixture): pytest-trio drops the reason
    of a skip raised inside it.
    """
    if os.geteuid() != 0:
        pytest.skip(f"creating network namespaces needs root (running as uid {os.geteuid()})")
    if shutil.which("ip") is None:
        pytest.skip("creating network namespaces needs iproute2's `ip`, which is not installed")
    probe = f"trinsq-{os.getpid()}-{secrets.token_hex(3)}-probe"
    added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if added.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=True)


@asynccontextmanager
async def open_hosts(*names: str) -> AsyncIterator[Hosts]:
    """Namespaces ``names`` on one switch, all deleted on exit (see the module docstring)."""
    hosts = Hosts(f"trinsq-{os.getpid()}-{secrets.token_hex(3)}", names)
    try:
        await hosts.wire()
        yield hosts
    finally:
        await hosts.close()


async def namespaces_named(prefix: str) -> list[str]:
    """The namespaces ``ip netns list`` shows whose names start with ``prefix``."""
    listed = await trio.run_process(["ip", "netns", "list"], capture_stdout=True)
    names = (line.split()[0] for line in listed.stdout.decode().splitlines() if line.strip())
    return [name for name in names if name.startswith(prefix)]
