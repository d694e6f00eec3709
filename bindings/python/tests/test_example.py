"""The specification's section 5.2 example, as written plus one register_agent line, run as
a script in its own process; its final watch loop never ends, so the harness
(data/run_example.py) makes a transition into ERROR once the watch is open and the test
stops the script with SIGINT after it printed the event."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def test_section_5_2_example_as_a_script() -> None:
    # The example is the specification's text plus the registration line.
    src = (DATA / "example_5_2.py").read_text()
    assert 'manager.register_agent("agent-001")' in src
    p = subprocess.Popen([sys.executable, "-u", str(DATA / "run_example.py")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    lines = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Event:"):
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines += out.splitlines()
    assert lines == [
        "Current state: LifecycleState.INITIALIZED",
        "Transitioned from LifecycleState.INITIALIZED to LifecycleState.ACTIVE",
        "Event: LifecycleState.ERROR - injected failure",
        "stopped",
    ], (lines, err)
    assert p.returncode == 0
