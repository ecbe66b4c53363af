"""The ``tillbox`` command: the journal tools of ``fiscal`` plus the box's own commands.

``tillbox run`` starts the box daemon in the foreground. Exit status: 0 after a clean stop
(SIGTERM/SIGINT), 1 when the box cannot start, 2 when the configuration is invalid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.settings import ConfigError, load_settings
from agent.simulators import sim_app
from cloud.cli import app as cloud_app
from cloud.fleet.cli import app as fleet_app
from fiscal.cli import app

__all__ = ["app", "main", "run"]

EXIT_CONFIG = 2


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
    try:
        settings = load_settings(config, data_dir=data_dir, http=http)
    except ConfigError as error:
        typer.echo(f"tillbox: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    from agent.daemon import main as run_daemon  # the server stack loads only for ``run``

    raise typer.Exit(run_daemon(settings))


if not any(command.name == "run" for command in app.registered_commands):
    app.command("run")(run)
    app.add_typer(sim_app, name="sim")
    app.add_typer(fleet_app, name="fleet")
    app.add_typer(cloud_app, name="cloud")


def main() -> None:
    """Entry point of the ``tillbox`` console script."""
    app()


if __name__ == "__main__":
    main()
