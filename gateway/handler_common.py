"""Pieces both front ends share: reading a body within bounds, the client certificate."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

from aiohttp import web

from gateway.errors import BodyTooLargeError, SlowClientError
from gateway.state import runtime_key

__all__ = ["client_cert_sha256", "read_body"]


async def read_body(request: web.Request) -> bytes:
    """The whole body, at most ``gateway.body_bytes_max`` bytes, within ``body_read_timeout_s``.

    A client announcing a larger Content-Length is refused before anything is
    read; one trickling its body is cut off (slowloris) with nothing recorded.
    """
    g = request.app[runtime_key].settings.gateway
    if request.content_length is not None and request.content_length > g.body_bytes_max:
        raise BodyTooLargeError(f"request body is larger than {g.body_bytes_max} bytes")
    try:
        async with asyncio.timeout(g.body_read_timeout_s):
            return await request.read()
    except TimeoutError:
        raise SlowClientError(
            f"request body not received within {g.body_read_timeout_s} s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLargeError(f"request body is larger than {g.body_bytes_max} bytes") from None


def client_cert_sha256(request: web.Request) -> str | None:
    """SHA-256 (hex) of the verified TLS client certificate, if the client sent one.

    The TLS layer has already checked it against ``gateway.tls_client_ca_path``;
    the fingerprint then says which agent it is (pinned in the agents file).
    """
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return None if not der else hashlib.sha256(der).hexdigest()
