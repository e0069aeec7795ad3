"""The floor: the least a server on trio can do per request, as a broker the scenarios can target.

``python -m benchmarks._floor --tcp-address=H:P --http-address=H:P`` answers the V2 protocol
and HTTP with no broker behind them: the magic, then IDENTIFY, PUB, MPUB, DPUB and SUB answered
OK, CLS answered CLOSE_WAIT, everything else read and dropped; every HTTP request answered
``200 OK``. One task per connection, raw non-blocking sockets, ``wait_readable`` when a receive
would block: no parsing beyond framing, no timers, no bookkeeping. Give it to ``compare`` as a
reference (``--reference "python -m benchmarks._floor"``) to see what trio's run loop and the
kernel alone cost per round trip on this machine, next to the broker and Go's nsqd: the part of
a round trip no broker code on trio can take away (docs/benchmarks.md, fourth pass of issue 12).
Other flags (``--data-path`` and the like) are accepted and ignored.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from typing import Final

import trio

_HEADER: Final = struct.Struct(">ii")
OK_FRAME: Final = _HEADER.pack(6, 0) + b"OK"
CLOSE_WAIT_FRAME: Final = _HEADER.pack(14, 0) + b"CLOSE_WAIT"
_ANSWERED: Final = (b"IDENTIFY", b"PUB", b"MPUB", b"DPUB", b"SUB")
_WITH_BODY: Final = (b"IDENTIFY", b"PUB", b"MPUB", b"DPUB", b"AUTH")
HTTP_OK: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK"
)


async def _receive(sock: socket.socket) -> bytes:
    while True:
        try:
            return sock.recv(65536)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


async def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


def _v2_answers(buffer: bytearray) -> bytes:
    """Answer and consume every complete command at the front of ``buffer``."""
    out = bytearray()
    pos = 4 if buffer[:4] == b"  V2" else 0
    while True:
        newline = buffer.find(b"\n", pos)
        if newline < 0:
            break
        name = bytes(buffer[pos:newline]).split(b" ", 1)[0].rstrip(b"\r")
        end = newline + 1
        if name in _WITH_BODY:
            if len(buffer) < end + 4:
                break
            end += 4 + int.from_bytes(buffer[end : end + 4], "big")
            if len(buffer) < end:
                break
        if name in _ANSWERED:
            out += OK_FRAME
        elif name == b"CLS":
            out += CLOSE_WAIT_FRAME
        pos = end
    del buffer[:pos]
    return bytes(out)


def _http_answers(buffer: bytearray) -> bytes:
    out = bytearray()
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            break
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(buffer) < end + 4 + length:
            break
        del buffer[: end + 4 + length]
        out += HTTP_OK
    return bytes(out)


async def _serve_connection(sock: socket.socket, http: bool) -> None:
    buffer = bytearray()
    with sock:
        while data := await _receive(sock):
            buffer += data
            out = _http_answers(buffer) if http else _v2_answers(buffer)
            if out:
                await _send_all(sock, out)


async def _serve(address: str, http: bool, nursery: trio.Nursery) -> None:
    host, _, port = address.rpartition(":")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(1024)
    listener.setblocking(False)
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            await trio.lowlevel.wait_readable(listener)
            continue
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nursery.start_soon(_serve_connection, sock, http)


async def _main(tcp_address: str, http_address: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve, tcp_address, False, nursery)
        nursery.start_soon(_serve, http_address, True, nursery)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._floor")
    parser.add_argument("--tcp-address", required=True)
    parser.add_argument("--http-address", required=True)
    options, _ = parser.parse_known_args(argv)
    trio.run(_main, options.tcp_address, options.http_address)


if __name__ == "__main__":
    main(sys.argv[1:])
