"""Payment agents: who may call the gateway, how they prove it, and their limits.

Theory of operation
-------------------
Agents live in their own TOML file (``gateway.agents_path``, by default
``<config dir>/agents.toml``), not in the layered configuration: it holds
credentials, so it must be readable by the gateway's user only (mode 0600,
checked when it is loaded; an HMAC key cannot be stored as a hash because the
gateway needs it to verify signatures). One table per agent::

    [agents.sber_atm]
    name = "Sberbank ATM host"
    protocols = ["osmp", "json"]        # which APIs it may use
    allow_pay = true                    # false: check / lookups only
    ip_allow = ["10.20.0.0/16"]         # source networks; "0.0.0.0/0" for any
    amount_min_minor = 100
    amount_max_minor = 1_500_000
    rate_per_s = 50                     # token bucket: sustained rate ...
    rate_burst = 100                    # ... and burst
    lang = "ru"                         # language of OSMP comments
    basic_password_hash = "scrypt$16384$8$1$<salt b64>$<hash b64>"
    client_cert_sha256 = ["<64 hex>"]   # pinned client certificates (DER SHA-256)
    [[agents.sber_atm.hmac_keys]]
    key_id = "sber-2025-01"
    secret_hex = "<64..128 hex>"

The file is validated with pydantic (strict types, unknown keys refused, input
never echoed in errors) and every problem is reported, not just the first.
Passwords are stored only as scrypt hashes (RFC 7914); :func:`hash_password`
makes them and :func:`verify_password` checks them in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from gateway.errors import AgentsFileError
from gateway.identifiers import AGENT_ID_PATTERN

__all__ = [
    "AGENTS_FILE_BYTES_MAX",
    "Agent",
    "AgentRegistry",
    "HmacKey",
    "hash_password",
    "load_agents",
    "new_agent_toml",
    "verify_password",
]

AGENTS_FILE_BYTES_MAX: Final = 1024 * 1024
AGENTS_MAX: Final = 1000
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_N_MAX: Final = 2**17
"""A hash claiming more work than this is refused: the file must not make us spend 128 MiB."""
_HASH_RE: Final = re.compile(
    r"scrypt\$([0-9]{1,7})\$([0-9]{1,2})\$([0-9]{1,2})\$([A-Za-z0-9+/=]{16,64})\$([A-Za-z0-9+/=]{43,88})"
)
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX_RE: Final = re.compile(r"(?:[0-9a-f]{2}){32,64}")
_FP_RE: Final = re.compile(r"[0-9a-f]{64}")
IP_DECISIONS_MAX: Final = 1024

Protocol = Literal["osmp", "json"]
_DEFAULT_PROTOCOLS: Final[tuple[Protocol, ...]] = ("osmp",)


# -- passwords ------------------------------------------------------------------


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """An scrypt hash string for the agents file (random 16-byte salt)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    match = _HASH_RE.fullmatch(text)
    if match is None:
        raise ValueError("must be scrypt$N$r$p$salt$hash (made by `lobbypay gateway agent-add`)")
    n, r, p = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if n < 2 or n & (n - 1) or n > SCRYPT_N_MAX or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError(f"scrypt parameters out of range (N a power of 2 <= {SCRYPT_N_MAX})")
    try:
        salt = base64.b64decode(match.group(4), validate=True)
        digest = base64.b64decode(match.group(5), validate=True)
    except ValueError:
        raise ValueError("salt or hash is not base64") from None
    if len(digest) < 32:
        raise ValueError("hash is shorter than 32 bytes")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the scrypt hash ``stored`` (constant-time compare)."""
    n, r, p, salt, digest = _parse_hash(stored)
    candidate = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=len(digest),
        maxmem=256 * 1024 * 1024,
    )
    return hmac.compare_digest(candidate, digest)


# -- the file's schema ------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)


class _HmacKeyModel(_Strict):
    key_id: str
    """Identifies the key in ``X-LP-Key-Id``; unique over all agents."""

    secret_hex: SecretStr
    """The shared HMAC-SHA256 key, 32..64 bytes as lowercase hex."""

    @field_validator("key_id")
    @classmethod
    def _check_key_id(cls, value: str) -> str:
        if _KEY_ID_RE.fullmatch(value) is None:
            raise ValueError("must be 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        return value

    @field_validator("secret_hex")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if _HEX_RE.fullmatch(value.get_secret_value()) is None:
            raise ValueError("must be 64..128 lowercase hex digits (32..64 bytes)")
        return value


class _AgentModel(_Strict):
    name: str = Field(default="", max_length=200)
    """Who this is, for operators."""

    enabled: bool = True
    """A disabled agent is refused (403) whatever its credentials."""

    protocols: list[Protocol] = Field(
        default_factory=lambda: list(_DEFAULT_PROTOCOLS), min_length=1
    )
    """Which APIs the agent may use: "osmp", "json"."""

    allow_pay: bool = True
    """False: the agent may check accounts but not pay (OSMP result 7)."""

    ip_allow: list[str] = Field(min_length=1, max_length=256)
    """Source networks (CIDR) the agent calls from; "0.0.0.0/0" and "::/0" allow any."""

    amount_min_minor: Annotated[int, Field(ge=1)] = 100
    """Smallest payment, in kopecks (OSMP result 241 below it)."""

    amount_max_minor: Annotated[int, Field(ge=1, le=10**12)] = 1_500_000
    """Largest payment, in kopecks (OSMP result 242 above it)."""

    rate_per_s: Annotated[int, Field(ge=1, le=100_000)] = 50
    """Sustained requests per second."""

    rate_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    """Requests allowed at once above the sustained rate."""

    lang: Literal["ru", "en"] = "ru"
    """Language of OSMP comments for this agent."""

    basic_password_hash: SecretStr | None = None
    """scrypt hash of the HTTP Basic password (OSMP); the password itself is never stored."""

    client_cert_sha256: list[str] = Field(default_factory=list, max_length=16)
    """SHA-256 fingerprints (hex) of the agent's TLS client certificates (OSMP)."""

    hmac_keys: list[_HmacKeyModel] = Field(default_factory=list, max_length=16)
    """Keys for HMAC-signed JSON API requests."""

    @field_validator("ip_allow")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError:
                raise ValueError(
                    "every entry must be a network like 10.0.0.0/8 or 192.0.2.7/32"
                ) from None
        return value

    @field_validator("basic_password_hash")
    @classmethod
    def _check_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _parse_hash(value.get_secret_value())
        return value

    @field_validator("client_cert_sha256")
    @classmethod
    def _check_fingerprints(cls, value: list[str]) -> list[str]:
        normalized = [v.replace(":", "").lower() for v in value]
        for v in normalized:
            if _FP_RE.fullmatch(v) is None:
                raise ValueError("must be SHA-256 fingerprints: 64 hex digits")
        return normalized

    @field_validator("amount_max_minor")
    @classmethod
    def _max_not_below_min(cls, value: int, info: object) -> int:
        data = getattr(info, "data", {})
        low = data.get("amount_min_minor")
        if isinstance(low, int) and value < low:
            raise ValueError("must not be less than amount_min_minor")
        return value


