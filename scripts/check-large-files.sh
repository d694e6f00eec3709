#!/usr/bin/env bash
# Fails if a tracked file is over 1 MB, unless it is listed below: build outputs (binaries,
# libraries, wheels, node_modules) are never committed; generated sources may be, by name.
set -euo pipefail
cd "$(dirname "$0")/.."
allowed=(
)
status=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt 1048576 ]; then
    ok=0
    for a in "${allowed[@]}"; do [ "$f" = "$a" ] && ok=1; done
    if [ "$ok" -eq 0 ]; then
      echo "tracked file over 1 MB: $f ($size bytes): build outputs are not committed (add it to scripts/check-large-files.sh only if it is a source)" >&2
      status=1
    fi
  fi
done < <(git ls-files -z)
exit $status
