"""The ``tillbox`` command as a typer application: ``fiscal``'s journal tools plus the box's own.

``run`` (the daemon), ``sim`` (the device simulators), ``fleet`` and ``cloud``. The entry point
is ``agent.cli``, which starts a plain ``tillbox run`` without loading this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.cli import start_daemon
from agent.simulators import sim_app
from cloud.cli import app as cloud_app
from cloud.fleet.cli import app as fleet_app
from fiscal.cli import app

__all__ = ["app", "run"]


def run(
    config: Annotated[Path | None, typer.Option(
        "--config", help="TOML configuration file (default: /etc/tillbox/tillbox.toml if it "
        "exists).")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Data directory: journal and box key.")] = None,
    http: Annotated[str | None, typer.Option(
        "--http", metavar="HOST:PORT", help="Where the HTTP API and status page listen "
        "(default 127.0.0.1:8080).")] = None,
) -> None:
    """Run the box daemon: journal, devices, local HTTP API and status page."""
    raise typer.Exit(start_daemon(config, data_dir, http))


if not any(command.name == "run" for command in app.registered_commands):
    app.command("run")(run)
    app.add_typer(sim_app, name="sim")
    app.add_typer(fleet_app, name="fleet")
    app.add_typer(cloud_app, name="cloud")
