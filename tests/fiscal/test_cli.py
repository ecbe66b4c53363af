"""The journal's command line end to end, and the one-writer rule behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fiscal.errors import JournalBusy
from fiscal.journal import Journal


def tillbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fiscal", *args], capture_output=True,
                          text=True, timeout=120, check=False)


async def test_a_second_writer_is_refused_while_a_journal_is_open(tmp_path: Path) -> None:
    """Opening a journal another holder has open raises JournalBusy; after close it opens."""
    first = await Journal.open(tmp_path)
    with pytest.raises(JournalBusy):
        await Journal.open(tmp_path)
    await first.close()
    again = await Journal.open(tmp_path)
    assert again.state.seq == 1
    await again.close()


def test_demo_archive_and_verify_archive_from_the_command_line(tmp_path: Path) -> None:
    """demo-data, then archive a closed month, then verify-archive and verify are clean."""
    data = tmp_path / "data"
    made = tillbox("demo-data", "--data-dir", str(data), "--days", "3",
                   "--sales-per-day", "4", "--start", "2026-01-30")
    assert made.returncode == 0, made.stderr
    exported = tillbox("archive", "--data-dir", str(data), "--from", "2026-01-01",
                       "--to", "2026-01-31", "--out", str(tmp_path / "archives"))
    assert exported.returncode == 0, exported.stderr
    archive = Path(exported.stdout.strip())
    assert archive.is_file()
    assert archive.parent == tmp_path / "archives"
    checked = tillbox("verify-archive", str(archive), "--json")
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["ok"] is True
    verified = tillbox("verify", "--data-dir", str(data), "--json")
    assert verified.returncode == 0, verified.stdout
    assert "archive" in json.loads(verified.stdout)["chains"]


def test_archiving_an_open_period_fails_cleanly(tmp_path: Path) -> None:
    """An archive of a period that is not closed exits 2 with the reason, writing nothing."""
    data = tmp_path / "data"
    assert tillbox("demo-data", "--data-dir", str(data), "--days", "1",
                   "--sales-per-day", "2", "--start", "2026-03-10").returncode == 0
    result = tillbox("archive", "--data-dir", str(data), "--from", "2026-03-01",
                     "--to", "2026-03-31", "--out", str(tmp_path / "archives"))
    assert result.returncode == 2
    assert "period_not_closed" in result.stderr
    assert not (tmp_path / "archives").exists() or not any((tmp_path / "archives").iterdir())
