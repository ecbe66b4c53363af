"""``tillbox run`` starts the daemon without the command-line stack when it can."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import daemon_options


@pytest.mark.parametrize(("args", "options"), [
    (["run"], {"config": None, "data_dir": None, "http": None}),
    (["run", "--data-dir", "/d", "--http", "0.0.0.0:80"],
     {"config": None, "data_dir": Path("/d"), "http": "0.0.0.0:80"}),
    (["run", "--config=/etc/t.toml", "--http=127.0.0.1:9"],
     {"config": Path("/etc/t.toml"), "data_dir": None, "http": "127.0.0.1:9"}),
])
def test_a_plain_run_is_recognised(args: list[str], options: dict[str, object]) -> None:
    """``run`` with only its own options gives them, as typer would."""
    assert daemon_options(args) == options


@pytest.mark.parametrize("args", [
    [], ["verify"], ["run", "--help"], ["run", "--data"], ["run", "--http"],
    ["run", "--config", "--http", "x"], ["run", "--http="], ["sim", "run"],
])
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    """Help, unknown or incomplete options, other commands: typer parses and answers."""
    assert daemon_options(args) is None


def test_run_loads_neither_typer_nor_the_other_commands(tmp_path: Path) -> None:
    """A plain ``run`` refusing its configuration exits 2 with the reason, and no module of
    typer, click's commands or the cloud tools was imported on the way."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agent.cli", "run", "--config",
         str(tmp_path / "missing.toml")], capture_output=True, text=True, timeout=60,
        check=False)
    assert done.returncode == 2
    assert "tillbox: --config: no such file" in done.stderr
    imported = set(re.findall(r"\|\s+([\w.]+)$", done.stderr, re.MULTILINE))
    assert not {"typer", "fiscal.cli", "cloud.cli", "agent.commands"} & imported
