"""What keeps the daemon's memory down: no rich for structlog, large blocks given back."""

from __future__ import annotations

import subprocess
import sys

NO_RICH = """
import sys
from agent.cli import _import_structlog_without_rich
_import_structlog_without_rich()
import agent.daemon
assert "rich" not in sys.modules, "the daemon loaded rich"
import rich  # still importable for the rest of the process
print("ok")
"""

SCRYPT_GROWTH = """
import hashlib, sys
from concurrent.futures import ThreadPoolExecutor
if sys.argv[1] == "released":
    from agent.daemon import release_large_blocks
    release_large_blocks()
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20
def pin_check(_):
    return hashlib.scrypt(b"1234", salt=bytes(16), n=2**12, r=8, p=1)  # 4 MiB, as Access
before = rss()
with ThreadPoolExecutor(4) as pool:
    for _ in range(8):
        list(pool.map(pin_check, range(4)))
print(rss() - before)
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_daemon_loads_structlog_without_rich() -> None:
    """``tillbox run`` imports its stack with rich hidden from structlog (~4 MB less)."""
    assert run(NO_RICH) == "ok"


def test_large_blocks_are_given_back_once_freed() -> None:
    """With the fixed mmap threshold, PIN checks (4 MiB scrypt each) leave no resident
    memory behind; glibc's adaptive threshold kept several MiB of them."""
    assert float(run(SCRYPT_GROWTH, "released")) < 2.0
    assert float(run(SCRYPT_GROWTH, "adaptive")) > 4.0
