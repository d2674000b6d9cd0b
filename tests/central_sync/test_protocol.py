"""The sans-I/O sync protocol core: batches, acks, refusals, enrollment, bundles."""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central_sync import canonical, protocol, signing
from central_sync.central.synthetic import chain, synthetic_entries
from central_sync.journal import GENESIS_HASH, Entry, entry_hash
from central_sync.protocol import (
    BatchLimits,
    BuildError,
    ChainError,
    MalformedError,
    RefusalKind,
    SignatureError,
    SummaryMismatchError,
    SyncProtocolError,
    TooLargeError,
    UnsupportedVersionError,
    WrongTerminalError,
)
from firmware_config.identity import terminal_id_from_public_key

NOW_MS = 1_750_000_000_000


class Key:
    """An Ed25519 signer with its public key and terminal id."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes_raw()
        self.terminal_id = terminal_id_from_public_key(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


@pytest.fixture(scope="module")
def term() -> Key:
    return Key()


@pytest.fixture(scope="module")
def central() -> Key:
    return Key()


def build(entries: list[Entry], key: Key, **kw: Any) -> protocol.OutgoingBatch:
    kw.setdefault("entries_max", 10_000)
    kw.setdefault("bytes_max", 8_000_000)
    return protocol.build_batch(entries, terminal_id=key.terminal_id, signer=key, **kw)


def sealed(body: dict[str, Any], key: Key, msg_type: str = "batch") -> bytes:
    """Sign an arbitrary batch body as a (hostile) terminal would, and compress it."""
    return zlib.compress(signing.seal(msg_type, body, key))


def batch_body(data: bytes) -> dict[str, Any]:
    """The batch body, with each entry as its canonical text (for byte-level edits)."""
    body = canonical.decode(zlib.decompress(data))["body"]
    assert isinstance(body, dict)
    body["entries"] = [canonical.encode(e).decode() for e in body["entries"]]
    return body


def signed_raw(body: dict[str, Any], key: Key) -> bytes:
    """Sign a batch whose entries are given as raw texts, as a hostile terminal could."""
    header = {k: v for k, v in body.items() if k != "entries"}
    texts = [t if isinstance(t, str) else json.dumps(t) for t in body.get("entries", [])]
    rest = canonical.encode(header).decode()
    body_text = '{"entries":[' + ",".join(texts) + "]," + rest[1:] if "entries" in body else rest
    tail = ',"type":"batch","v":1}'
    signature = key.sign(('{"body":' + body_text + tail).encode("utf-8", "surrogatepass"))
    message = '{"body":' + body_text + ',"sig":"' + signature.hex() + '"' + tail
    return zlib.compress(message.encode("utf-8", "surrogatepass"))


# --- building and verifying -----------------------------------------------------


def test_build_then_verify_round_trips_entries_hashes_and_summary(term: Key) -> None:
    entries = synthetic_entries(1, 20, gateway_share=0.5, meter_every=4)
    out = build(entries, term)
    batch = protocol.verify_batch(out.data, public_key=term.public)
    assert (batch.from_seq, batch.to_seq) == (1, len(entries))
    assert batch.prev_hash == GENESIS_HASH
    assert batch.head_hash == entries[-1].hash == out.head_hash
    for got, want in zip(batch.entries, entries, strict=True):
        assert (got.seq, got.kind, got.ts_ms, dict(got.body)) == (
            want.seq,
            want.kind,
            want.ts_ms,
            dict(want.body),
        )
        assert got.hash == want.hash
        assert got.hash == entry_hash(
            want.prev_hash, seq=want.seq, kind=want.kind, ts_ms=want.ts_ms, body=want.body
        )
        assert got.encoded == canonical.encode(
            {"seq": want.seq, "kind": want.kind, "ts_ms": want.ts_ms, "body": dict(want.body)}
        )
    intents = [e for e in entries if e.kind == "payment-intent"]
    assert batch.summary.kinds == {"payment-intent": 20, "payment-result": 20, "meter-reading": 5}
    assert batch.summary.currency_totals == {"RUB": sum(e.body["amount_minor"] for e in intents)}
    assert sum(batch.summary.provider_totals.values()) == sum(
        s["amount_minor"] for e in intents for s in e.body["services"]
    )


def test_batch_is_a_valid_signing_envelope_after_decompression(term: Key) -> None:
    out = build(synthetic_entries(2, 5), term)
    message = zlib.decompress(out.data)
    opened = signing.open_message(message, expected_type="batch", public_key=term.public)
    assert opened.body["to_seq"] == 10


def test_batch_message_is_exactly_the_canonical_seal_of_its_body(term: Key) -> None:
    out = build(synthetic_entries(22, 3, meter_every=2), term)
    message = zlib.decompress(out.data)
    body = canonical.decode(message)["body"]
    assert message == signing.seal("batch", body, term)


def test_verify_batch_continuing_a_chain_starts_from_prev_hash(term: Key) -> None:
    entries = synthetic_entries(3, 10)
    out = build(entries[7:], term)
    batch = protocol.verify_batch(out.data, public_key=term.public)
    assert (batch.from_seq, batch.prev_hash) == (8, entries[6].hash)


def test_build_stops_at_entries_max(term: Key) -> None:
    entries = synthetic_entries(4, 10)
    out = build(entries, term, entries_max=7)
    assert (out.from_seq, out.to_seq, out.entry_count) == (1, 7, 7)


def test_build_stops_before_bytes_max_and_stays_within_it(term: Key) -> None:
    entries = synthetic_entries(5, 200)
    out = build(entries, term, bytes_max=20_000)
    assert 1 < out.to_seq < 400
    assert out.uncompressed_bytes <= 20_000
    assert len(zlib.decompress(out.data)) == out.uncompressed_bytes
    nxt = build(entries[out.to_seq :], term, bytes_max=20_000)
    assert nxt.from_seq == out.to_seq + 1


def test_build_refuses_a_single_entry_larger_than_bytes_max(term: Key) -> None:
    with pytest.raises(BuildError, match="alone exceeds"):
        build(synthetic_entries(6, 1), term, bytes_max=700)


def test_build_refuses_a_non_contiguous_run(term: Key) -> None:
    entries = synthetic_entries(7, 5)
    with pytest.raises(BuildError, match="not contiguous"):
        build([entries[0], entries[2]], term)


def test_build_refuses_an_entry_not_linked_to_the_previous(term: Key) -> None:
    a = synthetic_entries(8, 2)
    b = synthetic_entries(9, 2)
    with pytest.raises(BuildError, match="does not link"):
        build([a[0], b[1]], term)


def test_build_refuses_a_journal_entry_that_does_not_match_its_hash(term: Key) -> None:
    entries = synthetic_entries(10, 2)
    body = dict(entries[1].body, amount_minor=1)
    with pytest.raises(BuildError, match="stored hash"):
        build([entries[0], replace(entries[1], body=body)], term)


def test_build_refuses_an_empty_run(term: Key) -> None:
    with pytest.raises(BuildError, match="no entries"):
        build([], term)


def test_typical_payment_costs_at_most_120_bytes_on_the_wire(term: Key) -> None:
    entries = synthetic_entries(11, 500)
    out = build(entries, term)
    assert len(out.data) / 500 <= 120


# --- refusing what is not acceptable -------------------------------------------


def test_verify_with_another_terminals_key_raises_signature_error(term: Key) -> None:
    out = build(synthetic_entries(12, 3), term)
    with pytest.raises(SignatureError):
        protocol.verify_batch(out.data, public_key=Key().public)


def test_replay_under_another_terminal_id_fails_its_signature(term: Key) -> None:
    other = Key()
    body = batch_body(build(synthetic_entries(13, 3), term).data)
    message = zlib.decompress(build(synthetic_entries(13, 3), term).data)
    forged = message.replace(term.terminal_id.encode(), other.terminal_id.encode())
    envelope = protocol.open_batch(zlib.compress(forged))
    assert envelope.terminal_id == other.terminal_id
    with pytest.raises(SignatureError):
        envelope.verify(other.public)
    assert body["terminal_id"] == term.terminal_id


def test_every_single_byte_change_of_a_signed_batch_is_rejected(term: Key) -> None:
    message = zlib.decompress(build(synthetic_entries(14, 1), term).data)
    assert len(message) < 2000
    for position in range(len(message)):
        for flip in (0x01, 0x80):
            changed = bytearray(message)
            changed[position] ^= flip
            with pytest.raises(SyncProtocolError):
                protocol.verify_batch(zlib.compress(bytes(changed)), public_key=term.public)


def test_every_single_byte_change_of_the_compressed_wire_is_rejected_or_harmless(
    term: Key,
) -> None:
    out = build(synthetic_entries(15, 1), term)
    reference = protocol.verify_batch(out.data, public_key=term.public)
    for position in range(len(out.data)):
        changed = bytearray(out.data)
        changed[position] ^= 0x01
        try:
            batch = protocol.verify_batch(bytes(changed), public_key=term.public)
        except SyncProtocolError:
            continue
        # Only the unused padding bits of the last deflate byte can change
        # without changing the content; the content must then be identical.
        assert batch == replace(reference, wire_bytes=len(changed))


def test_unknown_protocol_version_is_refused_before_the_signature(term: Key) -> None:
    message = zlib.decompress(build(synthetic_entries(16, 1), term).data)
    assert message.endswith(b',"type":"batch","v":1}')
    future = message[: -len(b"1}")] + b"2}"
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        protocol.verify_batch(zlib.compress(future), public_key=term.public)
    assert issubclass(UnsupportedVersionError, signing.UnknownVersionError)


def test_decompression_bomb_is_refused_within_the_bound() -> None:
    bomb = zlib.compress(b"\x00" * 8_000_000, 9)
    limits = BatchLimits(decompressed_bytes_max=1_000_000)
    with pytest.raises(TooLargeError, match="decompression bomb"):
        protocol.open_batch(bomb, limits=limits)


def test_oversized_wire_batch_is_refused() -> None:
    with pytest.raises(TooLargeError, match="on the wire"):
        protocol.open_batch(b"x" * 1001, limits=BatchLimits(wire_bytes_max=1000))


def test_batch_with_more_than_entries_max_is_refused(term: Key) -> None:
    out = build(synthetic_entries(17, 6), term)
    with pytest.raises(TooLargeError, match="more than 10 entries"):
        protocol.verify_batch(out.data, public_key=term.public, limits=BatchLimits(entries_max=10))


def test_entry_above_entry_bytes_max_is_refused(term: Key) -> None:
    out = build(synthetic_entries(18, 1), term)
    with pytest.raises(TooLargeError, match="entry 1 larger"):
        protocol.verify_batch(
            out.data, public_key=term.public, limits=BatchLimits(entry_bytes_max=100)
        )


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "truncated"),
        (b"not zlib at all", "not a valid zlib"),
        (zlib.compress(b"{}")[:-3], "truncated"),
        (zlib.compress(b"{}") + b"junk", "trailing bytes"),
        (zlib.compress(b"\xff\xfe"), "not UTF-8"),
        (zlib.compress(b'{"a":1.5}'), "floats"),
        (zlib.compress(b'{"a": 1}'), "exactly v, type, body and sig"),
        (zlib.compress(b"[1,2]"), "exactly v, type, body and sig"),
        (zlib.compress(b'{"body":{},"sig":"00","type":"batch","v":1}'), "lowercase hex"),
        (
            zlib.compress(
                b'{"body":{"x":"\\ud800"},"sig":"' + b"0" * 128 + b'","type":"batch","v":1}'
            ),
            "batch lacks",
        ),
    ],
)
def test_malformed_wire_bytes_raise_malformed_error(wire: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        protocol.open_batch(wire)


def _mutated(term: Key, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    body = batch_body(build(synthetic_entries(19, 2), term).data)
    mutate(body)
    return signed_raw(body, term)


def _set_entry(body: dict[str, Any], index: int, text: str) -> None:
    body["entries"][index] = text


def _entry_value(body: dict[str, Any], index: int) -> dict[str, Any]:
    value = json.loads(body["entries"][index])
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda b: b.update(head_hash="00" * 32), ChainError, "head_hash"),
        (lambda b: b.update(prev_hash="11" * 32), ChainError, "genesis"),
        (
            lambda b: _set_entry(b, 1, canonical.encode({**_entry_value(b, 1), "seq": 9}).decode()),
            ChainError,
            "carries seq 9",
        ),
        (
            lambda b: _set_entry(
                b, 0, canonical.encode({**_entry_value(b, 0), "ts_ms": 5}).decode()
            ),
            ChainError,
            "head_hash",
        ),
        (lambda b: b["summary"].update(entries=3), SummaryMismatchError, "counts"),
        (
            lambda b: b["summary"]["currency_totals"].update(RUB=1),
            SummaryMismatchError,
            "totals",
        ),
        (lambda b: b.update(to_seq=5), MalformedError, "exactly from_seq..to_seq"),
        (lambda b: b.update(extra=1), MalformedError, "unknown fields extra"),
        (lambda b: b.pop("summary"), MalformedError, "lacks summary"),
        (lambda b: _set_entry(b, 0, " " + b["entries"][0]), MalformedError, "canonical"),
        (
            lambda b: _set_entry(
                b, 0, b["entries"][0].replace('{"body":{', '{"body":{"a":"\\ud800",', 1)
            ),
            MalformedError,
            "canonical",
        ),
        (
            lambda b: _set_entry(b, 0, b["entries"][0].replace('{"body":', '{"body": ', 1)),
            MalformedError,
            "canonical",
        ),
        (
            lambda b: _set_entry(b, 0, b["entries"][0].replace('"kind"', '"kind":"x","kind"', 1)),
            MalformedError,
            "canonical",
        ),
        (
            lambda b: _set_entry(b, 0, b["entries"][0].replace('"seq":1', '"seq":1.0', 1)),
            MalformedError,
            "floats",
        ),
        (
            lambda b: _set_entry(b, 0, b["entries"][0].replace('"ts_ms":', '"ts_ms":NaN,"x":', 1)),
            MalformedError,
            "NaN",
        ),
        (
            lambda b: _set_entry(
                b,
                0,
                canonical.encode({**_entry_value(b, 0), "body": {"n": 1}})
                .decode()
                .replace('"n":1', '"n":' + "9" * 25),
            ),
            MalformedError,
            "64-bit",
        ),
        (lambda b: b["entries"].__setitem__(0, 5), MalformedError, "must have exactly body"),
        (
            lambda b: _set_entry(
                b,
                0,
                canonical.encode(
                    {
                        **_entry_value(b, 0),
                        "body": {**_entry_value(b, 0)["body"], "amount_minor": 0},
                    }
                ).decode(),
            ),
            MalformedError,
            "amount_minor",
        ),
        (
            lambda b: _set_entry(
                b,
                1,
                canonical.encode(
                    {**_entry_value(b, 1), "body": {**_entry_value(b, 1)["body"], "outcome": "ok"}}
                ).decode(),
            ),
            MalformedError,
            "outcome",
        ),
        (
            lambda b: _set_entry(
                b, 0, canonical.encode({**_entry_value(b, 0), "kind": "Bad Kind"}).decode()
            ),
            MalformedError,
            "kind",
        ),
        (
            lambda b: _set_entry(
                b, 0, canonical.encode({**_entry_value(b, 0), "kind": ["payment-intent"]}).decode()
            ),
            MalformedError,
            "kind",
        ),
        (
            lambda b: _set_entry(
                b,
                1,
                canonical.encode(
                    {**_entry_value(b, 1), "body": {**_entry_value(b, 1)["body"], "outcome": []}}
                ).decode(),
            ),
            MalformedError,
            "outcome",
        ),
    ],
)
def test_batch_signed_by_the_terminal_but_inconsistent_is_rejected(
    term: Key,
    mutate: Callable[[dict[str, Any]], None],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        protocol.verify_batch(_mutated(term, mutate), public_key=term.public)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"payment_id": "short"}, "malformed payment_id"),
        ({"amount_minor": True}, "amount_minor must be an integer"),
        ({"currency": "rub"}, "ISO 4217"),
        ({"account": ""}, "account must be a non-empty string"),
        ({"services": {"a": 1}}, "services must be a list"),
        ({"services": [5]}, "each service must be an object"),
        ({"services": [{"provider": "", "amount_minor": 1}]}, "service provider"),
        ({"services": [{"provider": "P", "amount_minor": -1}]}, "service amount_minor"),
        ({"agent": "sber"}, "agent and txn_id come together"),
        ({"agent": "a" * 65, "txn_id": "1"}, "agent must be"),
        ({"agent": "sber", "txn_id": ""}, "txn_id must be"),
    ],
)
def test_signed_payment_intent_with_a_malformed_field_is_rejected(
    term: Key, change: dict[str, Any], message: str
) -> None:
    def mutate(b: dict[str, Any]) -> None:
        entry = _entry_value(b, 0)
        _set_entry(b, 0, canonical.encode({**entry, "body": {**entry["body"], **change}}).decode())

    with pytest.raises(MalformedError, match=message):
        protocol.verify_batch(_mutated(term, mutate), public_key=term.public)


def test_batch_with_a_gateway_intent_lacking_txn_id_is_rejected(term: Key) -> None:
    entries = chain(
        iter(
            [
                (
                    "payment-intent",
                    {
                        "payment_id": "p-000000001",
                        "amount_minor": 100,
                        "currency": "RUB",
                        "account": "1",
                        "channel": "gateway",
                        "agent": "atm",
                    },
                )
            ]
        )
    )
    with pytest.raises(BuildError, match="agent and txn_id"):
        build(entries, term)


# --- the fast canonical path agrees with canonical.decode -------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, spaces=st.booleans())
def test_fast_canonical_decode_agrees_with_canonical_decode(value: Any, spaces: bool) -> None:
    text = json.dumps(value, sort_keys=not spaces, ensure_ascii=spaces)
    try:
        expected: Any = canonical.decode(text.encode("utf-8", "surrogatepass"))
    except (canonical.CanonicalError, UnicodeError):
        expected = MalformedError
    try:
        got: Any = protocol._fast_canonical_decode(text, full_check=True)
    except MalformedError:
        got = MalformedError
    assert got == expected


def _integers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [i for item in value.values() for i in _integers(item)]
    if isinstance(value, list):
        return [i for item in value for i in _integers(item)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_long_integer_screen_never_passes_an_integer_beyond_64_bits(value: Any) -> None:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if not protocol._may_hold_long_ints(text.encode("utf-8", "surrogatepass")):
        assert all(abs(i) <= canonical.INT_ABS_MAX for i in _integers(value))


def test_long_integer_screen_ignores_digits_inside_strings(term: Key) -> None:
    # The first batch carries the all-zero genesis hash: 64 digits, in a string.
    message = zlib.decompress(build(synthetic_entries(21, 3), term).data)
    assert b'"prev_hash":"' + b"0" * 64 in message
    assert not protocol._may_hold_long_ints(message)
    assert protocol._may_hold_long_ints(b'{"n":-1234567890123456789}')


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_open_batch_on_arbitrary_bytes_raises_only_protocol_errors(data: bytes) -> None:
    for wire in (data, zlib.compress(data)):
        with pytest.raises(SyncProtocolError):
            protocol.open_batch(wire)


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_byte_replacement_in_a_batch_is_rejected_or_identical(
    position: int, value: int
) -> None:
    key = _KEY
    message = _MESSAGE
    changed = bytearray(message)
    changed[position % len(message)] = value
    if bytes(changed) == message:
        return
    with pytest.raises(SyncProtocolError):
        protocol.verify_batch(zlib.compress(bytes(changed)), public_key=key.public)


_KEY = Key()
_MESSAGE = zlib.decompress(
    protocol.build_batch(
        synthetic_entries(20, 2),
        terminal_id=_KEY.terminal_id,
        signer=_KEY,
        entries_max=10,
        bytes_max=100_000,
    ).data
)


# --- acks and refusals ---------------------------------------------------------------


def test_ack_round_trips(term: Key, central: Key) -> None:
    data = protocol.build_ack(term.terminal_id, 42, b"\x07" * 32, NOW_MS, central)
    ack = protocol.verify_ack(data, central.public, term.terminal_id)
    assert (ack.acked_seq, ack.head_hash, ack.central_time_ms) == (42, b"\x07" * 32, NOW_MS)
    assert (
        protocol.parse_answer(data, central_public_key=central.public, terminal_id=term.terminal_id)
        == ack
    )


def test_ack_for_another_terminal_raises_wrong_terminal(term: Key, central: Key) -> None:
    data = protocol.build_ack(Key().terminal_id, 1, b"\x00" * 32, NOW_MS, central)
    with pytest.raises(WrongTerminalError):
        protocol.verify_ack(data, central.public, term.terminal_id)


def test_ack_signed_by_anyone_but_central_raises_signature_error(term: Key, central: Key) -> None:
    data = protocol.build_ack(term.terminal_id, 1, b"\x00" * 32, NOW_MS, term)
    with pytest.raises(SignatureError):
        protocol.verify_ack(data, central.public, term.terminal_id)


def test_a_batch_cannot_pass_as_an_ack(term: Key) -> None:
    message = zlib.decompress(build(synthetic_entries(21, 1), term).data)
    with pytest.raises(MalformedError, match="expected a 'ack'"):
        protocol.verify_ack(message, term.public, term.terminal_id)


@pytest.mark.parametrize("kind", list(RefusalKind))
def test_refusal_round_trips_with_its_retryable_flag(
    kind: RefusalKind, term: Key, central: Key
) -> None:
    refusal = protocol.Refusal(
        kind=kind,
        terminal_id=term.terminal_id,
        reason="test",
        message="because",
        central_time_ms=NOW_MS,
        expected_seq=7 if kind is RefusalKind.GAP else None,
    )
    data = protocol.build_refusal(refusal, central)
    got = protocol.parse_answer(
        data, central_public_key=central.public, terminal_id=term.terminal_id
    )
    assert got == refusal
    assert isinstance(got, protocol.Refusal)
    assert got.retryable is (
        kind in {RefusalKind.GAP, RefusalKind.RETRY_LATER, RefusalKind.TOO_LARGE}
    )
    assert set(protocol.REFUSAL_MESSAGES[kind]) == {"en", "ru"}
    assert json.loads(data)["body"]["retryable"] is got.retryable


def test_forged_refusal_raises_so_the_agent_retries(term: Key, central: Key) -> None:
    refusal = protocol.Refusal(
        kind=RefusalKind.REVOKED,
        terminal_id=term.terminal_id,
        reason="revoked",
        message="stop",
        central_time_ms=NOW_MS,
    )
    data = protocol.build_refusal(refusal, Key())
    with pytest.raises(SignatureError):
        protocol.parse_answer(data, central_public_key=central.public, terminal_id=term.terminal_id)


def test_unsigned_error_json_raises_malformed(term: Key, central: Key) -> None:
    with pytest.raises(MalformedError):
        protocol.parse_answer(
            b'{"error":"retry-later"}', central_public_key=central.public, terminal_id="T1"
        )


# --- enrollment, heartbeat, bundles ---------------------------------------------


def _request(key: Key, **kw: Any) -> protocol.EnrollRequest:
    fields: dict[str, Any] = {
        "terminal_id": key.terminal_id,
        "public_key": key.public,
        "registration_code": "ABCD-1234",
        "location": "msk-lenina-5",
        "label": "Подъезд 1",
        "created_ms": NOW_MS,
    }
    fields.update(kw)
    return protocol.EnrollRequest(**fields)


def test_enroll_request_round_trips(term: Key) -> None:
    request = _request(term)
    assert protocol.verify_enroll_request(protocol.build_enroll_request(request, term)) == request


def test_enroll_request_signed_by_another_key_raises_signature_error(term: Key) -> None:
    data = protocol.build_enroll_request(_request(term), Key())
    with pytest.raises(SignatureError):
        protocol.verify_enroll_request(data)


def test_enroll_request_with_a_foreign_terminal_id_raises_malformed(term: Key) -> None:
    data = protocol.build_enroll_request(_request(term, terminal_id="TAAAAAAAAAAAAAAAA"), term)
    with pytest.raises(MalformedError, match="derived"):
        protocol.verify_enroll_request(data)


def test_enrollment_answer_round_trips(term: Key, central: Key) -> None:
    answer = protocol.Enrollment(
        terminal_id=term.terminal_id, location="msk", label="kiosk 1", enrolled_ms=NOW_MS
    )
    data = protocol.build_enrollment(answer, central)
    assert protocol.verify_enrollment(data, central.public, term.terminal_id) == answer
    with pytest.raises(WrongTerminalError):
        protocol.verify_enrollment(data, central.public, Key().terminal_id)


def test_heartbeat_round_trips_and_needs_the_terminal_key(term: Key) -> None:
    beat = protocol.Heartbeat(
        terminal_id=term.terminal_id,
        ts_ms=NOW_MS,
        queue_depth=12,
        oldest_pending_age_s=30,
        software_version="0.1.0",
        catalog_version=7,
        config_version=None,
        health={"printer": "ok", "paper_low": True},
    )
    data = protocol.build_heartbeat(beat, term)
    assert protocol.peek_signer_id(data, expected_type="heartbeat") == term.terminal_id
    assert protocol.verify_heartbeat(data, term.public) == beat
    with pytest.raises(SignatureError):
        protocol.verify_heartbeat(data, Key().public)


def _bundle(version: int, expires_ms: int = NOW_MS + 1000) -> protocol.ConfigBundle:
    return protocol.ConfigBundle(
        version=version,
        scope="location:msk-lenina-5",
        issued_ms=NOW_MS - 1000,
        expires_ms=expires_ms,
        limits={"payment_amount_max_minor": 1_500_000},
        surcharge_rules=[{"provider": "Vodokanal", "percent_bp": 100}],
        timeouts={"payment_s": 90},
        offline_policy={"offline_amount_max_minor": 300_000},
    )


def test_config_bundle_round_trips(central: Key) -> None:
    data = protocol.build_config_bundle(_bundle(3), central)
    got = protocol.verify_config_bundle(
        data, central_public_key=central.public, now_ms=NOW_MS, current_version=3
    )
    assert got == _bundle(3)


def test_config_bundle_older_than_held_raises_rollback(central: Key) -> None:
    data = protocol.build_config_bundle(_bundle(2), central)
    with pytest.raises(protocol.RollbackError):
        protocol.verify_config_bundle(
            data, central_public_key=central.public, now_ms=NOW_MS, current_version=3
        )


def test_expired_config_bundle_raises_expired(central: Key) -> None:
    data = protocol.build_config_bundle(_bundle(4, expires_ms=NOW_MS), central)
    with pytest.raises(protocol.ExpiredError):
        protocol.verify_config_bundle(data, central_public_key=central.public, now_ms=NOW_MS)


def test_config_bundle_signed_by_a_terminal_raises_signature_error(term: Key, central: Key) -> None:
    data = protocol.build_config_bundle(_bundle(1), term)
    with pytest.raises(SignatureError):
        protocol.verify_config_bundle(data, central_public_key=central.public, now_ms=NOW_MS)


def test_revocation_list_round_trips_and_refuses_rollback(central: Key) -> None:
    revocations = protocol.RevocationList(
        version=5, issued_ms=NOW_MS, expires_ms=NOW_MS + 10, revoked=("TA", "TB")
    )
    data = protocol.build_revocation_list(revocations, central)
    assert (
        protocol.verify_revocation_list(data, central_public_key=central.public, now_ms=NOW_MS)
        == revocations
    )
    with pytest.raises(protocol.RollbackError):
        protocol.verify_revocation_list(
            data, central_public_key=central.public, now_ms=NOW_MS, current_version=6
        )
    with pytest.raises(protocol.ExpiredError):
        protocol.verify_revocation_list(data, central_public_key=central.public, now_ms=NOW_MS + 10)


def test_revocation_list_with_unsorted_ids_raises_malformed(central: Key) -> None:
    body = {"version": 1, "issued_ms": 0, "expires_ms": NOW_MS * 2, "revoked": ["TB", "TA"]}
    data = signing.seal("revocations", body, central)
    with pytest.raises(MalformedError, match="sorted"):
        protocol.verify_revocation_list(data, central_public_key=central.public, now_ms=NOW_MS)


# --- fuzzing the small messages' parsers -------------------------------------------

_CENTRAL = Key()
_SMALL_MESSAGES = [
    protocol.build_ack(_KEY.terminal_id, 3, b"\x01" * 32, NOW_MS, _CENTRAL),
    protocol.build_enroll_request(_request(_KEY), _KEY),
    protocol.build_heartbeat(
        protocol.Heartbeat(
            terminal_id=_KEY.terminal_id,
            ts_ms=1,
            queue_depth=0,
            oldest_pending_age_s=None,
            software_version="1",
            catalog_version=None,
            config_version=None,
            health={},
        ),
        _KEY,
    ),
    protocol.build_config_bundle(_bundle(1), _CENTRAL),
]


def _parse_all(data: bytes) -> None:
    """Every parser of a small message, each allowed to refuse only with a protocol error."""
    parsers: list[Callable[[], object]] = [
        lambda: protocol.parse_answer(
            data, central_public_key=_CENTRAL.public, terminal_id=_KEY.terminal_id
        ),
        lambda: protocol.verify_enroll_request(data),
        lambda: protocol.verify_heartbeat(data, _KEY.public),
        lambda: protocol.verify_config_bundle(
            data, central_public_key=_CENTRAL.public, now_ms=NOW_MS
        ),
        lambda: protocol.verify_revocation_list(
            data, central_public_key=_CENTRAL.public, now_ms=NOW_MS
        ),
        lambda: protocol.peek_signer_id(data, expected_type="heartbeat"),
    ]
    for parse in parsers:
        with contextlib.suppress(SyncProtocolError):
            parse()


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_small_message_parsers_on_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    _parse_all(data)


@settings(max_examples=150, deadline=None)
@given(
    which=st.integers(min_value=0, max_value=len(_SMALL_MESSAGES) - 1),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
)
def test_small_message_with_one_byte_changed_never_verifies_as_something_else(
    which: int, position: int, value: int
) -> None:
    original = _SMALL_MESSAGES[which]
    changed = bytearray(original)
    changed[position % len(original)] = value
    if bytes(changed) == original:
        return
    _parse_all(bytes(changed))
    verifiers: list[Callable[[bytes], object]] = [
        lambda d: protocol.verify_ack(d, _CENTRAL.public, _KEY.terminal_id),
        protocol.verify_enroll_request,
        lambda d: protocol.verify_heartbeat(d, _KEY.public),
        lambda d: protocol.verify_config_bundle(
            d, central_public_key=_CENTRAL.public, now_ms=NOW_MS
        ),
    ]
    with pytest.raises(SyncProtocolError):
        verifiers[which](bytes(changed))
