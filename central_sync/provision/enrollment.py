"""The enrollment record: what makes re-running `lobbypay provision` safe.

After central enrolls a terminal, the terminal keeps central's signed answer in
``enrollment.json`` beside its identity key (same directory, mode 0600). On the
next run, provisioning re-verifies that answer against the pinned central key
and the terminal's own id: if it holds, the terminal *is* enrolled with this key
at this central, and nothing is sent or rotated.

A re-key appends central's signed ``lifecycle-answer`` to ``rekeys``; the record
is valid when the enrollment names the first id and each re-key answer leads
from one id to the next, ending at the id of the key on disk. So the record is
never taken on trust: every link is a signature by central.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from central_sync import protocol
from central_sync.agent.files import write_atomic
from central_sync.provision import messages

RECORD_FILE_NAME = "enrollment.json"
RECORD_FORMAT = 1
RECORD_BYTES_MAX = 256 * 1024
REKEYS_MAX = 100


class EnrollmentRecordError(ValueError):
    """The record is unreadable, or does not verify (a damaged or foreign file)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentRecord:
    """A verified enrollment of this terminal with one central."""

    terminal_id: str
    """The current id (after any re-keys)."""
    central_url: str
    central_public_key: bytes
    location: str
    label: str
    enrolled_ms: int
    enrollment: bytes
    """Central's signed enrollment answer for the first id."""
    rekeys: tuple[bytes, ...] = ()
    """Central's signed re-key answers, oldest first."""

    def with_rekey(self, new_terminal_id: str, answer: bytes) -> EnrollmentRecord:
        if len(self.rekeys) >= REKEYS_MAX:
            raise EnrollmentRecordError(f"more than {REKEYS_MAX} re-keys in one enrollment")
        return EnrollmentRecord(
            terminal_id=new_terminal_id,
            central_url=self.central_url,
            central_public_key=self.central_public_key,
            location=self.location,
            label=self.label,
            enrolled_ms=self.enrolled_ms,
            enrollment=self.enrollment,
            rekeys=(*self.rekeys, answer),
        )


def record_path(key_path: Path) -> Path:
    """Where the record of the key at ``key_path`` lives."""
    return key_path.parent / RECORD_FILE_NAME


def save_record(path: Path, record: EnrollmentRecord) -> None:
    """Write the record atomically, mode 0600."""
    data = {
        "format": RECORD_FORMAT,
        "terminal_id": record.terminal_id,
        "central_url": record.central_url,
        "central_public_key": record.central_public_key.hex(),
        "location": record.location,
        "label": record.label,
        "enrolled_ms": record.enrolled_ms,
        "enrollment": record.enrollment.decode("utf-8"),
        "rekeys": [answer.decode("utf-8") for answer in record.rekeys],
    }
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o600)


def load_record(path: Path, *, central_public_key: bytes) -> EnrollmentRecord | None:
    """The verified record at ``path``; None if there is none.

    Raises :class:`EnrollmentRecordError` when the file exists but does not
    verify against ``central_public_key`` (another central, or damage).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(RECORD_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EnrollmentRecordError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > RECORD_BYTES_MAX:
        raise EnrollmentRecordError(f"{path} is larger than {RECORD_BYTES_MAX} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("format")
        enrollment_bytes = str(data["enrollment"]).encode("utf-8")
        rekeys = tuple(str(item).encode("utf-8") for item in data["rekeys"])
        stored_key = bytes.fromhex(str(data["central_public_key"]))
        terminal_id = str(data["terminal_id"])
        central_url = str(data["central_url"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise EnrollmentRecordError(f"{path} is not an enrollment record") from None
    if stored_key != central_public_key:
        raise EnrollmentRecordError(
            f"{path} records an enrollment with another central key "
            "(decommission this terminal before enrolling it elsewhere)"
        )
    if len(rekeys) > REKEYS_MAX:
        raise EnrollmentRecordError(f"{path} lists more than {REKEYS_MAX} re-keys")
    first_id = _first_id(enrollment_bytes)
    try:
        enrollment = protocol.verify_enrollment(enrollment_bytes, central_public_key, first_id)
        current = first_id
        for answer in rekeys:
            confirmed = messages.verify_lifecycle_answer(
                answer, central_public_key=central_public_key, action="rekey", terminal_id=current
            )
            assert confirmed.new_terminal_id is not None
            current = confirmed.new_terminal_id
    except protocol.SyncProtocolError as exc:
        raise EnrollmentRecordError(f"{path} does not verify: {exc}") from None
    if current != terminal_id:
        raise EnrollmentRecordError(f"{path} does not lead to terminal {terminal_id}")
    return EnrollmentRecord(
        terminal_id=current,
        central_url=central_url,
        central_public_key=central_public_key,
        location=enrollment.location,
        label=enrollment.label,
        enrolled_ms=enrollment.enrolled_ms,
        enrollment=enrollment_bytes,
        rekeys=rekeys,
    )


def _first_id(enrollment: bytes) -> str:
    from central_sync import signing

    try:
        _v, _type, body = signing.peek(enrollment)
    except signing.SignedMessageError as exc:
        raise EnrollmentRecordError(f"the stored enrollment is malformed: {exc}") from None
    value = body.get("terminal_id")
    if not isinstance(value, str):
        raise EnrollmentRecordError("the stored enrollment names no terminal")
    return value
