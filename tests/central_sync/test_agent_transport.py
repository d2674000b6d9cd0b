"""The aiohttp transport: TLS to central with verified certificates, bounded answers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_sync.agent import AiohttpTransport
from central_sync.agent.errors import (
    AgentConfigError,
    AnswerTooLargeError,
    TransportError,
    TransportTimeoutError,
)
from tests.central_sync.agent_helpers import ServerFactory, free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), like a pinned private CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "central.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "central.pem", directory / "central.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=b"echo:" + await request.read(), headers={"X-Test": "1"})

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65536)
        return response

    async def nothing(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/nothing", nothing)
    return app


async def test_https_with_the_pinned_ca_file_works(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await aiohttp_server(echo_app(), ssl=context)
    url = str(server.make_url("")).rstrip("/")
    assert url.startswith("https://")
    transport = AiohttpTransport(url, ca_file=cert)
    try:
        response = await transport.request("POST", "/echo", b"hi", timeout_s=5, body_bytes_max=100)
    finally:
        await transport.close()
    assert (response.status, response.body) == (200, b"echo:hi")
    assert response.header("x-test") == "1"


async def test_https_with_an_untrusted_certificate_fails_as_a_transport_error(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await aiohttp_server(echo_app(), ssl=context)
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))  # system CAs only
    try:
        with pytest.raises(TransportError):
            await transport.request("POST", "/echo", b"hi", timeout_s=5, body_bytes_max=100)
    finally:
        await transport.close()


async def test_answer_beyond_the_bound_is_refused(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(echo_app())
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))
    try:
        with pytest.raises(AnswerTooLargeError):
            await transport.request("POST", "/echo", b"x" * 200, timeout_s=5, body_bytes_max=100)
        with pytest.raises(AnswerTooLargeError):
            await transport.request("GET", "/big", timeout_s=5, body_bytes_max=100_000)
    finally:
        await transport.close()


async def test_download_streams_to_the_file_within_the_bound(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    server = await aiohttp_server(echo_app())
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))
    target = tmp_path / "release"
    try:
        response = await transport.download("/big", target, timeout_s=5, bytes_max=8 << 20)
        assert response.status == 200
        assert target.stat().st_size == 64 * 65536
        target.unlink()
        with pytest.raises(AnswerTooLargeError):
            await transport.download("/big", target, timeout_s=5, bytes_max=100_000)
        assert not target.exists()
        response = await transport.download("/nothing", target, timeout_s=5, bytes_max=100)
        assert response.status == 204
        assert not target.exists()
    finally:
        await transport.close()


async def test_refused_connection_and_timeout_are_transport_errors(
    aiohttp_server: ServerFactory,
) -> None:
    refused = AiohttpTransport(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransportError) as caught:
        await refused.request("GET", "/", timeout_s=5, body_bytes_max=100)
    assert not isinstance(caught.value, TransportTimeoutError)
    await refused.close()

    import asyncio

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    transport = AiohttpTransport(str(server.make_url("")).rstrip("/"))
    try:
        with pytest.raises(TransportTimeoutError):
            await transport.request("GET", "/slow", timeout_s=0.2, body_bytes_max=100)
    finally:
        await transport.close()


@pytest.mark.parametrize(
    "url", ["ftp://central", "central.example", "https://", "https://user:pw@central.example"]
)
def test_bad_central_url_is_a_config_error(url: str) -> None:
    with pytest.raises(AgentConfigError):
        AiohttpTransport(url)


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="CA file"):
        AiohttpTransport("https://central.example", ca_file=tmp_path / "none.pem")
