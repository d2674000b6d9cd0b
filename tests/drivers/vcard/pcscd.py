"""A private pcscd for tests, with the vsmartcard vpcd virtual reader.

How it stays out of the way of a system pcscd (and of a second test run):

* Its client socket is our own path, handed to pcscd by systemd-style socket
  activation (``LISTEN_FDS=1``/``LISTEN_PID`` with the listening socket as fd 3),
  which pcsc-lite supports; the clients find it through ``PCSCLITE_CSOCK_NAME``.
  libpcsclite reads that variable once per process and caches it, so the path
  is fixed per test process (:func:`socket_path_for_process`) and set before
  the first PC/SC call (``fixtures.py`` does it at import).
* Its readers come from its own ``reader.conf.d`` (``pcscd -c``): one vpcd
  entry on a free TCP port (vpcd opens that port for slot 0 and the next one
  for slot 1), not the system's 35963.
* pcscd writes and removes ``/run/pcscd/pcscd.pid`` whatever its socket; the
  content of that file is saved before start and put back after stop.

Each start binds a fresh listening socket and closes our copy once pcscd has
it, so while pcscd is stopped clients get "connection refused" (like a real
pcscd restart), not a queue that silently waits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PCSCD_BINARY = shutil.which("pcscd") or "/usr/sbin/pcscd"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_PID_FILE = Path("/run/pcscd/pcscd.pid")
FRIENDLY_NAME = "Lobbypay Test PCD"


def socket_path_for_process() -> Path:
    """The pcscd socket path of this test process (one per process, see above)."""
    return Path(f"/tmp/lobbypay-pcscd-{os.getpid()}/pcscd.comm")


def unavailable_reason() -> str | None:
    """Why the real PC/SC stack cannot run here, or ``None`` when it can."""
    if not Path(PCSCD_BINARY).exists():
        return "pcscd is not installed (Debian package pcscd)"
    if not VPCD_DRIVER.exists():
        return f"vpcd driver {VPCD_DRIVER} missing (Debian package vsmartcard-vpcd)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:
        return f"pyscard cannot load libpcsclite: {exc}"
    return None


def _free_port_pair() -> int:
    """A TCP port p such that p and p+1 are free on all addresses (vpcd binds both)."""
    for _attempt in range(50):
        with socket.socket() as first:
            first.bind(("0.0.0.0", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free pair of TCP ports for vpcd")


# sd_listen_fds() wants the socket as fd 3 and LISTEN_PID == its own pid: this
# tiny wrapper moves the socket to fd 3, sets the variables and execs pcscd
# (exec keeps the pid).
_ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[2], sys.argv[2:])
"""


class PcscdStartError(RuntimeError):
    """pcscd did not come up with the virtual readers; the message has its log."""


class PcscDaemon:
    """Start, stop and restart a private ``pcscd --foreground`` (see the module docstring)."""

    def __init__(self, workdir: Path, *, socket_path: Path) -> None:
        self.workdir = workdir
        self.socket_path = socket_path
        self.conf_dir = workdir / "reader.conf.d"
        self.log_path = workdir / "pcscd.log"
        self.port = _free_port_pair()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._saved_pid_file: bytes | None = None
        self._last_pid = 0

    @property
    def reader_names(self) -> list[str]:
        """The names pcscd gives the two vpcd slots."""
        return [f"{FRIENDLY_NAME} 00 00", f"{FRIENDLY_NAME} 00 01"]

    def port_for_slot(self, slot: int) -> int:
        assert slot in (0, 1)
        return self.port + slot

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no pcscd log)"
        return "\n".join(text.splitlines()[-lines:])

    def _write_config(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "vpcd").write_text(
            f'FRIENDLYNAME "{FRIENDLY_NAME}"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Start pcscd and wait until both virtual readers are listed."""
        assert not self.running, "pcscd already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._saved_pid_file is None and SYSTEM_PID_FILE.exists():
            with contextlib.suppress(OSError):
                self._saved_pid_file = SYSTEM_PID_FILE.read_bytes()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o666)
            listener.listen(64)
            fd = listener.fileno()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _ACTIVATE,
                        str(fd),
                        PCSCD_BINARY,
                        "--foreground",
                        "--debug",
                        "-c",
                        str(self.conf_dir),
                    ],
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")},
                )
        finally:
            listener.close()
        self.starts += 1
        self._last_pid = self.process.pid
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        from smartcard import scard

        deadline = time.monotonic() + timeout_s
        last = "not contacted"
        while time.monotonic() < deadline:
            if not self.running:
                raise PcscdStartError(f"pcscd exited early:\n{self.log_tail()}")
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr == 0:
                try:
                    hr, names = scard.SCardListReaders(ctx, [])
                finally:
                    scard.SCardReleaseContext(ctx)
                if hr == 0 and sorted(names) == self.reader_names:
                    return
                last = f"readers {names!r}"
            else:
                last = scard.SCardGetErrorMessage(hr)
            time.sleep(0.05)
        self.stop()
        raise PcscdStartError(
            f"pcscd not ready in {timeout_s} s ({last}); socket {self.socket_path} "
            f"(PCSCLITE_CSOCK_NAME={os.environ.get('PCSCLITE_CSOCK_NAME')}):\n{self.log_tail()}"
        )

    def stop(self, *, sig: int = signal.SIGTERM, timeout_s: float = 5.0) -> None:
        """Stop pcscd with ``sig`` (SIGKILL emulates a crash); always reaps it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        self._restore_pid_file()

    def restart(self, *, sig: int = signal.SIGTERM, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again (same port, same socket path)."""
        self.stop(sig=sig)
        if down_s:
            time.sleep(down_s)
        self.start()

    def _restore_pid_file(self) -> None:
        if self._saved_pid_file is None:
            # No system pcscd: only make sure a killed pcscd of ours left no pid file.
            with contextlib.suppress(OSError):
                if SYSTEM_PID_FILE.read_text().strip() == str(self._last_pid):
                    SYSTEM_PID_FILE.unlink()
            return
        with contextlib.suppress(OSError):
            SYSTEM_PID_FILE.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_PID_FILE.write_bytes(self._saved_pid_file)

    def cleanup(self) -> None:
        """Stop pcscd and remove its socket, configuration and log."""
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.socket_path.parent.rmdir()
