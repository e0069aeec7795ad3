"""Start-up failures: one line naming what failed and where, for `trinsq broker` and
`trinsq registry` (status 1), and the same text as one :class:`StartupError` for embedders.

Busy ports are ports this test holds itself (OS-chosen); 192.0.2.1 (TEST-NET-1, RFC 5737) is
an address no test machine has, so binding it fails with "cannot assign requested address".
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.tlsutil import Certificates, make_certificates
from trinsq import open_broker, open_registry
from trinsq._cli import main
from trinsq.broker.storage import _metadata
from trinsq.broker.storage._metadata import DataPathLock
from trinsq.common._startup import StartupError

NOT_LOCAL = "192.0.2.1:0"
REASONS = {"busy": "address already in use", "not-local": "cannot assign requested address"}
ERRNOS = {"busy": errno.EADDRINUSE, "not-local": errno.EADDRNOTAVAIL}
PROCESS_TIMEOUT = 60  # seconds; a start-up failure takes well under one even on a busy machine
# `trinsq broker` run in-process tunes the collector and takes over trinsq's loggers.
pytestmark = pytest.mark.usefixtures("restore_process_state")


@pytest.fixture
def busy() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a port this test is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield f"127.0.0.1:{holder.getsockname()[1]}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def _address(problem: str, busy: str) -> str:
    return busy if problem == "busy" else NOT_LOCAL


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(argv)
    captured = capsys.readouterr()
    assert captured.out == ""
    return status, captured.err


# -- listeners ---------------------------------------------------------------------------------

LISTENERS = [(kind, problem) for kind in ("tcp", "http", "https") for problem in REASONS]
REGISTRY_LISTENERS = [(kind, problem) for kind in ("tcp", "http") for problem in REASONS]


def _broker_listen_options(kind: str, address: str, certs: Certificates) -> dict[str, Any]:
    options: dict[str, Any] = {f"{kind}_address": address}
    if kind == "https":
        options |= {"tls_cert": certs.server_cert_file, "tls_key": certs.server_key_file}
    return options


@pytest.mark.parametrize(("kind", "problem"), LISTENERS)
def test_broker_command_names_the_address_it_cannot_listen_on(
    kind: str,
    problem: str,
    busy: str,
    certs: Certificates,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = _address(problem, busy)
    argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
    argv.append(f"--data-path={tmp_path}")
    flags = _broker_listen_options(kind, address, certs)
    argv += [f"--{name.replace('_', '-')}={value}" for name, value in flags.items()]
    status, err = _run(argv, capsys)
    assert (status, err) == (1, f"trinsq broker: failed to listen on {address} - "
                                f"{REASONS[problem]}\n")  # fmt: skip


@pytest.mark.parametrize(("kind", "problem"), LISTENERS)
async def test_open_broker_raises_one_startup_error_naming_the_address(
    kind: str, problem: str, busy: str, certs: Certificates, tmp_path: Path
) -> None:
    address = _address(problem, busy)
    options = _broker_listen_options(kind, address, certs)
    with pytest.raises(StartupError) as caught:
        async with open_broker(data_path=str(tmp_path), **options):
            pytest.fail("the broker started")
    error = caught.value
    assert str(error) == f"failed to listen on {address} - {REASONS[problem]}"
    assert error.errno == ERRNOS[problem]
    assert isinstance(error.__cause__, OSError)
    # Nothing is held after a failed start: the data path serves the next broker.
    async with open_broker(data_path=str(tmp_path)) as broker:
        assert broker.http_address is not None
    assert (tmp_path / "nsqd.dat").exists()


@pytest.mark.parametrize(("kind", "problem"), REGISTRY_LISTENERS)
def test_registry_command_names_the_address_it_cannot_listen_on(
    kind: str, problem: str, busy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    address = _address(problem, busy)
    addresses = {"tcp": "127.0.0.1:0", "http": "127.0.0.1:0", kind: address}
    argv = ["registry"] + [f"--{name}-address={value}" for name, value in addresses.items()]
    status, err = _run(argv, capsys)
    assert (status, err) == (1, f"trinsq registry: failed to listen on {address} - "
                                f"{REASONS[problem]}\n")  # fmt: skip


@pytest.mark.parametrize(("kind", "problem"), REGISTRY_LISTENERS)
async def test_open_registry_raises_one_startup_error_naming_the_address(
    kind: str, problem: str, busy: str
) -> None:
    address = _address(problem, busy)
    options: dict[str, Any] = {f"{kind}_address": address}
    with pytest.raises(StartupError) as caught:
        async with open_registry(**options):
            pytest.fail("the registry started")
    assert str(caught.value) == f"failed to listen on {address} - {REASONS[problem]}"
    assert caught.value.errno == ERRNOS[problem]


# -- the data path -----------------------------------------------------------------------------

DataPathCase = Callable[[Path, ExitStack], tuple[Path, str]]


def _locked(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    lock = DataPathLock(str(tmp))
    lock.acquire()
    stack.callback(lock.release)
    return tmp, (
        f"failed to lock data-path: cannot flock directory {tmp} - resource temporarily "
        "unavailable (possibly in use by another instance of nsqd)"
    )


def _missing(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    path = tmp / "missing"
    return path, (
        f"failed to lock data-path: cannot open directory {path} - no such file or directory"
    )


def _a_file(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    path = tmp / "file"
    path.touch()
    return path, f"failed to lock data-path: cannot open directory {path} - not a directory"


def _under_a_file(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    (tmp / "file").touch()
    path = tmp / "file" / "data"
    return path, f"failed to lock data-path: cannot open directory {path} - not a directory"


def _unparsable(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    (tmp / "nsqd.dat").write_bytes(b"not json")
    return tmp, (
        f"failed to parse metadata in {tmp / 'nsqd.dat'} - Expecting value: line 1 column 1 "
        "(char 0)"
    )


def _metadata_is_a_directory(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    (tmp / "nsqd.dat").mkdir()
    return tmp, f"failed to read metadata {tmp / 'nsqd.dat'} - is a directory"


def _read_only(tmp: Path, stack: ExitStack) -> tuple[Path, str]:
    tmp.chmod(0o555)
    stack.callback(tmp.chmod, 0o755)
    return tmp, f"failed to write metadata {tmp / 'nsqd.dat'} - permission denied"


DATA_PATH_CASES = [
    pytest.param(_locked, id="locked"),
    pytest.param(_missing, id="missing"),
    pytest.param(_a_file, id="a-file"),
    pytest.param(_under_a_file, id="under-a-file"),
    pytest.param(_unparsable, id="unparsable-nsqd.dat"),
    pytest.param(_metadata_is_a_directory, id="nsqd.dat-is-a-directory"),
    # Root writes through permission bits; test_unwritable_data_path_* cover it either way.
    pytest.param(
        _read_only,
        id="read-only",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits"),
    ),
]


@pytest.mark.parametrize("case", DATA_PATH_CASES)
def test_broker_command_names_the_data_path_problem(
    case: DataPathCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ExitStack() as stack:
        path, message = case(tmp_path, stack)
        argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
        status, err = _run([*argv, f"--data-path={path}"], capsys)
    assert (status, err) == (1, f"trinsq broker: {message}\n")


@pytest.mark.parametrize("case", DATA_PATH_CASES)
async def test_open_broker_raises_the_data_path_problem(case: DataPathCase, tmp_path: Path) -> None:
    with ExitStack() as stack:
        path, message = case(tmp_path, stack)
        with pytest.raises(StartupError) as caught:
            async with open_broker(data_path=str(path)):
                pytest.fail("the broker started")
    assert str(caught.value) == message


def _fail_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only_file_system(data_path: str, data: bytes) -> None:
        raise OSError(errno.EROFS, "Read-only file system", data_path)

    monkeypatch.setattr(_metadata, "write_metadata", read_only_file_system)


def test_unwritable_data_path_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_writes(monkeypatch)
    argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
    status, err = _run([*argv, f"--data-path={tmp_path}"], capsys)
    metadata = tmp_path / "nsqd.dat"
    expected = f"trinsq broker: failed to write metadata {metadata} - read-only file system\n"
    assert (status, err) == (1, expected)


async def test_unwritable_data_path_raises_and_releases_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_writes(monkeypatch)
    with pytest.raises(StartupError) as caught:
        async with open_broker(data_path=str(tmp_path)):
            pytest.fail("the broker started")
    assert str(caught.value) == (
        f"failed to write metadata {tmp_path / 'nsqd.dat'} - read-only file system"
    )
    assert caught.value.errno == errno.EROFS
    monkeypatch.undo()
    async with open_broker(data_path=str(tmp_path)):
        pass


# -- real processes ----------------------------------------------------------------------------


def _process(
    args: list[str], *, prelude: str = "", wrapper: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    code = f"{prelude}import sys\nfrom trinsq._cli import main\nsys.exit(main({args!r}))\n"
    return subprocess.run(
        [*wrapper, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=PROCESS_TIMEOUT,
    )


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_broker_process_prints_one_line_for_a_busy_port(
    kind: str, busy: str, tmp_path: Path
) -> None:
    addresses = {"tcp": "127.0.0.1:0", "http": "127.0.0.1:0", kind: busy}
    result = subprocess.run(
        [sys.executable, "-m", "trinsq", "broker", f"--data-path={tmp_path}"]
        + [f"--{name}-address={value}" for name, value in addresses.items()],
        capture_output=True,
        text=True,
        check=False,
        timeout=PROCESS_TIMEOUT,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"trinsq broker: failed to listen on {busy} - address already in use\n"


def test_registry_process_prints_one_line_for_a_busy_port(busy: str) -> None:
    result = _process(["registry", "--tcp-address=127.0.0.1:0", f"--http-address={busy}"])
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"trinsq registry: failed to listen on {busy} - address already in use\n"
    )


def test_unwritable_data_path_process_prints_one_line_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    # A file size limit of 0 stops every write, also for root (Python ignores SIGXFSZ, so
    # the write fails with EFBIG).
    prelude = "import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
    argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
    result = _process([*argv, f"--data-path={tmp_path}"], prelude=prelude)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"trinsq broker: failed to write metadata {tmp_path / 'nsqd.dat'} - file too large\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="for root, with setpriv to drop the capability that ignores permission bits "
    "(other users run the read-only case in-process)",
)
def test_read_only_data_path_process_says_permission_denied_also_for_root(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o555)
    try:
        argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
        drop = ["--bounding-set=-dac_override,-dac_read_search"]
        drop.append("--inh-caps=-dac_override,-dac_read_search")
        result = _process([*argv, f"--data-path={tmp_path}"], wrapper=["setpriv", *drop])
    finally:
        tmp_path.chmod(0o755)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"trinsq broker: failed to write metadata {tmp_path / 'nsqd.dat'} - permission denied\n"
    )
