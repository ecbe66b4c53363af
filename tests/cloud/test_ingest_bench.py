"""``bench/replication.py`` still runs end to end (tiny journal), so that it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "replication.py"


@pytest.mark.slow
def test_replication_bench_prints_its_ratio(tmp_path: Path) -> None:
    """With a small journal it drains everything and prints both rates and the ratio."""
    result = subprocess.run(
        [sys.executable, str(BENCH), "--entries", "600", "--workers", "1", "--out",
         str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"end to end\s+\d+ entries/s", result.stdout), result.stdout
    assert re.search(r"raw paho QoS 1\s+\d+ entries/s", result.stdout), result.stdout
    assert re.search(r"ratio\s+\d+\.\d+", result.stdout.split("== summary ==")[1])
