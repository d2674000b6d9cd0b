"""`lobbypay provision`, `rekey` and `decommission` end to end.

A real central (`lobbypay central serve`, SQLite) runs as its own process; the
payment terminal, printer and scanner simulators serve real ptys under names
like ``ttyUSB0`` in a temporary directory; every lobbypay command runs as a
subprocess with temporary config, data and unit directories.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from central_sync.journal import Journal
from drivers.escpos.simulator import PtyPrinterServer, SimulatedPrinter
from drivers.scanner.simulator import ScannerSimulator
from drivers.zvt.simulator import TerminalSimulator
from firmware_config.identity import public_key_fingerprint
from tests.central_sync.agent_helpers import append_payments
from tests.central_sync.central_support import LOBBYPAY, start_server, stop_server
from tests.drivers.test_probe import scanning

LOCATION = "msk-lenina-5"
TOKEN = "operator-token-for-provision-tests"
KIOSK_UNITS = ("lobbypay-kiosk.service", "lobbypay-kiosk-browser.service", "lobbypay-sync.service")
COMMAND_TIMEOUT_S = 120.0


@dataclass
class CentralProcess:
    data_dir: Path
    url: str
    public_key: str

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [LOBBYPAY, "central", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=True,
        )
        return done.stdout

    def registration_code(self) -> str:
        return self.run("registration-code", "--location", LOCATION).strip()

    def terminals(self) -> str:
        return self.run("terminals")

    async def publish_config(self, **sections: Any) -> None:
        body = {"scope": f"location:{LOCATION}", "limits": {}, "surcharge_rules": [],
                "timeouts": {}, "offline_policy": {}, **sections}  # fmt: skip
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/v1/admin/config",
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 201, await resp.text()


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralProcess]:
    data_dir = tmp_path / "central"
    init = subprocess.run(
        [LOBBYPAY, "central", "init", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=True,
    )
    match = re.search(r"public key \(pin on every terminal\): ([0-9a-f]{64})", init.stdout)
    assert match, init.stdout
    process, url = start_server(data_dir, env={"LOBBYPAY_LEDGER_OPERATOR_TOKEN": TOKEN})
    try:
        yield CentralProcess(data_dir=data_dir, url=url, public_key=match.group(1))
    finally:
        stop_server(process)


@dataclass
class Box:
    """The terminal's directories."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def data_dir(self) -> Path:
        return self.root / "var"

    @property
    def unit_dir(self) -> Path:
        return self.root / "systemd-system"

    @property
    def units_from(self) -> Path:
        return self.root / "units-src"

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "identity" / "ed25519.key"


@pytest.fixture
def box(tmp_path: Path) -> Box:
    b = Box(tmp_path / "box")
    b.dev.mkdir(parents=True)
    b.units_from.mkdir()
    for name in (*KIOSK_UNITS, "lobbypay-gateway.service"):
        (b.units_from / name).write_text(
            f"[Unit]\nDescription={name}\n\n[Service]\nExecStart=/usr/bin/true\n"
        )
    return b


