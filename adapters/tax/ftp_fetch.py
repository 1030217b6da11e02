"""The hub's FTP client for tax return files: list what is ready, download it streaming.

``ReturnFileSource`` is the port the processing service depends on (tests
fake it); ``FtpReturnFileSource`` implements it with aioftp. Only files with
their ``.ok`` done-marker are listed, so a file tax is still uploading is
never read. A download goes to ``{name}.part`` in the spool directory block
by block (never the whole file in memory), is hashed on the way, checked
against the marker's size and SHA-256, and only then renamed to ``{name}``.
The hub's account is read-only: nothing on the server is moved or deleted.

Failures are mapped here, and only ``contracts.errors`` leave this module:

    connection refused/reset/closed, FTP 4xx, short or damaged transfer -> PartnerUnavailable
    no answer within timeout_s                                          -> PartnerTimeout
    login refused (530), other FTP 5xx                                  -> ClientError
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final, Protocol, TypeVar

import aioftp

from contracts.errors import ClientError, HubError, PartnerTimeout, PartnerUnavailable
from contracts.returnfile import KINDS, ReturnFileName, parse_marker

__all__ = ["FetchedFile", "FtpConfig", "FtpReturnFileSource", "RemoteFile", "ReturnFileSource",
           "map_ftp_error"]

PARTNER: Final = "tax_ftp"
"""Errors name tax's FTP server apart from its SOAP service: separate breakers."""
_MARKER_MAX: Final = 256
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    """A complete return file on the server (its ``.ok`` marker exists)."""

    path: str
    size: int
    parsed: ReturnFileName

    @property
    def name(self) -> str:
        return self.parsed.name

    @property
    def marker(self) -> str:
        return self.path + ".ok"


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded, verified file in the spool directory."""

    name: str
    path: Path
    sha256: str
    size: int


class ReturnFileSource(Protocol):
    """Where return files come from. Raises only ``contracts.errors`` exceptions."""

    async def list_ready(self) -> list[RemoteFile]:
        """Complete files of every kind, oldest first (file date, batch, kind)."""
        ...

    async def fetch(self, remote: RemoteFile, dest_dir: Path) -> FetchedFile:
        """Download ``remote`` into ``dest_dir`` and verify it against its marker."""
        ...


@dataclass(frozen=True)
class FtpConfig:
    """How to reach tax's FTP server; ``password`` comes from the secret named in settings."""

    host: str
    port: int = 21
    user: str = "hub"
    password: str = field(default="", repr=False)
    root: str = "/outbound"
    kinds: tuple[str, ...] = tuple(KINDS)
    timeout_s: float = 10.0
    block_size: int = 64 * 1024


