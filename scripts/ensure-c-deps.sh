#!/usr/bin/env bash
# Installs what the C tests build with from Debian's packages when missing: a C compiler and
# cJSON (the C scenario runner parses testdata/scenarios with it).
set -euo pipefail
if command -v cc >/dev/null 2>&1 && [ -f /usr/include/cjson/cJSON.h ]; then
  exit 0
fi
echo "installing the C test dependencies (gcc, libcjson-dev) from Debian's packages" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install them (apt-get install gcc libcjson-dev)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq gcc libcjson-dev >/dev/null