class _AgentsFileModel(_Strict):
    agents: dict[str, _AgentModel] = Field(default_factory=dict, max_length=AGENTS_MAX)


# -- what the gateway uses ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HmacKey:
    """One agent's signing key. ``secret`` never leaves this object except into hmac.new."""

    key_id: str
    agent_id: str
    secret: bytes

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"HmacKey(key_id={self.key_id!r}, agent_id={self.agent_id!r}, secret=***)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """A payment agent as the gateway sees it."""

    id: str
    name: str
    enabled: bool
    protocols: frozenset[str]
    allow_pay: bool
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    amount_min_minor: int
    amount_max_minor: int
    rate_per_s: int
    rate_burst: int
    lang: Literal["ru", "en"]
    password_hash: str | None
    cert_fingerprints: frozenset[str]
    _ip_decisions: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        assert re.fullmatch(AGENT_ID_PATTERN, self.id)
        assert 1 <= self.amount_min_minor <= self.amount_max_minor
        assert self.networks

    def __repr__(self) -> str:
        return f"Agent(id={self.id!r})"

    def ip_allowed(self, address: str | None) -> bool:
        """Whether a request from ``address`` may come from this agent."""
        if address is None:
            return False
        # Decisions are remembered per agent object (parsing an address costs far
        # more than a dict lookup); an agent is immutable, so they never go stale.
        cache = self._ip_decisions
        allowed = cache.get(address)
        if allowed is None:
            allowed = self._ip_allowed(address)
            if len(cache) >= IP_DECISIONS_MAX:
                cache.clear()  # bounded; an agent calls from a handful of addresses
            cache[address] = allowed
        return allowed

    def _ip_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)


@dataclass(frozen=True, slots=True)
class AgentRegistry:
    """Every agent, and the indexes the authenticators look them up by."""

    agents: Mapping[str, Agent]
    hmac_keys: Mapping[str, HmacKey]
    by_cert: Mapping[str, Agent]

    @classmethod
    def of(cls, agents: Iterable[Agent], keys: Iterable[HmacKey] = ()) -> AgentRegistry:
        by_id = {a.id: a for a in agents}
        by_cert = {fp: a for a in by_id.values() for fp in a.cert_fingerprints}
        return cls(by_id, {k.key_id: k for k in keys}, by_cert)

    def get(self, agent_id: str) -> Agent | None:
        return self.agents.get(agent_id)


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]


def parse_agents(text: str) -> AgentRegistry:
    """Parse the agents file's text; raise AgentsFileError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentsFileError(f"agents file is not valid TOML: {exc}") from None
    try:
        model = _AgentsFileModel.model_validate(data)
    except ValidationError as exc:
        problems = tuple(_problems(exc))
        raise AgentsFileError(
            f"agents file has {len(problems)} problem(s): " + "; ".join(problems[:5]), problems
        ) from None
    problems_list: list[str] = []
    agents: list[Agent] = []
    keys: list[HmacKey] = []
    seen_fp: dict[str, str] = {}
    for agent_id, m in model.agents.items():
        if re.fullmatch(AGENT_ID_PATTERN, agent_id) is None:
            problems_list.append(f"agents.{agent_id}: agent id must match {AGENT_ID_PATTERN}")
            continue
        if m.basic_password_hash is None and not m.client_cert_sha256 and not m.hmac_keys:
            problems_list.append(f"agents.{agent_id}: has no credentials")
        if "json" in m.protocols and not m.hmac_keys:
            problems_list.append(f"agents.{agent_id}: protocol json needs hmac_keys")
        for fp in m.client_cert_sha256:
            other = seen_fp.setdefault(fp, agent_id)
            if other != agent_id:
                problems_list.append(
                    f"agents.{agent_id}.client_cert_sha256: certificate also belongs to {other}"
                )
        for k in m.hmac_keys:
            if any(existing.key_id == k.key_id for existing in keys):
                problems_list.append(f"agents.{agent_id}.hmac_keys: key_id {k.key_id} twice")
            keys.append(
                HmacKey(
                    key_id=k.key_id,
                    agent_id=agent_id,
                    secret=bytes.fromhex(k.secret_hex.get_secret_value()),
                )
            )
        agents.append(
            Agent(
                id=agent_id,
                name=m.name,
                enabled=m.enabled,
                protocols=frozenset(m.protocols),
                allow_pay=m.allow_pay,
                networks=tuple(ipaddress.ip_network(n) for n in m.ip_allow),
                amount_min_minor=m.amount_min_minor,
                amount_max_minor=m.amount_max_minor,
                rate_per_s=m.rate_per_s,
                rate_burst=m.rate_burst,
                lang=m.lang,
                password_hash=(
                    None
                    if m.basic_password_hash is None
                    else m.basic_password_hash.get_secret_value()
                ),
                cert_fingerprints=frozenset(m.client_cert_sha256),
            )
        )
    if problems_list:
        raise AgentsFileError(
            f"agents file has {len(problems_list)} problem(s): " + "; ".join(problems_list[:5]),
            tuple(problems_list),
        )
    return AgentRegistry.of(agents, keys)


