"""Runs the section 5.2 example (example_5_2.py) as __main__, as written, and plays the
world around it: once the example's watch is open (a second library handle appears), a
thread of this process moves agent-001 into ERROR through the example's own manager, so
that the example's endless watch loop prints an event. The test then stops the process
with SIGINT (the loop never ends by itself)."""

import runpy
import sys
import threading
import time
from pathlib import Path

import hms_agent.lifecycle as hl


def inject() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        main = sys.modules.get("__main__")
        manager = getattr(main, "manager", None) if main is not None else None
        if manager is not None and hl.handle_count() >= 2:  # the manager and the watch stream
            manager.transition_state("agent-001", hl.LifecycleState.ERROR, reason="injected failure")
            return
        time.sleep(0.02)


threading.Thread(target=inject, daemon=True).start()
try:
    runpy.run_path(str(Path(__file__).with_name("example_5_2.py")), run_name="__main__")
except KeyboardInterrupt:
    print("stopped", flush=True)
