"""The journal benchmark still runs end to end (tiny sizes), so it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "journal.py"


@pytest.mark.slow
def test_journal_bench_prints_both_ratios(tmp_path: Path) -> None:
    """``bench/journal.py`` with tiny sizes exits 0 and prints the finalize and verify ratios."""
    result = subprocess.run(
        [sys.executable, str(BENCH), "--sales", "50", "--warmup", "10", "--entries", "1500",
         "--raw-seconds", "0.5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.split("== summary ==")[1]
    assert re.search(r"finalize ratio\s+\d+\.\d\d", summary), result.stdout
    assert re.search(r"verify ratio\s+\d+\.\d\d", summary), result.stdout
    assert "0 findings" in result.stdout
