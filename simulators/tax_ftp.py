"""A real FTP server standing in for tax's return-file drop (pyftpdlib, background thread).

    with TaxFtpSimulator(tmp_path / "ftp") as sim:       # port 0: a free port
        sim.drop_file("unit_pay", 1000)                   # file + .ok marker
        sim.switches.refuse_login = True                  # failure switches, live
        ... FtpConfig("127.0.0.1", sim.port, sim.user, sim.password) ...

Files are written like tax uploads them: the data file first, then the
``.ok`` marker (``<sha256> <size>``), so a reader that waits for the marker
never sees half a file. ``drop_file(..., marker=False)`` leaves a file that
is still "uploading".

Failure switches (``FtpSwitches``; counts are consumed, ``None`` = forever):

* ``refuse_login``: every login gets 530.
* ``drop_transfers`` / ``drop_after_bytes``: the server closes the data and
  control connections after that many bytes of a return-file download.
* ``corrupt_transfers``: one byte of a download is flipped in transit.
* ``slow_bps``: downloads are throttled to that many bytes per second.

Content problems are file options, not switches: ``replace`` writes tax's own
bad lines (the trailer still matches), ``duplicate`` serves the same bytes
under another name (the same file: the hub must process it once).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from contracts.returnfile import (
    KINDS,
    ReturnFileName,
    WrittenFile,
    format_marker,
    write_return_file,
)

__all__ = ["FtpSwitches", "TaxFtpSimulator", "bad_line"]

log = logging.getLogger("sim.tax.ftp")
_CHUNK: Final = 64 * 1024


def bad_line(period: str = "202513") -> bytes:
    """A detail line tax might write by mistake: right shape, impossible period."""
    return (f"D|BAD0001|320102199003070017|测试|310|{period}|100|20250115\n").encode()


@dataclass
class FtpSwitches:
    """Live failure switches; the server thread reads them on every login and transfer."""

    refuse_login: bool = False
    drop_transfers: int | None = 0
    drop_after_bytes: int = 1024
    corrupt_transfers: int | None = 0
    slow_bps: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        """Consume one use of a counted switch (``drop_transfers``, ``corrupt_transfers``)."""
        with self._lock:
            left = getattr(self, name)
            if left is not None and left <= 0:
                return False
            if left is not None:
                setattr(self, name, left - 1)
            return True

    def reset(self) -> None:
        with self._lock:
            self.refuse_login, self.drop_transfers, self.corrupt_transfers = False, 0, 0
            self.slow_bps, self.drop_after_bytes = 0, 1024


class _Authorizer(DummyAuthorizer):  # type: ignore[misc]
    switches: FtpSwitches

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if self.switches.refuse_login:
            raise AuthenticationFailed("Login refused (simulated).")
        super().validate_authentication(username, password, handler)


class _DTP(ThrottledDTPHandler):  # type: ignore[misc]
    """Data channel with the transfer faults: drop, corrupt, throttle."""

    switches: FtpSwitches

    def __init__(self, sock: Any, cmd_channel: Any) -> None:
        self.write_limit = self.switches.slow_bps
        self._drop_at: int | None = None
        self._flip_at: int | None = None
        self._dropping = False
        self._armed = False
        super().__init__(sock, cmd_channel)

    def _arm(self) -> None:
        """Decide the faults once per transfer, when it is known to be a return file."""
        self._armed = True
        name = getattr(self.file_obj, "name", "")
        if not str(name).endswith(".txt"):
            return
        if self.switches.take("drop_transfers"):
            self._drop_at = self.switches.drop_after_bytes
        if self.switches.take("corrupt_transfers"):
            self._flip_at = 0

    def send(self, data: bytes) -> int:
        if not self._armed:
            self._arm()
        if self._dropping:
            return 0
        if self._drop_at is not None and self.tot_bytes_sent + len(data) >= self._drop_at:
            data = data[: max(0, self._drop_at - self.tot_bytes_sent)]
            self._dropping = True
            self.ioloop.call_later(0, self.cmd_channel.close)
            return int(super().send(data)) if data else 0
        if self._flip_at is not None and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
            self._flip_at = None
        return int(super().send(data))


def _quiet_pyftpdlib() -> None:
    """pyftpdlib installs its own stderr handler at INFO unless a handler exists: give it a
    NullHandler and WARNING, so its records reach only the application's own handlers."""
    logger = logging.getLogger("pyftpdlib")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)


class TaxFtpSimulator:
    """pyftpdlib on ``host:port`` serving ``root``; ``start``/``stop`` or a ``with`` block."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0,
                 user: str = "hub", password: str = "hub-secret") -> None:
        self.root = root
        self.host = host
        self.user = user
        self.password = password
        self.switches = FtpSwitches()
        self._port = port
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        for kind in KINDS:
            (root / "outbound" / kind).mkdir(parents=True, exist_ok=True)

    @property
    def port(self) -> int:
        return self._port

    def _handler(self) -> type[FTPHandler]:
        auth = _Authorizer()
        auth.switches = self.switches
        auth.add_user(self.user, self.password, str(self.root), perm="elr")
        dtp = type("SimDTP", (_DTP,), {"switches": self.switches})
        return type("SimFTPHandler", (FTPHandler,), {
            "authorizer": auth, "dtp_handler": dtp, "auth_failed_timeout": 0.05,
            "banner": "tax return-file simulator ready.", "timeout": 60, "use_sendfile": False,
        })

    def start(self) -> None:
        """Bind (port 0 = a free one), then serve from a daemon thread."""
        if self._thread is not None:
            return
        _quiet_pyftpdlib()
        self._server = FTPServer((self.host, self._port), self._handler(), ioloop=IOLoop())
        self._port = int(self._server.address[1])
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="tax-ftp-sim", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not self._stop.is_set():
                server.ioloop.loop(0.05, blocking=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        """Stop serving, close every connection and the listening socket, join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- content ----------------------------------------------------------------------------------

    def local_path(self, name: ReturnFileName) -> Path:
        return self.root / name.path.lstrip("/")

    def drop_file(self, kind: str, lines: int, *, file_date: date = date(2025, 1, 15),
                  batch_no: str = "0001", seed: int = 0, replace: dict[int, bytes] | None = None,
                  marker: bool = True) -> ReturnFileName:
        """Write a return file (streaming) and then its ``.ok`` marker, as tax uploads."""
        name = ReturnFileName(kind, f"{file_date:%Y%m%d}", batch_no)
        path = self.local_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb", buffering=_CHUNK) as out:
            written = write_return_file(out, kind, lines, file_date=file_date,
                                        batch_no=batch_no, seed=seed, replace=replace)
        if marker:
            self._mark(path, written)
        log.info("dropped %s (%d lines)", name.name, lines)
        return name

    def duplicate(self, name: ReturnFileName, batch_no: str) -> ReturnFileName:
        """The same bytes under another name (as if tax re-sent a batch)."""
        other = name._replace(batch_no=batch_no)
        src, dst = self.local_path(name), self.local_path(other)
        shutil.copyfile(src, dst)
        shutil.copyfile(src.with_name(src.name + ".ok"), dst.with_name(dst.name + ".ok"))
        return other

    def _mark(self, path: Path, written: WrittenFile) -> None:
        tmp = path.with_name(path.name + ".ok.tmp")
        tmp.write_bytes(format_marker(written.sha256, written.size))
        os.replace(tmp, path.with_name(path.name + ".ok"))

