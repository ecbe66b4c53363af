#!/usr/bin/env bash
# Make sure Python's venv works (Debian ships it separately) and build .venv with the given extras.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh test
# With the `test` extra it also installs Debian's chromium (the status page is tested in a real
# headless browser) and grub-common (grub-editenv: the image's A/B boot-state tests); nothing is
# fetched when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  as_root apt-get update -qq
  as_root apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
if [ "${1:-}" = test ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/grub-editenv ] \
    || [ ! -x /usr/bin/genimage ]; }; then
  # chromium: the status page's browser test; grub-common, genimage and the FAT/partition
  # tools: the image recipe tests (boot state, rendering the arm64 disk layout)
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium grub-common \
    genimage mtools dosfstools fdisk cloud-guest-utils
fi
if [ -n "${1:-}" ]; then
  .venv/bin/pip install --quiet -e ".[$1]"
else
  .venv/bin/pip install --quiet -e .
fi
