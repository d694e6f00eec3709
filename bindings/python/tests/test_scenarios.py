"""The shared conformance scenarios (testdata/scenarios/*.json, README.md there), run through
the binding's library layer, embedded and against a real server started per scenario.
tests/scenarios/ adds the binding's own smoke scenario, so the runner always runs."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hms_agent.lifecycle import LifecycleError, LifecycleManager
from hms_agent.lifecycle import _ffi
from hms_agent.lifecycle._stream import decode_batch
from hms_agent.lifecycle.errors import NotFoundError

from .conftest import REPO, Server

SHARED = REPO / "testdata" / "scenarios"
OWN = Path(__file__).resolve().parent / "scenarios"
FILES = sorted(SHARED.glob("*.json")) + sorted(OWN.glob("*.json"))
STEP_KEYS = {"call", "service", "request", "expect", "expectError", "expectErrorContains", "save", "watch", "method",
             "next", "thenNothingFor", "end", "closeWatch", "hooks", "callbacks", "answer", "reason", "invocations",
             "closeHooks"}


def service(s: str | None) -> str:
    if s == "plugins":
        return "hms.plugin.lifecycle.v1.PluginLifecycleManager/"
    return "hms.agent.lifecycle.v1.LifecycleManager/"


def lookup(v: Any, path: str) -> tuple[Any, bool]:
    for p in path.split("."):
        if isinstance(v, dict):
            if p not in v:
                return None, False
            v = v[p]
        elif isinstance(v, list):
            try:
                v = v[int(p)]
            except (ValueError, IndexError):
                return None, False
        else:
            return None, False
    return v, True


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def is_zero(v: Any) -> bool:
    if v is None or v is False:
        return True
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return v == 0
    if isinstance(v, str):
        return v in ("", "0") or v.endswith("_UNSPECIFIED")
    if isinstance(v, list):
        return len(v) == 0
    if isinstance(v, dict):
        if len(v) == 1 and "$len" in v:
            return _num(v["$len"]) == "0"
        return len(v) == 0
    return False


def match(want: Any, got: Any, path: str = "") -> str:
    if isinstance(want, dict):
        if len(want) == 1 and "$contains" in want:
            s = got if isinstance(got, str) else ""
            return "" if str(want["$contains"]) in s else f"{path}: {s!r} does not contain {want['$contains']!r}"
        if len(want) == 1 and "$len" in want:
            n = len(got) if isinstance(got, list) else 0
            return "" if _num(n) == _num(want["$len"]) else f"{path}: {n} elements, want {want['$len']}"
        g = got if isinstance(got, dict) else {}
        for k, wv in want.items():
            if k not in g:
                if is_zero(wv):
                    continue
                return f"{path}.{k}: absent, want {wv!r}"
            why = match(wv, g[k], f"{path}.{k}")
            if why:
                return why
        return ""
    if isinstance(want, list):
        g = got if isinstance(got, list) else []
        if len(g) != len(want):
            return f"{path}: {len(g)} elements, want {len(want)}"
        for i, (w, x) in enumerate(zip(want, g)):
            why = match(w, x, f"{path}[{i}]")
            if why:
                return why
        return ""
    if want == got or _num(want) == _num(got):
        return ""
    return f"{path}: {got!r}, want {want!r}"


class HookWorker:
    def __init__(self, handle: int, callbacks: list[str], answer: str, reason: str) -> None:
        self.lib = _ffi.lib()
        self.h = self.lib.hooks_open(handle, json.dumps({"callbacks": callbacks}).encode())
        self.answer, self.reason = answer, reason
        self.n = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                batch = self.lib.next(self.h, -1, 0)
            except LifecycleError:
                return
            for item in decode_batch(batch):
                with self.lock:
                    self.n += 1
                reply: dict[str, Any] = {"invocationId": item.get("invocationId", "")}
                if self.answer == "veto":
                    reply.update(veto=True, reason=self.reason)
                elif self.answer == "error":
                    reply["error"] = self.reason
                elif self.answer == "ignore":
                    continue
                try:
                    self.lib.hook_complete(self.h, json.dumps(reply).encode())
                except (NotFoundError, LifecycleError):
                    pass

    def close(self) -> None:
        self.lib.stream_close(self.h)
        self.thread.join(10)


class Runner:
    def __init__(self, handle: int, file: str) -> None:
        self.lib = _ffi.lib()
        self.h = handle
        self.file = file
        self.where = ""
        self.saved: dict[str, Any] = {}
        self.streams: dict[str, int] = {}
        self.workers: dict[str, HookWorker] = {}

    def fail(self, msg: str) -> None:
        pytest.fail(f"{self.where}: {msg}", pytrace=False)

    def subst(self, v: Any) -> Any:
        if isinstance(v, str) and v.startswith("${") and v.endswith("}"):
            if v[2:-1] not in self.saved:
                self.fail(f"nothing saved as {v}")
            return self.saved[v[2:-1]]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        return v

    def check_error(self, err: LifecycleError | None, want: str, contains: str | None) -> None:
        if err is None:
            self.fail(f"succeeded, want {want}")
            return
        if err.code_name != want:
            self.fail(f"error {err.code_name} ({err.message}), want {want}")
        if contains and contains not in err.message:
            self.fail(f"error message {err.message!r} does not contain {contains!r}")

    def run(self, steps: list[dict[str, Any]]) -> None:
        try:
            for i, st in enumerate(steps):
                unknown = set(st) - STEP_KEYS
                kind = next((k for k in ("call", "watch", "next", "end", "closeWatch", "hooks", "invocations",
                                         "closeHooks") if k in st), "?")
                self.where = f"scenario {self.file} step {i + 1} ({kind} {st.get(kind, '')})"
                if unknown:
                    self.fail(f"unknown keys {sorted(unknown)}")
                self.step(st)
        finally:
            for s in self.streams.values():
                self.lib.stream_close(s)
            for w in self.workers.values():
                w.close()

    def step(self, st: dict[str, Any]) -> None:
        if "call" in st:
            req = json.dumps(self.subst(st.get("request", {}))).encode()
            err: LifecycleError | None = None
            res = b""
            try:
                res = self.lib.call(self.h, (service(st.get("service")) + st["call"]).encode(), req)
            except LifecycleError as e:
                err = e
            if "expectError" in st:
                self.check_error(err, st["expectError"], st.get("expectErrorContains"))
                return
            if err is not None:
                self.fail(f"error: {err}")
            got = json.loads(res) if res else {}
            if "expect" in st:
                why = match(self.subst(st["expect"]), got)
                if why:
                    self.fail(f"{why}\nresponse: {res.decode()}")
            for name, path in (st.get("save") or {}).items():
                v, ok = lookup(got, path)
                if not ok:
                    self.fail(f"save {name}: no {path} in {res.decode()}")
                self.saved[name] = v
        elif "watch" in st:
            method = st.get("method", "WatchEvents")
            svc = service("plugins" if method == "WatchPluginEvents" else "agents")
            req = json.dumps(self.subst(st.get("request", {}))).encode()
            try:
                s = self.lib.watch(self.h, (svc + method).encode(), req)
            except LifecycleError as e:
                if "expectError" in st:
                    self.check_error(e, st["expectError"], st.get("expectErrorContains"))
                    return
                self.fail(str(e))
                return
            if "expectError" in st:
                self.check_error(None, st["expectError"], None)
            self.streams[st["watch"]] = s
        elif "next" in st:
            s = self.stream(st["next"])
            want = self.subst(st.get("expect", []))
            deadline = time.monotonic() + 10
            got: list[Any] = []
            while len(got) < len(want) and time.monotonic() < deadline:
                try:
                    batch = self.lib.next(s, max(1, int((deadline - time.monotonic()) * 1000)), len(want) - len(got))
                except LifecycleError as e:
                    self.fail(f"stream ended after {len(got)} of {len(want)} items: {e}")
                    return
                if batch:
                    got += decode_batch(batch)
            if len(got) < len(want):
                self.fail(f"{len(got)} of {len(want)} items within 10s")
            for i, w in enumerate(want):
                why = match(w, got[i], f"[{i}]")
                if why:
                    self.fail(f"{why}\nitem: {json.dumps(got[i])}")
            if st.get("thenNothingFor"):
                try:
                    batch = self.lib.next(s, int(st["thenNothingFor"]), 0)
                except LifecycleError:
                    batch = b""
                if batch:
                    self.fail(f"unexpected item: {decode_batch(batch)}")
        elif "end" in st:
            s = self.stream(st["end"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    self.lib.next(s, max(1, int((deadline - time.monotonic()) * 1000)), 0)
                except LifecycleError as e:
                    self.check_error(e, st.get("expectError", ""), st.get("expectErrorContains"))
                    return
            self.fail("the stream did not end within 10s")
        elif "closeWatch" in st:
            self.lib.stream_close(self.stream(st["closeWatch"]))
            del self.streams[st["closeWatch"]]
        elif "hooks" in st:
            self.workers[st["hooks"]] = HookWorker(self.h, st.get("callbacks", []), st.get("answer", "allow"),
                                                   st.get("reason", ""))
        elif "invocations" in st:
            w = self.workers.get(st["invocations"])
            if w is None:
                self.fail(f"no hook worker {st['invocations']}")
                return
            with w.lock:
                n = w.n
            if n != int(st.get("expect", 0)):
                self.fail(f"{n} invocations, want {st['expect']}")
        elif "closeHooks" in st:
            w = self.workers.pop(st["closeHooks"], None)
            if w is None:
                self.fail(f"no hook worker {st['closeHooks']}")
                return
            w.close()
        else:
            self.fail("a step needs one of call, watch, next, end, closeWatch, hooks, invocations, closeHooks")

    def stream(self, name: str) -> int:
        if name not in self.streams:
            self.fail(f"no stream {name}")
        return self.streams[name]


def load(path: Path) -> dict[str, Any]:
    sc: dict[str, Any] = json.loads(path.read_text())
    assert set(sc) <= {"name", "description", "config", "steps"}, f"{path}: unknown keys"
    return sc


def plugin_repo_copy(path: Path, sc: dict[str, Any], tmp: Path) -> str | None:
    rel = (sc.get("config") or {}).get("plugin_repo")
    if not rel:
        return None
    dst = tmp / "plugins"
    shutil.copytree(path.parent / rel, dst)
    return str(dst)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_scenario_embedded(path: Path, tmp_path: Path) -> None:
    sc = load(path)
    repo = plugin_repo_copy(path, sc, tmp_path)
    m = LifecycleManager(plugin_repo=repo)
    try:
        Runner(m.handle, path.name).run(sc["steps"])
    finally:
        m.close()


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_scenario_remote(path: Path, tmp_path: Path, start_server: Callable[..., Server]) -> None:
    sc = load(path)
    repo = plugin_repo_copy(path, sc, tmp_path)
    srv = start_server(plugin_repo=repo)
    m = LifecycleManager(endpoint=srv.url)
    try:
        Runner(m.handle, path.name).run(sc["steps"])
    finally:
        m.close()