def map_ftp_error(exc: BaseException) -> HubError:
    """aioftp / socket failure -> hub error (the retry split lives here)."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, TimeoutError):
        return PartnerTimeout("FTP: no answer in time", partner=PARTNER)
    if isinstance(exc, aioftp.StatusCodeError):
        code = str(exc.received_codes[-1]) if exc.received_codes else "?"
        text = f"FTP {code}: {' '.join(map(str, exc.info))[:200]}"
        if code in ("530", "532"):
            return ClientError(f"login refused: {text}", partner=PARTNER)
        if code.startswith("5"):
            return ClientError(text, partner=PARTNER)
        return PartnerUnavailable(text, partner=PARTNER)
    detail = str(exc) or "connection closed by the server"
    return PartnerUnavailable(f"FTP: {type(exc).__name__}: {detail}"[:300], partner=PARTNER)


_MAPPED = (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, aioftp.AIOFTPException,
           ValueError)


class FtpReturnFileSource:
    """``ReturnFileSource`` over FTP (aioftp); one short session per call, so a dropped
    connection costs one call, never a stuck session."""

    def __init__(self, config: FtpConfig) -> None:
        self.config = config

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aioftp.Client]:
        c = self.config
        client = aioftp.Client(socket_timeout=c.timeout_s, connection_timeout=c.timeout_s,
                               path_timeout=c.timeout_s)
        try:
            await client.connect(c.host, c.port)
            await client.login(c.user, c.password)
            yield client
            with contextlib.suppress(*_MAPPED):
                await asyncio.wait_for(client.quit(), c.timeout_s)
        finally:
            client.close()

    async def _call(self, op: Callable[[aioftp.Client], Awaitable[T]]) -> T:
        try:
            async with self._session() as client:
                return await op(client)
        except _MAPPED as exc:
            raise map_ftp_error(exc) from exc

    async def list_ready(self) -> list[RemoteFile]:
        return await self._call(self._list)

    async def _list(self, client: aioftp.Client) -> list[RemoteFile]:
        root = PurePosixPath(self.config.root)
        folders = {p.name for p, info in await client.list(root) if info.get("type") == "dir"}
        found: list[RemoteFile] = []
        for kind in self.config.kinds:
            if kind in folders:  # listing a missing folder (550) would leak aioftp's data socket
                found.extend(await self._list_kind(client, root / kind, kind))
        return sorted(found, key=lambda r: (r.parsed.file_date, r.parsed.batch_no, r.parsed.kind))

    async def _list_kind(self, client: aioftp.Client, folder: PurePosixPath,
                         kind: str) -> list[RemoteFile]:
        names = {p.name: info for p, info in await client.list(folder)
                 if info.get("type") == "file"}
        ready: list[RemoteFile] = []
        for name, info in names.items():
            parsed = ReturnFileName.parse(name)
            if parsed is None or parsed.kind != kind or name + ".ok" not in names:
                continue
            size = int(info.get("size", -1) or -1)
            ready.append(RemoteFile(str(folder / name), size, parsed))
        return ready

    async def fetch(self, remote: RemoteFile, dest_dir: Path) -> FetchedFile:
        return await self._call(lambda client: self._fetch(client, remote, dest_dir))

    async def _fetch(self, client: aioftp.Client, remote: RemoteFile,
                     dest_dir: Path) -> FetchedFile:
        expected = parse_marker(await self._read_small(client, remote.marker))
        dest_dir.mkdir(parents=True, exist_ok=True)
        part = dest_dir / (remote.name + ".part")
        try:
            sha, size = await self._download(client, remote.path, part)
            _verify(remote, expected, sha, size)
            final = dest_dir / remote.name
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)
        return FetchedFile(remote.name, final, sha, size)

    async def fetch_path(self, path: str, dest: Path) -> tuple[str, int]:
        """Any one file (e.g. a 比对 batch named in a push) to ``dest``: (sha256, size)."""
        if ".." in PurePosixPath(path).parts or not path.startswith(self.config.root):
            raise ClientError(f"{path}: outside {self.config.root}", partner=PARTNER)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        try:
            sha, size = await self._call(lambda client: self._download(client, path, part))
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return sha, size

    async def _read_small(self, client: aioftp.Client, path: str) -> bytes:
        data = b""
        async with client.download_stream(path) as stream:
            async for block in stream.iter_by_block(_MARKER_MAX):
                data += block
                if len(data) > _MARKER_MAX:
                    raise PartnerUnavailable(f"marker {path} is too large", partner=PARTNER)
        return data

    async def _download(self, client: aioftp.Client, path: str, part: Path) -> tuple[str, int]:
        """Stream to disk block by block, hashing as it goes."""
        digest = hashlib.sha256()
        size = 0
        with part.open("wb") as out:
            async with client.download_stream(path) as stream:
                async for block in stream.iter_by_block(self.config.block_size):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
        return digest.hexdigest(), size


def _verify(remote: RemoteFile, expected: tuple[str, int] | None, sha: str, size: int) -> None:
    """A short or damaged transfer is transient: the next poll downloads it again."""
    want_size = expected[1] if expected else remote.size
    if want_size >= 0 and size != want_size:
        raise PartnerUnavailable(f"{remote.name}: got {size} bytes, expected {want_size}",
                                 partner=PARTNER)
    if expected and sha != expected[0]:
        raise PartnerUnavailable(f"{remote.name}: SHA-256 differs from its .ok marker",
                                 partner=PARTNER)
