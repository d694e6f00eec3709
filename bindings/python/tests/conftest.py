"""Shared fixtures: embedded managers, and real servers (hms-lifecycle serve) for remote tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hms_agent.lifecycle import LifecycleManager

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("HMS_REPO", HERE.parent.parent.parent)).resolve()


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository checkout (for testdata/ and the server's sources)."""
    assert (REPO / "go.mod").is_file(), f"{REPO} is not the HMS Lifecycle repository (set HMS_REPO)"
    return REPO


@pytest.fixture(scope="session")
def server_bin(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The hms-lifecycle binary: $HMS_SERVER_BIN, else built from the repository once."""
    given = os.environ.get("HMS_SERVER_BIN")
    if given:
        return given
    out = tmp_path_factory.mktemp("bin") / "hms-lifecycle"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/hms-lifecycle"], cwd=repo, check=True)
    return str(out)


class Server:
    """A running `hms-lifecycle serve --store memory` on a free loopback port."""

    def __init__(self, binary: str, plugin_repo: str | None = None, extra: list[str] | None = None) -> None:
        args = [binary, "serve", "--store", "memory", "--listen", "127.0.0.1:0"]
        if plugin_repo:
            args += ["--plugin-repo", plugin_repo]
        args += extra or []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start_server(server_bin: str) -> Iterator[Callable[..., Server]]:
    """Starts servers that are stopped at the end of the test."""
    started: list[Server] = []

    def start(plugin_repo: str | None = None, extra: list[str] | None = None) -> Server:
        s = Server(server_bin, plugin_repo, extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture(params=["embedded", "remote"])
def manager(request: pytest.FixtureRequest) -> Iterator[LifecycleManager]:
    """A fresh manager: embedded on the memory store, and against a fresh server."""
    if request.param == "embedded":
        m = LifecycleManager()
    else:
        srv: Server = request.getfixturevalue("server")
        m = LifecycleManager(endpoint=srv.url)
    yield m
    m.close()


@pytest.fixture
def plugin_repo(repo: Path, tmp_path: Path) -> str:
    """A copy of the scenarios' plugin repository."""
    dst = tmp_path / "plugins"
    shutil.copytree(repo / "testdata" / "scenarios" / "plugins", dst)
    return str(dst)


@pytest.fixture(scope="session")
def postgres_dsn(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database in a throw-away PostgreSQL cluster (tests/pgcluster, over the Go tests'
    store/postgres/pgtest), removed at the end of the session — or, if pytest dies, when the
    helper sees its standard input end."""
    out = tmp_path_factory.mktemp("pgcluster") / "pgcluster"
    subprocess.run(["go", "build", "-o", str(out), "./bindings/python/tests/pgcluster"], cwd=repo, check=True)
    proc = subprocess.Popen([str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        proc.wait()
        raise RuntimeError(f"pgcluster did not start a cluster (scripts/ensure-postgres.sh installs PostgreSQL): {err}")
    info = json.loads(line)
    try:
        yield str(info["dsn"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        assert proc.returncode == 0, f"pgcluster failed to remove its cluster (exit {proc.returncode})"
        assert not Path(info["dir"]).exists(), f"the cluster folder {info['dir']} is still there"