@pytest.fixture
async def devices(box: Box) -> AsyncIterator[None]:
    """A ZVT terminal, an ESC/POS printer and a scanner (always scanning) on ptys."""
    terminal = await TerminalSimulator().serve_pty(link_path=box.dev / "ttyUSB0")
    printer = PtyPrinterServer(SimulatedPrinter())
    (box.dev / "ttyUSB1").symlink_to(await printer.start())
    scanner = ScannerSimulator()
    (box.dev / "ttyACM0").symlink_to(scanner.port_path)

    try:
        async with scanning(scanner):
            yield
    finally:
        await terminal.close()
        await printer.stop()
        scanner.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def lobbypay(*args: str, stdin: str | None = None) -> Result:
    """Run lobbypay without blocking the event loop (the simulators live in it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOBBYPAY_")}
    env["LANG"] = "C.UTF-8"
    process = await asyncio.create_subprocess_exec(
        LOBBYPAY,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(None if stdin is None else stdin.encode()), COMMAND_TIMEOUT_S
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def provision_args(box: Box, central: CentralProcess, *extra: str) -> list[str]:
    return [
        "provision",
        "--non-interactive",
        "--json",
        "--config-dir", str(box.config_dir),
        "--role", "kiosk",
        "--label", "Lenina 5, entrance 2",
        "--location", LOCATION,
        "--data-dir", str(box.data_dir),
        "--central-url", central.url,
        "--central-key", central.public_key,
        "--central-key-fingerprint", public_key_fingerprint(bytes.fromhex(central.public_key)),
        "--serial-glob", str(box.dev / "tty*"),
        "--card-reader", "none",
        "--unit-dir", str(box.unit_dir),
        "--units-from", str(box.units_from),
        *extra,
    ]  # fmt: skip


async def append_to_journal(box: Box, payments: int, seed: int) -> int:
    journal = await Journal.open(box.data_dir / "journal.db")
    try:
        await append_payments(journal, payments, seed=seed)
        head, _ = await journal.head()
    finally:
        await journal.close()
    return head


def terminal_line(listing: str, terminal_id: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(terminal_id))


async def test_provision_enrolls_rerun_is_a_no_op_rekey_keeps_the_chain_and_decommission_ends_it(
    central: CentralProcess, box: Box, devices: None
) -> None:
    # 1. A blank box becomes an enrolled kiosk.
    first = await lobbypay(
        *provision_args(
            box, central, "--registration-code", central.registration_code(),
            "--scanner-listen-s", "3",
        )
    )  # fmt: skip
    assert first.code == 0, first.err
    report = first.json()
    terminal_id = report["terminal_id"]
    assert (report["enrollment"], report["identity"], report["changed"]) == (
        "enrolled now",
        "created",
        True,
    )
    assert report["devices"] == {
        "payment_terminal": str(box.dev / "ttyUSB0"),
        "printer": str(box.dev / "ttyUSB1"),
        "scanner": str(box.dev / "ttyACM0"),
        "card_reader": "none",
    }
    assert stat.S_IMODE(box.key_path.stat().st_mode) == 0o600
    assert (box.key_path.parent / "enrollment.json").exists()
    for name in KIOSK_UNITS:
        assert (box.unit_dir / name).read_bytes() == (box.units_from / name).read_bytes()
    assert not (box.unit_dir / "lobbypay-gateway.service").exists()
    assert report["units"]["systemctl"].startswith("not enabled")
    shown = await lobbypay("config", "show", "--config-dir", str(box.config_dir))
    assert re.search(
        r"devices\.payment_terminal\.driver = \"zvt\"\s+# .*00-provision\.toml", shown.out
    )
    assert "enrolled" in terminal_line(central.terminals(), terminal_id)

    # 2. Running it again changes nothing: no code needed, no new key, no enrollment.
    key_before = box.key_path.read_bytes()
    again = await lobbypay(*provision_args(box, central))
    assert again.code == 0, again.err
    assert (again.json()["enrollment"], again.json()["identity"], again.json()["changed"]) == (
        "already enrolled",
        "kept",
        False,
    )
    assert again.json()["terminal_id"] == terminal_id
    assert box.key_path.read_bytes() == key_before

    # 3. The sync agent uploads, and applies central's configuration bundle.
    await central.publish_config(offline_policy={"offline_payments_max": 250})
    await append_to_journal(box, 5, seed=1)
    synced = await lobbypay("sync", "once", "--config-dir", str(box.config_dir), "--json")
    assert synced.code == 0, synced.err + synced.out
    assert synced.json()["acknowledged_through"] == 10
    assert synced.json()["config"]["outcome"] == "applied"
    shown = await lobbypay("config", "show", "--config-dir", str(box.config_dir))
    assert re.search(r"journal\.offline_payments_max = 250\s+# central bundle v1 \(", shown.out)

    # 4. Re-key: a new id, the same chain; a batch signed by the new key is accepted.
    rekeyed = await lobbypay("rekey", "--config-dir", str(box.config_dir), "--no-restart", "--json")
    assert rekeyed.code == 0, rekeyed.err
    new_id = rekeyed.json()["new_terminal_id"]
    assert rekeyed.json()["old_terminal_id"] == terminal_id
    assert new_id != terminal_id
    assert box.key_path.read_bytes() != key_before
    head = await append_to_journal(box, 3, seed=2)
    synced = await lobbypay("sync", "once", "--config-dir", str(box.config_dir), "--json")
    assert synced.code == 0, synced.err + synced.out
    assert synced.json()["acknowledged_through"] == head == 16
    listing = central.terminals()
    assert re.match(rf"{new_id}\s+enrolled\s+16\s", terminal_line(listing, new_id))
    assert f"formerly {terminal_id}" in listing
    # Provisioning again still recognises the (re-keyed) enrollment.
    again = await lobbypay(*provision_args(box, central))
    assert (again.code, again.json()["enrollment"]) == (0, "already enrolled"), again.err

    # 5. Decommission: refused while entries are unsent, done with --force.
    await append_to_journal(box, 1, seed=3)
    refused = await lobbypay(
        "decommission", "--config-dir", str(box.config_dir), "--unit-dir", str(box.unit_dir)
    )
    assert refused.code == 2
    assert "2 entries central has not acknowledged" in refused.err
    assert box.key_path.exists()
    forced = await lobbypay(
        "decommission", "--config-dir", str(box.config_dir), "--unit-dir", str(box.unit_dir),
        "--force", "--reason", "box replaced", "--json",
    )  # fmt: skip
    assert forced.code == 0, forced.err
    assert "WARNING: --force" in forced.err
    assert (forced.json()["terminal_id"], forced.json()["unsent_entries"]) == (new_id, 2)
    assert not box.key_path.exists()
    assert not any((box.unit_dir / name).exists() for name in KIOSK_UNITS)
    assert (box.data_dir / "journal.db").exists()
    listing = central.terminals()
    assert re.match(rf"{new_id}\s+revoked\s", terminal_line(listing, new_id))
    assert "decommissioned: box replaced; 2 unsent entries discarded (--force)" in listing


async def test_provision_prompts_on_stdin_and_uses_the_defaults(
    central: CentralProcess, box: Box
) -> None:
    answers = "\n".join(
        [
            "",  # role: kiosk
            "Lenina 5",
            LOCATION,
            str(box.data_dir),
            central.url,
            central.public_key,
            "y",  # the fingerprint matches
            central.registration_code(),
            "",  # payment terminal: simulator (nothing was probed)
            "",  # printer: simulator
            "",  # card reader: none
            "",  # scanner: none
        ]
    )
    result = await lobbypay(
        "provision", "--interactive", "--json", "--no-probe",
        "--config-dir", str(box.config_dir),
        "--unit-dir", str(box.unit_dir), "--units-from", str(box.units_from),
        stdin=answers + "\n",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert "Role (kiosk/gateway) / Роль [kiosk]:" in result.err
    assert "Central key fingerprint / Отпечаток ключа центра:" in result.err
    assert result.json()["devices"] == {
        "payment_terminal": "simulator",
        "printer": "simulator",
        "scanner": "none",
        "card_reader": "none",
    }
    assert result.json()["enrollment"] == "enrolled now"


async def test_provision_with_a_wrong_fingerprint_changes_nothing(
    central: CentralProcess, box: Box
) -> None:
    args = provision_args(box, central, "--registration-code", central.registration_code())
    args[args.index("--central-key-fingerprint") + 1] = "0000:" * 7 + "0000"

    result = await lobbypay(*args)

    assert result.code == 2
    assert "does not match the central key" in result.err
    assert "nothing was changed" in result.err
    assert not box.config_dir.exists()
    assert not box.data_dir.exists()


async def test_gateway_provision_while_central_is_down_is_retryable_then_completes(
    central: CentralProcess, box: Box, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    args = provision_args(box, central, "--registration-code", central.registration_code())
    args[args.index("--role") + 1] = "gateway"
    down = list(args)
    down[down.index("--central-url") + 1] = f"http://127.0.0.1:{closed_port}"

    failed = await lobbypay(*down)
    done = await lobbypay(*args)

    assert failed.code == 1
    assert "central cannot be reached" in failed.err
    assert done.code == 0, done.err
    assert done.json()["enrollment"] == "enrolled now"
    assert done.json()["devices"] == {}
    assert sorted(p.name for p in box.unit_dir.iterdir()) == [
        "lobbypay-gateway.service",
        "lobbypay-sync.service",
    ]
    text = await lobbypay(*(a for a in args if a != "--json"))
    assert text.code == 0, text.err
    assert "Provisioning summary / Итог подготовки терминала" in text.out
    assert f"Terminal id / Терминал: {done.json()['terminal_id']}" in text.out
    assert "Nothing changed: this box was provisioned already." in text.out


async def test_provision_answer_file_problems_are_all_listed(box: Box, tmp_path: Path) -> None:
    answers = tmp_path / "answers.toml"
    answers.write_text(
        'role = "atm"\nlocation = "has spaces"\ncentral_url = "ftp://x"\n'
        'central_public_key = "abc"\ncolour = "red"\n[devices]\nprinter = 5\n'
    )

    result = await lobbypay(
        "provision", "--non-interactive", "--answers", str(answers),
        "--config-dir", str(box.config_dir),
    )  # fmt: skip

    assert result.code == 2
    assert "colour: unknown answer" in result.err
    assert "devices.printer: must be a string" in result.err
    assert not box.config_dir.exists()


async def test_rekey_interrupted_after_central_applied_it_resumes_with_the_same_new_key(
    central: CentralProcess, box: Box
) -> None:
    from central_sync.provision import messages
    from firmware_config.identity import generate_identity, load_identity

    args = provision_args(
        box, central, "--registration-code", central.registration_code(), "--no-probe",
        "--payment-terminal", "simulator", "--printer", "simulator", "--scanner", "none",
    )  # fmt: skip
    assert (await lobbypay(*args)).code == 0
    old = load_identity(box.key_path)
    # The first attempt: the new key was made and central applied the re-key,
    # then the box lost power before it switched keys.
    new = generate_identity(box.key_path.with_name("ed25519.key.next"))
    request = messages.build_rekey_request(
        messages.RekeyRequest(
            terminal_id=old.terminal_id, new_public_key=new.public_key_bytes, created_ms=1
        ),
        old_signer=old,
        new_signer=new,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{central.url}/v1/rekey", data=request) as resp,
    ):
        assert resp.status == 200

    resumed = await lobbypay("rekey", "--config-dir", str(box.config_dir), "--json")

    assert resumed.code == 0, resumed.err
    assert resumed.json()["resumed"] is True
    assert resumed.json()["new_terminal_id"] == new.terminal_id
    assert load_identity(box.key_path).terminal_id == new.terminal_id
    assert not box.key_path.with_name("ed25519.key.next").exists()
    again = await lobbypay(
        *args[: args.index("--registration-code")], *args[args.index("--no-probe") :]
    )
    assert (again.code, again.json()["enrollment"]) == (0, "already enrolled"), again.err


def test_hand_over_gives_the_service_user_the_data_and_bundle_directories(tmp_path: Path) -> None:
    import pwd

    from central_sync.provision.provision import hand_over

    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    nobody = pwd.getpwnam("nobody")
    data = tmp_path / "var"
    (data / "identity").mkdir(parents=True)
    (data / "identity" / "ed25519.key").write_bytes(b"k")
    bundles = tmp_path / "etc" / "central.d"

    said = hand_over((data, bundles), "nobody")

    assert said.startswith("nobody (")
    for path in (data, data / "identity", data / "identity" / "ed25519.key", bundles):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)


def test_hand_over_to_a_missing_user_changes_nothing_and_says_how_to_fix_it(
    tmp_path: Path,
) -> None:
    from central_sync.provision.provision import hand_over

    data = tmp_path / "var"
    data.mkdir()
    owner = data.stat().st_uid

    said = hand_over((data,), "no-such-user-lobbypay")

    expected = "useradd --system no-such-user-lobbypay" if os.geteuid() == 0 else "not root"
    assert expected in said
    assert data.stat().st_uid == owner


def test_answers_check_defaults_the_label_to_the_location_and_accepts_a_spaced_fingerprint() -> (
    None
):
    from central_sync.provision.answers import Answers, check

    key = "ab" * 32
    fingerprint = public_key_fingerprint(bytes.fromhex(key)).replace(":", " ").upper()

    checked = check(
        Answers(
            role="Kiosk",
            location="msk-1",
            central_url="https://central.example.org:8470/",
            central_public_key=key.upper(),
            central_key_fingerprint=fingerprint,
            registration_code="k7qm-2xhd",
        ),
        need_code=True,
    )

    assert (checked.role, checked.label, checked.central_url) == (
        "kiosk",
        "msk-1",
        "https://central.example.org:8470",
    )
    assert (checked.central_public_key, checked.registration_code) == (key, "K7QM-2XHD")


def test_answers_check_lists_every_problem_at_once() -> None:
    from central_sync.provision.answers import Answers, AnswersError, Devices, check

    with pytest.raises(AnswersError) as caught:
        check(
            Answers(
                role="atm",
                location="two words",
                data_dir="relative/dir",
                central_url="https://user:pw@central.example.org",
                central_public_key="00" * 31,
                devices=Devices(printer="\x1b[2J"),
            ),
            need_code=True,
        )

    keys = [problem.split(":", 1)[0] for problem in caught.value.problems]
    assert keys == [
        "role",
        "location",
        "data_dir",
        "central_url",
        "central_public_key",
        "registration_code",
        "devices.printer",
    ]


def test_provision_prompts_on_a_terminal_without_being_asked(
    central: CentralProcess, box: Box
) -> None:
    import pty
    import select

    answers = [
        "gateway", "", LOCATION, str(box.data_dir), central.url, central.public_key, "y",
        central.registration_code(),
    ]  # fmt: skip
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOBBYPAY_")}
    process = subprocess.Popen(
        [
            LOBBYPAY, "provision", "--config-dir", str(box.config_dir),
            "--unit-dir", str(box.unit_dir), "--units-from", str(box.units_from),
        ],
        stdin=slave, stdout=slave, stderr=slave, env={**env, "LANG": "C.UTF-8"},
    )  # fmt: skip
    os.close(slave)
    output = b""
    try:
        os.write(master, ("\n".join(answers) + "\n").encode())
        for _ in range(600):  # at most 60 s of output
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=COMMAND_TIMEOUT_S)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()

    text = output.decode("utf-8", "replace")
    assert code == 0, text
    assert "Role (kiosk/gateway) / Роль [kiosk]:" in text
    assert "Does it match? (y/n) / Совпадает? (д/н) [n]:" in text
    assert "Enrollment / Регистрация: enrolled now" in text
    assert "Role / Роль: gateway" in text


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe", b"[]", b'{"format": 1}', b'{"format": 1, "enrollment": "x", "rekeys": [],'
     b' "central_public_key": "00", "terminal_id": "T", "central_url": "u"}'],
)  # fmt: skip
def test_damaged_enrollment_record_is_an_enrollment_record_error(
    tmp_path: Path, content: bytes
) -> None:
    from central_sync.provision.enrollment import EnrollmentRecordError, load_record

    path = tmp_path / "enrollment.json"
    path.write_bytes(content)

    with pytest.raises(EnrollmentRecordError):
        load_record(path, central_public_key=bytes(32))
