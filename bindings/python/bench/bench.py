"""Benchmarks of the Python binding, in one run (make bench-python):

- embedded get_state / transition_state through the binding (memory store);
- a bare ctypes round trip into the same library (hms_call of GetState with a prepared
  request, the response freed, no decoding), in protobuf (the binding's format for
  get_state) and JSON — the floor a binding can reach;
- the same two calls against a local server through the binding's remote mode;
- the same two calls through a plain grpcio client generated from proto/ at bench time;
- watch: events/s delivered into Python as LifecycleEvent objects;
- 16 Python threads transitioning on SQLite (synchronous=full) versus 16 goroutines on the
  same store through the Go API (bench/sqlite16), in alternating rounds of the same run
  (BENCH_ROUNDS, BENCH_SECONDS each), with goroutines locked to OS threads as a third
  column (what a call from a foreign thread costs the Go runtime) and CPU time per transition.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hms_agent.lifecycle import LifecycleEvent, LifecycleManager, LifecycleState, _ffi

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("HMS_REPO", HERE.parent.parent.parent)).resolve()
RESULTS: dict[str, float] = {}


def rate(name: str, n: int, fn: Callable[[int], None]) -> float:
    """Runs fn(i) n times (after a warm-up) and prints calls/s and µs/call."""
    for i in range(min(n // 10, 2000)):
        fn(i)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    dt = time.perf_counter() - t
    per_s = n / dt
    RESULTS[name] = per_s
    print(f"{name:<44} {per_s:>12,.0f} /s {1e6 * dt / n:>9.2f} µs/op", flush=True)
    return per_s


def bench_manager(label: str, m: LifecycleManager, n: int) -> None:
    m.register_agent("bench-1")
    rate(f"{label} get_state", n, lambda i: m.get_state("bench-1"))
    targets = [LifecycleState.ACTIVE, LifecycleState.PAUSED]
    rate(f"{label} transition_state", n, lambda i: m.transition_state("bench-1", targets[i % 2]))


def bench_bare_ctypes(m: LifecycleManager, n: int) -> None:
    """hms_call of GetState with a prepared request, the answer freed undecoded: in protobuf
    (the format the binding uses for get_state) and in JSON."""
    lib = _ffi.lib()
    call = lib.dll.hms_call
    free = lib.dll.hms_free
    method = b"hms.agent.lifecycle.v1.LifecycleManager/GetState"
    m.register_agent("bench-bare")  # a fresh agent, like embedded get_state's (history length matters, see README)
    out = ctypes.c_void_p()
    size = ctypes.c_size_t()
    st = _ffi.Status()
    h = m.handle
    ro, rs, rst = ctypes.byref(out), ctypes.byref(size), ctypes.byref(st)
    for label, fmt, req in (("protobuf", 0, b"\n\nbench-bare"), ("JSON", 1, b'{"agentId":"bench-bare","includeDetails":false}')):
        def once(i: int, fmt: int = fmt, req: bytes = req) -> None:
            if call(h, method, fmt, req, len(req), ro, rs, rst):
                raise RuntimeError(f"hms_call failed: code {st.code}")
            free(out.value)

        rate(f"bare ctypes hms_call GetState ({label})", n, once)

    # The ratio the target is about, with both sides in alternating chunks on the same agent,
    # so that load from elsewhere on the machine falls on both alike.
    pb_req = b"\n\nbench-bare"
    spent = {"get_state": 0.0, "bare": 0.0}
    chunk = max(n // 20, 100)
    for _ in range(10):
        t = time.perf_counter()
        for _ in range(chunk):
            m.get_state("bench-bare")
        spent["get_state"] += time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(chunk):
            call(h, method, 0, pb_req, len(pb_req), ro, rs, rst)
            free(out.value)
        spent["bare"] += time.perf_counter() - t
    RESULTS["get_state / bare, interleaved"] = spent["get_state"] / spent["bare"]
    print(f"{'interleaved: get_state vs bare (protobuf)':<44} {1e6 * spent['get_state'] / (10 * chunk):>9.2f} µs"
          f" vs {1e6 * spent['bare'] / (10 * chunk):.2f} µs per call", flush=True)


def server(binary: str) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen([binary, "serve", "--store", "memory", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    return p, line.split("listening on ", 1)[1].strip()


def bench_grpcio(url: str, n: int, tmp: Path) -> None:
    import grpc  # type: ignore[import-untyped]
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out = tmp / "gen"
    out.mkdir()
    protos = [str(p.relative_to(REPO / "proto")) for p in (REPO / "proto" / "hms" / "agent").rglob("*.proto")]
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                      *protos])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from hms.agent.lifecycle.v1 import lifecycle_event_pb2 as ev  # type: ignore[import-not-found]
    from hms.agent.lifecycle.v1 import lifecycle_manager_pb2 as pb  # type: ignore[import-not-found]
    from hms.agent.lifecycle.v1 import lifecycle_manager_pb2_grpc as pbg  # type: ignore[import-not-found]

    channel = grpc.insecure_channel(url.removeprefix("http://"))
    stub = pbg.LifecycleManagerStub(channel)
    stub.RegisterAgent(pb.RegisterAgentRequest(agent_id="bench-g"))
    req = pb.GetStateRequest(agent_id="bench-g")
    rate("grpcio get_state", n, lambda i: stub.GetState(req))
    reqs = [ev.TransitionRequest(agent_id="bench-g", target_state=2), ev.TransitionRequest(agent_id="bench-g", target_state=3)]
    rate("grpcio transition_state", n, lambda i: stub.TransitionState(reqs[i % 2]))
    channel.close()


def bench_watch(n_events: int) -> None:
    with LifecycleManager() as m:
        agents = [f"w-{i}" for i in range(100)]
        for a in agents:
            m.register_agent(a)
        per = n_events // len(agents)
        for k in range(per):
            target = LifecycleState.ACTIVE if k % 2 == 0 else LifecycleState.PAUSED
            for a in agents:
                m.transition_state(a, target)
        total = len(agents) * (per + 1)
        t = time.perf_counter()
        cpu = time.thread_time()
        got = 0
        with m.watch_events(from_sequence=1) as stream:
            for ev in stream:
                assert isinstance(ev, LifecycleEvent)
                got += 1
                if got == total:
                    break
        dt = time.perf_counter() - t
        cpu = time.thread_time() - cpu
        RESULTS["watch events/s"] = got / dt
        # Per CPU-second of the consuming thread too: on a loaded machine the wall-clock rate
        # says how much CPU the thread got as much as how fast the binding is.
        print(f"{'watch: events into Python (replay)':<44} {got / dt:>12,.0f} /s  ({got} LifecycleEvent objects;"
              f" {got / cpu:,.0f} per CPU-second of the consuming thread)")
        # Live: a producer thread transitions while the consumer iterates.
        m.register_agent("live")
        live = 20000
        stream = m.watch_events(agent_id="live")
        def produce() -> None:
            for k in range(live):
                m.transition_state("live", LifecycleState.ACTIVE if k % 2 == 0 else LifecycleState.PAUSED)
        th = threading.Thread(target=produce)
        t = time.perf_counter()
        th.start()
        got = 0
        for _ in stream:
            got += 1
            if got == live:
                break
        dt = time.perf_counter() - t
        th.join()
        stream.close()
        print(f"{'watch: live, producer in the same process':<44} {got / dt:>12,.0f} /s  (bounded by the producer)")


def _python_threads(seconds: float, workers: int, d: Path) -> tuple[float, float]:
    """Transitions/s of the threads, and this process's CPU time per transition while they ran."""
    m = LifecycleManager(data_dir=str(d), sqlite_sync="full")
    for i in range(workers):
        m.register_agent(f"t-{i}")
    cpu = time.process_time()
    stop = time.perf_counter() + seconds
    counts = [0] * workers

    def work(i: int) -> None:
        a = f"t-{i}"
        k = 0
        while time.perf_counter() < stop:
            r = m.transition_state(a, LifecycleState.ACTIVE if k % 2 == 0 else LifecycleState.PAUSED)
            assert r.success
            k += 1
        counts[i] = k

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t
    cpu = time.process_time() - cpu
    m.close()
    return sum(counts) / dt, cpu / max(1, sum(counts))


