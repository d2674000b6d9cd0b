"""OSMP over HTTPS with agents identified by pinned TLS client certificates."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.app import create_app
from gateway.osmp import OsmpResult, parse_response
from gateway.server import build_ssl_context
from tests.gateway.conftest import make_settings
from tests.gateway.support import ACCOUNT, OTHER_PASSWORD, agents_toml, basic


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *items: bytes) -> Path:
    path.write_bytes(b"".join(items))
    os.chmod(path, 0o600)
    return path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    def make_ca(name: str) -> tuple[x509.Name, ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(name, key, None, ca=True)
        return cert.subject, key, cert

    ca_name, ca_key, ca_cert = make_ca("lobbypay test agents CA")
    rogue_name, rogue_key, _ = make_ca("rogue CA")
    out: dict[str, Any] = {"dir": tmp_path}
    out["ca"] = _write(tmp_path / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _cert("127.0.0.1", server_key, (ca_name, ca_key), server=True)
    out["server_cert"] = _write(
        tmp_path / "server.pem", server_cert.public_bytes(serialization.Encoding.PEM)
    )
    out["server_key"] = _write(tmp_path / "server.key", _pem_key(server_key))
    for label, issuer in (("agent", (ca_name, ca_key)), ("unpinned", (ca_name, ca_key)),
                          ("rogue", (rogue_name, rogue_key))):  # fmt: skip
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"{label} client", key, issuer)
        out[f"{label}_fp"] = hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)
        ).hexdigest()
        out[f"{label}_cert"] = _write(
            tmp_path / f"{label}.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        out[f"{label}_key"] = _write(tmp_path / f"{label}.key", _pem_key(key))
    return out


@pytest.fixture
async def https(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    data_dir: Path,
    pki: dict[str, Any],
) -> Callable[[str | None], Awaitable[TestClient[Any, Any]]]:
    agents = data_dir.parent / "agents.toml"
    agents.write_text(
        agents_toml()
        + f"""
[agents.certbank]
protocols = ["osmp"]
ip_allow = ["127.0.0.0/8"]
client_cert_sha256 = ["{pki["agent_fp"]}"]
"""
    )
    os.chmod(agents, 0o600)
    settings = make_settings(
        data_dir,
        tls_cert_path=str(pki["server_cert"]),
        tls_key_path=str(pki["server_key"]),
        tls_client_ca_path=str(pki["ca"]),
    )
    server_ctx = build_ssl_context(settings.gateway)
    assert server_ctx is not None

    async def client(who: str | None) -> TestClient[Any, Any]:
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        if who is not None:
            ctx.load_cert_chain(str(pki[f"{who}_cert"]), str(pki[f"{who}_key"]))
        server = TestServer(create_app(settings))
        await server.start_server(ssl=server_ctx)
        return await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=ctx))

    return client


def _pay(txn: str) -> str:
    return f"/osmp?command=pay&txn_id={txn}&txn_date=20250601120000&account={ACCOUNT}&sum=10.00"


async def test_pinned_client_certificate_identifies_the_agent(
    https: Callable[[str | None], Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await https("agent")
    resp = await client.get(_pay("1"))
    assert resp.status == 200
    assert parse_response(await resp.read()).result is OsmpResult.OK


async def test_no_certificate_and_no_password_is_401_but_basic_still_works(
    https: Callable[[str | None], Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await https(None)
    assert (await client.get(_pay("2"))).status == 401
    resp = await client.get(_pay("3"), headers=basic())
    assert parse_response(await resp.read()).result is OsmpResult.OK


async def test_certificate_of_our_ca_but_not_pinned_is_401(
    https: Callable[[str | None], Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await https("unpinned")
    assert (await client.get(_pay("4"))).status == 401


async def test_certificate_and_password_of_different_agents_is_401(
    https: Callable[[str | None], Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await https("agent")
    resp = await client.get(_pay("5"), headers=basic("checker", OTHER_PASSWORD))
    assert resp.status == 401


async def test_certificate_from_another_ca_fails_the_handshake(
    https: Callable[[str | None], Awaitable[TestClient[Any, Any]]],
) -> None:
    client = await https("rogue")
    with pytest.raises(aiohttp.ClientError):
        await client.get(_pay("6"))
