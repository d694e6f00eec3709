"""Build hook: compiles the Go core into the wheel as hms_agent/lifecycle/_lib/libhms_lifecycle.so.

The library is built with ``go build -buildmode=c-shared ./capi`` from the repository this
package lives in (bindings/python/../..). An sdist built from a checkout records where that
checkout is, so ``python -m build`` (sdist, then a wheel from it) works on the same machine;
elsewhere, set HMS_GO_SOURCE to a checkout of the repository. HMS_PREBUILT_LIB names a
library to bundle instead of building one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LIB_REL = "src/hms_agent/lifecycle/_lib/libhms_lifecycle.so"
MARKER = "hms_go_source.txt"


def _is_repo(p: Path) -> bool:
    return (p / "go.mod").is_file() and (p / "capi" / "hms_lifecycle.h").is_file()


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"
    _marker_dir: str | None = None

    def _repo(self) -> Path | None:
        root = Path(self.root)
        candidates = []
        if os.environ.get("HMS_GO_SOURCE"):
            candidates.append(Path(os.environ["HMS_GO_SOURCE"]))
        candidates.append(root.parent.parent)
        marker = root / MARKER
        if marker.is_file():
            candidates.append(Path(marker.read_text().strip()))
        for c in candidates:
            if _is_repo(c):
                return c.resolve()
        return None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if self.target_name == "sdist":
            repo = self._repo()
            if repo is not None:
                # Written outside the source tree (a checkout stays clean), removed in finalize.
                self._marker_dir = tempfile.mkdtemp(prefix="hms-sdist-")
                marker = Path(self._marker_dir) / MARKER
                marker.write_text(str(repo) + "\n")
                build_data.setdefault("force_include", {})[str(marker)] = MARKER
            return
        if self.target_name != "wheel":
            return
        out = root / LIB_REL
        out.parent.mkdir(parents=True, exist_ok=True)
        prebuilt = os.environ.get("HMS_PREBUILT_LIB")
        if prebuilt:
            shutil.copyfile(prebuilt, out)
        else:
            repo = self._repo()
            if repo is None:
                raise RuntimeError(
                    "hms-agent-lifecycle needs the Go sources of HMS Lifecycle to build its C library, "
                    "and this source tree has none (an sdist outside its repository). Build from a "
                    "checkout (pip install ./bindings/python), set HMS_GO_SOURCE=/path/to/checkout, "
                    "or set HMS_PREBUILT_LIB=/path/to/libhms_lifecycle.so."
                )
            go = shutil.which("go")
            if go is None:
                raise RuntimeError(
                    "building hms-agent-lifecycle from source needs the Go toolchain (go) on PATH, "
                    "to compile the lifecycle core; install Go, or install a prebuilt wheel"
                )
            self.app.display_info(f"building the C library: go build -buildmode=c-shared ./capi in {repo}")
            subprocess.run(
                [go, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", str(out), "./capi"],
                cwd=repo,
                check=True,
            )
            header = out.with_suffix(".h")
            if header.exists():
                header.unlink()
        plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{plat}"
        build_data.setdefault("force_include", {})[str(out)] = "hms_agent/lifecycle/_lib/libhms_lifecycle.so"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self._marker_dir is not None:
            shutil.rmtree(self._marker_dir, ignore_errors=True)
            self._marker_dir = None