def load_agents(path: Path) -> AgentRegistry:
    """Read and check the agents file: it must be a regular file of mode 0600 or stricter."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise AgentsFileError(f"cannot open agents file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AgentsFileError(f"agents file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise AgentsFileError(
                f"agents file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o});"
                " it holds credentials: chmod 600 it"
            )
        if info.st_size > AGENTS_FILE_BYTES_MAX:
            raise AgentsFileError(
                f"agents file {path} is larger than {AGENTS_FILE_BYTES_MAX} bytes"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(AGENTS_FILE_BYTES_MAX + 1)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AgentsFileError(f"agents file {path} is not UTF-8") from None
    return parse_agents(text)


def _toml_str(value: str) -> str:
    # A TOML basic string accepts JSON's escapes for the characters we emit.
    import json

    return json.dumps(value, ensure_ascii=False)


def new_agent_toml(
    agent_id: str,
    *,
    name: str,
    ip_allow: list[str],
    protocols: list[str],
    password_hash: str | None,
    hmac_key_id: str | None,
    hmac_secret_hex: str | None,
    amount_min_minor: int = 100,
    amount_max_minor: int = 1_500_000,
    rate_per_s: int = 50,
    rate_burst: int = 100,
) -> str:
    """The TOML table of a new agent, to append to the agents file."""
    lines = [
        "",
        f"[agents.{agent_id}]",
        f"name = {_toml_str(name)}",
        f"protocols = [{', '.join(_toml_str(p) for p in protocols)}]",
        f"ip_allow = [{', '.join(_toml_str(n) for n in ip_allow)}]",
        f"amount_min_minor = {amount_min_minor}",
        f"amount_max_minor = {amount_max_minor}",
        f"rate_per_s = {rate_per_s}",
        f"rate_burst = {rate_burst}",
    ]
    if password_hash is not None:
        lines.append(f"basic_password_hash = {_toml_str(password_hash)}")
    if hmac_key_id is not None and hmac_secret_hex is not None:
        lines += [
            f"[[agents.{agent_id}.hmac_keys]]",
            f"key_id = {_toml_str(hmac_key_id)}",
            f"secret_hex = {_toml_str(hmac_secret_hex)}",
        ]
    return "\n".join(lines) + "\n"
