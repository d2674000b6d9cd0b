"""The PC/SC test fixtures themselves: skip locally, fail under CI, clean up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.drivers.vcard import fixtures
from tests.drivers.vcard.pcscd import PcscDaemon, socket_path_for_process


def test_missing_stack_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "unavailable_reason", lambda: "pcscd is not installed")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pcscd is not installed"):
        fixtures.require_pcsc_stack()


def test_missing_stack_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "unavailable_reason", lambda: "pcscd is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI=true"):
        fixtures.require_pcsc_stack()


def test_client_library_points_at_the_private_daemon() -> None:
    assert os.environ["PCSCLITE_CSOCK_NAME"] == str(socket_path_for_process())


def test_private_daemon_uses_its_own_socket_and_port(pcscd: PcscDaemon) -> None:
    assert pcscd.socket_path == socket_path_for_process()
    assert Path(pcscd.socket_path).is_socket()
    assert pcscd.port != 0x8C7B  # not the system vpcd port
    assert f"0x{pcscd.port:04X}" in (pcscd.conf_dir / "vpcd").read_text()
    assert "daemon ready" in pcscd.log_path.read_text()


def test_stopped_daemon_leaves_no_process_and_restarts(pcscd: PcscDaemon) -> None:
    process = pcscd.process
    assert process is not None
    pcscd.stop()
    assert process.poll() is not None
    assert not pcscd.running
    pcscd.start()
    assert pcscd.running
