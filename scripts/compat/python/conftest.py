"""Fixtures for the Duet <-> official IoTDB Python client compatibility suite.

Every server is a real `duetd` process started on a fresh (or reused) data
directory with `--rpc-port 0` on first start; the chosen port is read from
`<data-dir>/duetd.addr`, which duetd writes once it accepts sessions.

The binary defaults to <repo>/target/debug/duetd and can be overridden with
the DUETD_BIN environment variable. Nothing is built here.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from iotdb.Session import Session
from iotdb.thrift.rpc import IClientRPCService

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "duetd"

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def duetd_bin() -> Path:
    return Path(os.environ.get("DUETD_BIN", str(DEFAULT_BIN)))


class DuetServer:
    """One duetd process bound to a data directory."""

    def __init__(self, data_dir: Path, internal_address: str | None = None,
                 extra_args: list[str] | None = None):
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args or [])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.internal_address = internal_address
        self.proc: subprocess.Popen | None = None
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._log_path = self.data_dir.parent / f"{self.data_dir.name}.stderr.log"
        self._log_file = None

    @property
    def addr_file(self) -> Path:
        return self.data_dir / "duetd.addr"

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, port: int | None = None) -> "DuetServer":
        """Start duetd; port=None picks a free port (first start), otherwise
        the given port is reused (restart)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = duetd_bin()
        if not binary.is_file():
            pytest.fail(
                f"duetd binary not found at {binary}; run `cargo build --bins` "
                "or set DUETD_BIN",
                pytrace=False,
            )
        # A stale addr file from an unclean previous run must not be mistaken
        # for readiness of this run.
        if self.addr_file.exists():
            self.addr_file.unlink()
        args = [
            str(binary),
            "--data-dir", str(self.data_dir),
            "--rpc-address", "127.0.0.1",
            "--rpc-port", str(0 if port is None else port),
            "--metrics-port", "0",
        ]
        if self.internal_address:
            args += ["--internal-address", self.internal_address]
        args += self.extra_args
        self._log_file = open(self._log_path, "ab")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=self._log_file,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._close_log()
                pytest.fail(
                    f"duetd exited early with code {rc} (args {args}); stderr:\n{self.log()}",
                    pytrace=False,
                )
            if self.addr_file.exists():
                text = self.addr_file.read_text().strip()
                if text and ":" in text:
                    host, _, p = text.rpartition(":")
                    try:
                        self.host, self.port = host, int(p)
                        break
                    except ValueError:
                        pass  # partially written; poll again
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"duetd did not write {self.addr_file} within {START_TIMEOUT_S}s; "
                    f"stderr:\n{self.log()}",
                    pytrace=False,
                )
            time.sleep(0.02)
        if port is not None:
            assert self.port == port, f"restarted on {self.port}, expected {port}"
        return self

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"duetd did not stop within {STOP_TIMEOUT_S}s after SIGTERM; "
                f"stderr:\n{self.log()}"
            )
        self._close_log()
        return rc

    def restart(self) -> "DuetServer":
        port = self.port
        rc = self.stop()
        assert rc == 0, f"duetd exited with {rc} on SIGTERM; stderr:\n{self.log()}"
        return self.start(port=port)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def session(self, user="root", password="root", compact=False, **kw) -> Session:
        s = Session(self.host, self.port, user, password, **kw)
        s.open(compact)
        return s


class ServerFactory:
    def __init__(self, base: Path):
        self.base = base
        self.servers: list[DuetServer] = []

    def __call__(self, name="node", internal_address=None, extra_args=None) -> DuetServer:
        srv = DuetServer(self.base / name, internal_address, extra_args)
        self.servers.append(srv)
        return srv.start()

    def close(self):
        errors = []
        for srv in self.servers:
            try:
                rc = srv.stop()
                if rc != 0:
                    errors.append(f"{srv.data_dir}: exit code {rc}\n{srv.log()}")
            except AssertionError as e:
                errors.append(str(e))
        if errors:
            raise AssertionError("duetd did not shut down cleanly:\n" + "\n".join(errors))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One duetd shared by all tests of a module (internal address iotdb-1)."""
    factory = ServerFactory(tmp_path_factory.mktemp("duetd"))
    srv = factory("a", internal_address="iotdb-1")
    yield srv
    factory.close()


@pytest.fixture
def duetd_factory(tmp_path):
    """Start fresh servers inside one test; all are stopped (SIGTERM, exit 0
    checked) at teardown."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def two_servers(duetd_factory):
    a = duetd_factory("a", internal_address="iotdb-1")
    b = duetd_factory("b", internal_address="iotdb-2")
    return a, b


@pytest.fixture
def session(server):
    s = server.session()
    yield s
    s.close()



@pytest.fixture
def fetch_sizes(monkeypatch):
    """The fetch size of every fetchResultsV2 call the client makes during the
    test, in order (the list may be cleared between phases)."""
    sizes = []
    original = IClientRPCService.Client.fetchResultsV2

    def counting(self, req):
        sizes.append(req.fetchSize)
        return original(self, req)

    monkeypatch.setattr(IClientRPCService.Client, "fetchResultsV2", counting)
    return sizes
