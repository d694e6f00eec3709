#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages when no server binaries are found. The tests
# start their own throw-away cluster; nothing here starts a server.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  exit 0
fi
echo "PostgreSQL not found: installing it from Debian's packages" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install PostgreSQL (apt-get install postgresql)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
