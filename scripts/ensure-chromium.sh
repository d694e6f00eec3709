#!/usr/bin/env bash
# Installs Debian's Chromium when missing: the TypeScript binding's browser tests drive it
# with playwright-core (executablePath /usr/bin/chromium). A browser is never downloaded
# by a test tool.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing chromium from Debian's packages" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install it (apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
