"""How the sync agent reaches central: a small transport interface and its aiohttp form.

Theory of operation
-------------------
The agent never touches sockets itself. It calls :meth:`Transport.request` (one
HTTP exchange: method, path, body in; status, headers, body out) and
:meth:`Transport.download` (the same, with the answer's body streamed into a
file — catalog releases can be hundreds of megabytes). Everything that can go
wrong on the way — refused connection, TLS failure, reset, timeout, an answer
larger than the bound — is a :class:`~central_sync.agent.errors.TransportError`,
which the agent treats as retryable: whether central saw the request is unknown,
and the sync protocol makes a resend harmless.

Two implementations exist: :class:`AiohttpTransport` here (HTTPS to central, with
certificate verification against the system CAs or a pinned CA file, and a
deadline on every exchange), and :class:`central_sync.simnet.SimTransport`, which
runs the same agent code over a simulated network in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from central_sync.agent.errors import (
    AgentConfigError,
    AnswerTooLargeError,
    TransportError,
    TransportTimeoutError,
)

READ_CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT_S_DEFAULT = 10.0
CONNECTIONS_MAX = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """Central's answer to one request."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""

    def __post_init__(self) -> None:
        assert 100 <= self.status <= 599

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Transport(Protocol):
    """One HTTP exchange at a time with central (see the module docstring)."""

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float,
        body_bytes_max: int,
    ) -> Response:
        """Send one request and return the answer; TransportError if it failed on the way."""
        ...

    async def download(
        self, path: str, target: Path, *, timeout_s: float, bytes_max: int
    ) -> Response:
        """GET ``path``; on status 200 the body is written to ``target`` (the Response's
        body is then empty), otherwise the (bounded) body is returned and ``target``
        is not created."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AgentConfigError(
            "central.url must be https://host[:port] (http:// only for a local test ledger)"
        )
    if parts.username or parts.password:
        raise AgentConfigError("central.url must not carry credentials")
    return base_url.rstrip("/")


class AiohttpTransport:
    """:class:`Transport` over aiohttp: HTTPS with verified certificates, bounded everything."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S_DEFAULT,
        ca_file: Path | None = None,
        user_agent: str = "lobbypay-sync",
    ) -> None:
        if connect_timeout_s <= 0:
            raise AgentConfigError("connect_timeout_s must be positive")
        self.base_url = _check_base_url(base_url)
        self._connect_timeout_s = connect_timeout_s
        self._ssl: ssl.SSLContext | bool = False
        if self.base_url.startswith("https://"):
            try:
                context = ssl.create_default_context(
                    cafile=None if ca_file is None else os.fspath(ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise AgentConfigError(f"cannot load CA file {ca_file}: {exc}") from None
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ssl = context
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (aiohttp requires it).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS_MAX, ssl=self._ssl),
                headers={"User-Agent": self._user_agent},
                auto_decompress=False,
            )
        return self._session

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        return aiohttp.ClientTimeout(
            total=timeout_s, connect=min(self._connect_timeout_s, timeout_s)
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float,
        body_bytes_max: int,
    ) -> Response:
        url = self.base_url + path
        try:
            async with self._client().request(
                method,
                url,
                data=body,
                headers=dict(headers or {}),
                timeout=self._timeout(timeout_s),
                allow_redirects=False,
            ) as resp:
                data = await _read_bounded(resp, body_bytes_max)
                return Response(
                    status=resp.status,
                    body=data,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                )
        except TimeoutError:
            raise TransportTimeoutError(
                f"{method} {path}: no answer within {timeout_s} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise TransportError(f"{method} {path}: {exc.strerror or exc}") from None

    async def download(
        self, path: str, target: Path, *, timeout_s: float, bytes_max: int
    ) -> Response:
        url = self.base_url + path
        try:
            async with self._client().get(
                url, timeout=self._timeout(timeout_s), allow_redirects=False
            ) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status != 200:
                    data = await _read_bounded(resp, min(bytes_max, READ_CHUNK_BYTES))
                    return Response(status=resp.status, body=data, headers=headers)
                await _stream_to_file(resp, target, bytes_max)
                return Response(status=resp.status, headers=headers)
        except TimeoutError:
            raise TransportTimeoutError(f"GET {path}: not done within {timeout_s} s") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise TransportError(f"GET {path}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_bounded(resp: aiohttp.ClientResponse, bytes_max: int) -> bytes:
    if resp.content_length is not None and resp.content_length > bytes_max:
        raise AnswerTooLargeError(f"answer of {resp.content_length} bytes exceeds {bytes_max}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
        total += len(chunk)
        if total > bytes_max:
            raise AnswerTooLargeError(f"answer exceeds {bytes_max} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _stream_to_file(resp: aiohttp.ClientResponse, target: Path, bytes_max: int) -> None:
    if resp.content_length is not None and resp.content_length > bytes_max:
        raise AnswerTooLargeError(f"download of {resp.content_length} bytes exceeds {bytes_max}")
    total = 0
    out = await asyncio.to_thread(open, target, "wb")
    try:
        with out:
            async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
                total += len(chunk)
                if total > bytes_max:
                    raise AnswerTooLargeError(f"download exceeds {bytes_max} bytes")
                # A 64 KiB write to a local file is short next to the network read;
                # it is not worth a thread hop per chunk.
                out.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(target.unlink, missing_ok=True)
        raise
