"""Central's side of re-keying and decommissioning, against SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central_sync import protocol
from central_sync.central import lifecycle
from central_sync.central.errors import ConflictError, NotFoundError, TerminalStateError
from central_sync.central.storage import Storage, TerminalState
from central_sync.journal import GENESIS_HASH, Entry, entry_hash
from central_sync.provision import messages
from tests.central_sync.central_support import NOW_MS, Key, batch, enroll


def chain(count: int, start_seq: int = 1, prev: bytes = GENESIS_HASH) -> list[Entry]:
    from central_sync.journal import KIND_DEVICE_EVENT, EntryState

    entries = []
    for seq in range(start_seq, start_seq + count):
        body = {"device": "printer", "event": "paper_low", "n": seq}
        digest = entry_hash(prev, seq=seq, kind=KIND_DEVICE_EVENT, ts_ms=NOW_MS + seq, body=body)
        entries.append(
            Entry(
                seq=seq,
                kind=KIND_DEVICE_EVENT,
                ts_ms=NOW_MS + seq,
                body=body,
                prev_hash=prev,
                hash=digest,
                state=EntryState.PENDING,
            )
        )
        prev = digest
    return entries


def rekey_request(old: Key, new: Key) -> bytes:
    return messages.build_rekey_request(
        messages.RekeyRequest(
            terminal_id=old.terminal_id, new_public_key=new.public, created_ms=NOW_MS
        ),
        old_signer=old,
        new_signer=new,
    )


def decommission_request(key: Key, *, unsent: int = 0, forced: bool = False) -> bytes:
    return messages.build_decommission_request(
        messages.DecommissionRequest(
            terminal_id=key.terminal_id,
            created_ms=NOW_MS,
            reason="box replaced",
            unsent_entries=unsent,
            forced=forced,
        ),
        key,
    )


async def test_rekey_keeps_the_record_and_chain_under_the_new_id(ledger_storage: Storage) -> None:
    from central_sync.central.ingest import Ingestor

    central, old, new = Key(), Key(), Key()
    before = await enroll(ledger_storage, old)
    ingestor = Ingestor(ledger_storage, signer=central)
    entries = chain(6)
    assert (await ingestor.ingest(batch(entries[:3], old))).refusal is None

    record, answer = await lifecycle.rekey(
        ledger_storage, central, rekey_request(old, new), now_ms=NOW_MS + 10
    )

    assert (record.terminal_id, record.key, record.head_seq) == (new.terminal_id, before.key, 3)
    confirmed = messages.verify_lifecycle_answer(
        answer, central_public_key=central.public, action="rekey", terminal_id=old.terminal_id
    )
    assert confirmed.new_terminal_id == new.terminal_id
    assert await ledger_storage.get_terminal(old.terminal_id) is None
    # The chain continues under the new key; the old key can sign nothing more.
    assert (await ingestor.ingest(batch(entries[3:], new))).refusal is None
    refused = (await ingestor.ingest(batch(entries[3:], old))).refusal
    assert refused is not None
    assert refused.kind is protocol.RefusalKind.UNKNOWN_TERMINAL
    assert (await ledger_storage.get_terminal(new.terminal_id)).head_seq == 6  # type: ignore[union-attr]
    retired = await ledger_storage.retired_keys()
    assert [(k.terminal_id, k.successor_id, k.current_id) for k in retired] == [
        (old.terminal_id, new.terminal_id, new.terminal_id)
    ]


async def test_rekey_sent_again_after_success_answers_the_same(ledger_storage: Storage) -> None:
    central, old, new = Key(), Key(), Key()
    await enroll(ledger_storage, old)
    request = rekey_request(old, new)
    first, _ = await lifecycle.rekey(ledger_storage, central, request, now_ms=NOW_MS)

    again, answer = await lifecycle.rekey(ledger_storage, central, request, now_ms=NOW_MS + 1)

    assert again == first
    messages.verify_lifecycle_answer(
        answer, central_public_key=central.public, action="rekey", terminal_id=old.terminal_id
    )
    assert len(await ledger_storage.retired_keys()) == 1


async def test_retired_key_cannot_enroll_again(ledger_storage: Storage) -> None:
    central, old, new = Key(), Key(), Key()
    await enroll(ledger_storage, old)
    await lifecycle.rekey(ledger_storage, central, rekey_request(old, new), now_ms=NOW_MS)

    with pytest.raises(ConflictError, match="retired"):
        await enroll(ledger_storage, old)


async def test_rekey_to_a_second_new_key_after_the_first_conflicts(
    ledger_storage: Storage,
) -> None:
    central, old, new, other = Key(), Key(), Key(), Key()
    await enroll(ledger_storage, old)
    await lifecycle.rekey(ledger_storage, central, rekey_request(old, new), now_ms=NOW_MS)

    with pytest.raises(ConflictError, match="another key"):
        await lifecycle.rekey(ledger_storage, central, rekey_request(old, other), now_ms=NOW_MS)


async def test_rekey_to_a_key_enrolled_elsewhere_conflicts_and_changes_nothing(
    ledger_storage: Storage,
) -> None:
    central, old, taken = Key(), Key(), Key()
    await enroll(ledger_storage, old)
    await enroll(ledger_storage, taken)

    with pytest.raises(ConflictError, match="used before"):
        await lifecycle.rekey(ledger_storage, central, rekey_request(old, taken), now_ms=NOW_MS)

    assert (await ledger_storage.get_terminal(old.terminal_id)).public_key == old.public  # type: ignore[union-attr]


async def test_rekey_of_a_revoked_terminal_is_refused(ledger_storage: Storage) -> None:
    central, old, new = Key(), Key(), Key()
    await enroll(ledger_storage, old)
    await ledger_storage.set_terminal_state(
        old.terminal_id, TerminalState.REVOKED, reason="stolen", actor="test", now_ms=NOW_MS
    )

    with pytest.raises(TerminalStateError):
        await lifecycle.rekey(ledger_storage, central, rekey_request(old, new), now_ms=NOW_MS)


async def test_rekey_signed_by_another_key_is_refused(ledger_storage: Storage) -> None:
    central, old, new, thief = Key(), Key(), Key(), Key()
    await enroll(ledger_storage, old)
    forged = messages.build_rekey_request(
        messages.RekeyRequest(
            terminal_id=old.terminal_id, new_public_key=new.public, created_ms=NOW_MS
        ),
        old_signer=thief,
        new_signer=new,
    )

    with pytest.raises(protocol.SignatureError):
        await lifecycle.rekey(ledger_storage, central, forged, now_ms=NOW_MS)
    assert await ledger_storage.get_terminal(old.terminal_id) is not None


def test_rekey_without_possession_of_the_new_key_is_refused() -> None:
    old, new, someone = Key(), Key(), Key()
    request = messages.build_rekey_request(
        messages.RekeyRequest(
            terminal_id=old.terminal_id, new_public_key=new.public, created_ms=NOW_MS
        ),
        old_signer=old,
        new_signer=someone,  # signs for a public key it does not hold
    )

    with pytest.raises(protocol.SignatureError, match="possession"):
        messages.verify_rekey_request(request, public_key=old.public)


async def test_rekey_of_an_unknown_terminal_is_not_found(ledger_storage: Storage) -> None:
    central, old, new = Key(), Key(), Key()

    with pytest.raises(NotFoundError):
        await lifecycle.rekey(ledger_storage, central, rekey_request(old, new), now_ms=NOW_MS)


async def test_decommission_revokes_with_the_reason_and_is_idempotent(
    ledger_storage: Storage,
) -> None:
    central, key = Key(), Key()
    await enroll(ledger_storage, key)
    request = decommission_request(key, unsent=3, forced=True)

    record, answer = await lifecycle.decommission(
        ledger_storage, central, request, now_ms=NOW_MS, revocations_valid_s=3600
    )
    again, _ = await lifecycle.decommission(
        ledger_storage, central, request, now_ms=NOW_MS + 1, revocations_valid_s=3600
    )

    assert record.state is TerminalState.REVOKED
    assert record.state_reason == (
        "decommissioned: box replaced; 3 unsent entries discarded (--force)"
    )
    assert again.state_reason == record.state_reason
    messages.verify_lifecycle_answer(
        answer,
        central_public_key=central.public,
        action="decommission",
        terminal_id=key.terminal_id,
    )
    revoked = await ledger_storage.latest_publication(kind="revocations", scope="*")
    assert revoked is not None
    assert key.terminal_id in revoked[1].decode()


async def test_decommission_of_a_terminal_revoked_by_an_operator_is_refused(
    ledger_storage: Storage,
) -> None:
    central, key = Key(), Key()
    await enroll(ledger_storage, key)
    await ledger_storage.set_terminal_state(
        key.terminal_id, TerminalState.REVOKED, reason="stolen", actor="op", now_ms=NOW_MS
    )

    with pytest.raises(TerminalStateError):
        await lifecycle.decommission(
            ledger_storage,
            central,
            decommission_request(key),
            now_ms=NOW_MS,
            revocations_valid_s=60,
        )


def test_lifecycle_answer_for_another_action_is_refused() -> None:
    central, key = Key(), Key()
    answer = messages.build_lifecycle_answer(
        messages.LifecycleAnswer(
            action="decommission", terminal_id=key.terminal_id, new_terminal_id=None,
            central_time_ms=NOW_MS,
        ),
        central,
    )  # fmt: skip

    with pytest.raises(protocol.MalformedError, match="confirms"):
        messages.verify_lifecycle_answer(
            answer, central_public_key=central.public, action="rekey", terminal_id=key.terminal_id
        )


_FUZZ_OLD, _FUZZ_NEW = Key(), Key()
_FUZZ_VALID = (
    rekey_request(_FUZZ_OLD, _FUZZ_NEW),
    decommission_request(_FUZZ_OLD, unsent=1, forced=True),
)


@given(
    which=st.sampled_from([0, 1]),
    cut=st.integers(min_value=0, max_value=400),
    junk=st.binary(max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_lifecycle_parsers_raise_only_protocol_errors_for_damaged_bytes(
    which: int, cut: int, junk: bytes
) -> None:
    valid = _FUZZ_VALID[which]
    damaged = valid[:cut] + junk + valid[cut + len(junk) :]
    for parse in (
        lambda d: messages.verify_rekey_request(d, public_key=_FUZZ_OLD.public),
        lambda d: messages.verify_decommission_request(d, public_key=_FUZZ_OLD.public),
        lambda d: messages.peek_terminal_id(d, expected_type=messages.REKEY_REQUEST_TYPE),
        lambda d: messages.verify_lifecycle_answer(
            d, central_public_key=_FUZZ_OLD.public, action="rekey", terminal_id="T1"
        ),
    ):
        with contextlib.suppress(protocol.SyncProtocolError):
            parse(damaged)