def _cpu_of_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_sqlite_threads(seconds: float, workers: int, rounds: int, tmp: Path) -> None:
    """Python threads and goroutines (bench/sqlite16, built once) in alternating rounds, each
    on a fresh store, so a burst of load from elsewhere on the machine hits both alike; and
    goroutines locked to their OS threads (sqlite16 -locked), as the goroutine of a call from
    a foreign thread is, to show what that part costs. CPU time per transition is printed too:
    on a machine short of CPU, throughput follows it."""
    go_bin = tmp / "sqlite16"
    subprocess.run(["go", "build", "-o", str(go_bin), "./bindings/python/bench/sqlite16"], cwd=REPO, check=True)

    def go_run(name: str, *flags: str) -> tuple[float, float]:
        cpu = _cpu_of_children()
        res = subprocess.run([str(go_bin), "-dir", str(tmp / name), "-workers", str(workers), "-seconds", str(seconds),
                              *flags], check=True, capture_output=True, text=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
        return float(out["per_second"]), (_cpu_of_children() - cpu) / max(1, int(out["transitions"]))

    totals = {"py": 0.0, "go": 0.0, "locked": 0.0}
    cpus = {"py": 0.0, "go": 0.0, "locked": 0.0}
    for r in range(rounds):
        py, py_cpu = _python_threads(seconds, workers, tmp / f"py-sqlite-{r}")
        go, go_cpu = go_run(f"go-sqlite-{r}")
        locked, locked_cpu = go_run(f"go-locked-sqlite-{r}", "-locked")
        for k, v, c in (("py", py, py_cpu), ("go", go, go_cpu), ("locked", locked, locked_cpu)):
            totals[k] += v
            cpus[k] += c
        print(f"{f'SQLite full, {workers} threads, round {r + 1}':<44} Python {py:>7,.0f} /s, Go {go:>7,.0f} /s"
              f" (Python/Go = {py / go:.2f}), Go locked {locked:>7,.0f} /s", flush=True)
    RESULTS["sqlite python threads"] = totals["py"] / rounds
    RESULTS["sqlite goroutines"] = totals["go"] / rounds
    print(f"{f'SQLite full, {workers} Python threads':<44} {totals['py'] / rounds:>12,.0f} transitions/s (mean of {rounds}),"
          f" {1e6 * cpus['py'] / rounds:.0f} µs CPU each")
    print(f"{f'SQLite full, {workers} goroutines (Go API)':<44} {totals['go'] / rounds:>12,.0f} transitions/s"
          f"  (Python/Go = {totals['py'] / totals['go']:.2f}), {1e6 * cpus['go'] / rounds:.0f} µs CPU each")
    print(f"{f'SQLite full, {workers} goroutines, OS-locked':<44} {totals['locked'] / rounds:>12,.0f} transitions/s"
          f"  (locked/Go = {totals['locked'] / totals['go']:.2f}), {1e6 * cpus['locked'] / rounds:.0f} µs CPU each")


def main() -> None:
    n = int(os.environ.get("BENCH_N", "20000"))
    binary = os.environ.get("HMS_SERVER_BIN") or shutil.which("hms-lifecycle") or ""
    tmp = Path(tempfile.mkdtemp(prefix="hms-py-bench-"))
    try:
        print(f"library {_ffi.library_path()}; {n} calls each; Python {sys.version.split()[0]}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        with LifecycleManager() as m:
            bench_manager("embedded", m, n)
            bench_bare_ctypes(m, n * 5)
        proc, url = server(binary)
        try:
            with LifecycleManager(endpoint=url) as m:
                bench_manager("remote (binding, Connect)", m, n // 4)
            with LifecycleManager(endpoint=url, protocol="grpc") as m:
                m.register_agent("bench-2")
                rate("remote (binding, gRPC) get_state", n // 4, lambda i: m.get_state("bench-2"))
            try:
                bench_grpcio(url, n // 4, tmp)
            except ImportError:
                print("grpcio not installed: pip install grpcio grpcio-tools (make bench-python does)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        bench_watch(int(os.environ.get("BENCH_EVENTS", "100000")))
        bench_sqlite_threads(float(os.environ.get("BENCH_SECONDS", "1.5")), 16, int(os.environ.get("BENCH_ROUNDS", "5")), tmp)
        r = RESULTS
        print(f"\nratios (load average now {os.getloadavg()[0]:.2f}):")
        if "grpcio get_state" in r:
            print(f"  embedded get_state / grpcio get_state        = {r['embedded get_state'] / r['grpcio get_state']:.1f}x"
                  " (target >= 10x)")
        bare = r["get_state / bare, interleaved"]
        print(f"  embedded get_state time / bare ctypes time   = {bare:.2f}x"
              " (target <= 4x; bare in protobuf, the binding's format, interleaved on one agent)")
        print(f"  watch events/s                               = {r['watch events/s']:,.0f} (target >= 100,000)")
        print(f"  SQLite Python threads / goroutines           = {r['sqlite python threads'] / r['sqlite goroutines']:.2f}"
              " (target >= 0.5)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
