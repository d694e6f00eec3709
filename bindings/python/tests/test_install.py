"""The install paths the README gives, for real: ``pip install ./bindings/python`` with build
isolation (pip fetches hatchling, the build hook compiles the Go library) into a fresh virtual
environment, and ``python -m build`` (sdist, then a wheel from the sdist) whose wheel installs
and runs without Go. Go's build cache keeps this to seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

PROBE = """
import sys
import hms_agent.lifecycle as hl
from hms_agent.lifecycle import LifecycleManager, LifecycleState
path = hl._ffi.library_path()
assert path.startswith(sys.prefix), (path, sys.prefix)
with LifecycleManager() as m:
    m.register_agent("agent-001")
    with m.watch_events(agent_id="agent-001") as events:
        assert m.transition_state("agent-001", LifecycleState.ACTIVE)["success"]
        ev = next(events)
    print(m.get_state("agent-001")["state"].name, ev.new_state.name, path)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HMS_LIB", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _venv(where: Path) -> Path:
    # Without pip of its own: the test's pip installs into it (pip --python), which saves the
    # seconds ensurepip takes.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    return where / "bin" / "python"


def _probe(python: Path, env: dict[str, str]) -> str:
    res = subprocess.run([str(python), "-c", PROBE], env=env, capture_output=True, text=True, cwd=python.parent)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _status(repo: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", "bindings/python"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def test_pip_install_checkout_with_build_isolation(repo: Path, tmp_path: Path) -> None:
    before = _status(repo)
    python = _venv(tmp_path / "venv")
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                          str(repo / "bindings" / "python")], env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    out = _probe(python, _env())
    assert out.startswith("ACTIVE ACTIVE " + str(tmp_path / "venv")), out
    assert _status(repo) == before, "the build left files in the checkout"


def test_build_sdist_then_wheel_installs_without_go(repo: Path, tmp_path: Path) -> None:
    before = _status(repo)
    dist = tmp_path / "dist"
    res = subprocess.run([sys.executable, "-m", "build", "-o", str(dist), str(repo / "bindings" / "python")],
                         env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _status(repo) == before, "the build left files in the checkout"
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "hms_agent/lifecycle/_lib/libhms_lifecycle.so" in names and "hms_agent/lifecycle/py.typed" in names
    python = _venv(tmp_path / "venv")
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                          str(wheel)], env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # Go is not needed to run it: a PATH without the Go toolchain.
    out = _probe(python, _env(PATH=f"{python.parent}:/usr/bin:/bin"))
    assert out.startswith("ACTIVE ACTIVE "), out
    assert sdist.stat().st_size > 0
